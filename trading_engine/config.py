"""Configuration from the environment, with defaults that run out of the box.

- ``RISK_LIMITS_ENABLED`` (``true``): ``false`` turns off every limit check but funds.
- ``MAX_ORDER_SIZE`` (none): largest order in base-asset units (``10`` = 10 BTC).
- ``MAX_POSITION_SIZE`` (none): largest net position per user and symbol, base units.
- ``MAX_OPEN_ORDERS`` (``1000``): open orders per user, all symbols together.
- ``MARGIN_REQUIREMENT`` (``0.10``): initial margin as a fraction of notional.
- ``LIQUIDATION_THRESHOLD`` (``0.05``): maintenance fraction below which a user is liquidated.
- ``SYMBOL_INBOX_SIZE`` (``10000``): queued batches per symbol before orders get ``busy``.
- ``MAX_INFLIGHT`` (``20000``): requests worked on at once; more wait (backpressure).
- ``REPLY_TIMEOUT`` (``10``): seconds a request waits for the engine's answer.
- ``MAX_RESTARTS``, ``RESTART_WINDOW`` (``5``, ``60``): crashes in the window that halt a symbol.
- ``SETTLEMENT_INTERVAL`` (``1``): seconds between settlement batches.
- ``REDIS_URL`` (none): publish market data to Redis for other front-end processes.
- ``SNAPSHOT_EVERY`` (``500000``): journaled events between snapshots ``serve`` takes
  (``0``: none); a start replays at most about this many events after the newest one.
- ``KEEP_FINISHED_ORDERS`` (``100000``): finished orders risk keeps for their views and
  their client order ids (``0``: all).
- ``KEEP_SETTLED_TRADES`` (``100000``): settled trades whose records settlement keeps in
  memory (``0``: all); older ones answer from the read tables.
- ``METRICS_TOKEN`` (none): ``/metrics`` then needs ``Authorization: Bearer <token>``;
  letters, digits and ``-._~+/`` (then any ``=``), as a bearer token is written.
- ``MAX_WS_PER_ADDRESS`` (``50``): WebSocket connections one client address may hold open
  at once in one front-end process (``0``: no cap); see ``api/ws_guard.py``.
- ``TRUSTED_PROXY_HOPS`` (``0``): proxies in front of the server whose ``X-Forwarded-For``
  is believed, so that a client's address is the one they report (``0``: the peer's own
  address; a client reaching the server directly could otherwise claim any).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal

import attrs

from trading_engine.actors.risk import RiskConfig
from trading_engine.core.numbers import parse_decimal
from trading_engine.errors import InvalidInput

__all__ = ["EngineConfig"]

_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
"""RFC 6750's ``b64token``: what an ``Authorization: Bearer`` header can carry."""


@attrs.frozen
class EngineConfig:
    risk: RiskConfig = attrs.field(factory=RiskConfig)
    margin_requirement: Decimal = Decimal("0.10")
    liquidation_threshold: Decimal = Decimal("0.05")
    symbol_inbox_size: int = 10_000
    max_inflight: int = 20_000
    reply_timeout: float = 10.0
    max_restarts: int = 5
    restart_window: float = 60.0
    expire_every: float = 1.0
    settlement_interval: float = 1.0
    redis_url: str | None = None
    ticker_interval: float = 0.1
    """Seconds between a symbol's ticker updates to market data (0: after every batch)."""
    snapshot_every: int = 500_000
    """Journaled events between the snapshots ``serve`` takes (0: none)."""
    keep_settled: int = 100_000
    """Settled trades (and ledger posting ids) the settlement actor keeps in memory (0: all)."""
    metrics_token: str | None = attrs.field(default=None, repr=False)
    """The bearer token ``/metrics`` needs (None: ``/metrics`` is open); a secret, so out of
    the repr."""
    max_ws_per_address: int = 50
    """WebSocket connections one client address may hold open at once (0: no cap)."""
    trusted_proxy_hops: int = 0
    """Proxies in front whose ``X-Forwarded-For`` gives the client's address (0: none)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineConfig:
        """Read the variables in this module's table; raises ``InvalidInput`` naming a bad one."""
        env = os.environ if env is None else env
        risk = RiskConfig(
            enabled=_bool(env, "RISK_LIMITS_ENABLED", default=True),
            max_order_size=_decimal(env, "MAX_ORDER_SIZE"),
            max_position_size=_decimal(env, "MAX_POSITION_SIZE"),
            max_open_orders=_int(env, "MAX_OPEN_ORDERS", 1000),
            keep_finished=_int(env, "KEEP_FINISHED_ORDERS", 100_000, zero=True),
        )
        return cls(
            risk=risk,
            margin_requirement=_decimal(env, "MARGIN_REQUIREMENT") or Decimal("0.10"),
            liquidation_threshold=_decimal(env, "LIQUIDATION_THRESHOLD") or Decimal("0.05"),
            symbol_inbox_size=_int(env, "SYMBOL_INBOX_SIZE", 10_000),
            max_inflight=_int(env, "MAX_INFLIGHT", 20_000),
            reply_timeout=float(_int(env, "REPLY_TIMEOUT", 10)),
            max_restarts=_int(env, "MAX_RESTARTS", 5),
            restart_window=float(_int(env, "RESTART_WINDOW", 60)),
            settlement_interval=float(_int(env, "SETTLEMENT_INTERVAL", 1)),
            redis_url=env.get("REDIS_URL") or None,
            snapshot_every=_int(env, "SNAPSHOT_EVERY", 500_000, zero=True),
            keep_settled=_int(env, "KEEP_SETTLED_TRADES", 100_000, zero=True),
            metrics_token=_token(env, "METRICS_TOKEN"),
            max_ws_per_address=_int(env, "MAX_WS_PER_ADDRESS", 50, zero=True),
            trusted_proxy_hops=_int(env, "TRUSTED_PROXY_HOPS", 0, zero=True),
        )


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(name, f"must be true or false, not {raw!r}")


def _token(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    if not _BEARER_TOKEN.fullmatch(raw):
        raise InvalidInput(name, "must be letters, digits and -._~+/ (then any =)")
    return raw


def _decimal(env: Mapping[str, str], name: str) -> Decimal | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    value = parse_decimal(raw, field=name)
    if value <= 0:
        raise InvalidInput(name, "must be positive")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, zero: bool = False) -> int:
    """A whole number, positive (or zero, where ``zero`` turns the feature off)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(name, f"must be a whole number, not {raw!r}") from None
    if value < 0 or (value == 0 and not zero):
        raise InvalidInput(name, "must be zero or positive" if zero else "must be positive")
    return value
