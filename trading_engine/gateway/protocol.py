"""What travels between gateways and the engine: the methods, the calls, the answers.

A gateway calls a method of the engine's ``Engine`` by name (``METHODS``:
which may be called, and whether each changes state), with its arguments;
the engine runs it and answers its value or its error. ``Call`` and
``Answer`` are the envelopes, msgspec Structs written as arrays, whose
arguments and values are the codec's trees (``gateway/codec.py``). Adding a
method of ``Engine`` to the wire is one entry in ``METHODS``.
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Final

import msgspec

from trading_engine.actors.mailbox import ActorUnavailable
from trading_engine.errors import TradingEngineError
from trading_engine.gateway import codec

__all__ = [
    "EXPIRED",
    "FAILED",
    "INTERNAL",
    "METHODS",
    "OK",
    "Answer",
    "Call",
    "EngineUnavailable",
    "Kind",
    "error_of",
    "raise_error",
]


class EngineUnavailable(ActorUnavailable):
    """Raised to a gateway's caller when the engine did nothing with the call: it is not
    running or is stopping, or did not answer a query in time, or read the call after
    its deadline."""

    code = "engine_unavailable"


class Kind(enum.Enum):
    COMMAND = "command"
    """May change state: no answer in time means the outcome is unknown."""
    QUERY = "query"
    """Changes nothing: no answer in time means only that the engine is unavailable."""


C, Q = Kind.COMMAND, Kind.QUERY

METHODS: Final[dict[str, Kind]] = {
    # orders
    "submit": C, "cancel": C, "amend": C, "cancel_all": C, "cancel_all_after": C,
    "check": Q, "switch": Q, "order": Q, "open_by_client_id": Q, "user_orders": Q,
    "open_orders": Q, "orders_snapshot": Q, "user_trades": Q, "order_fills": Q,
    # order lists
    "submit_list": C, "cancel_list": C, "order_list": Q, "list_by_client_id": Q,
    # algorithms
    "start_algo": C, "stop_algo": C, "algo": Q, "user_algos": Q,
    # accounts
    "create_user": C, "set_credential": C, "deposit": C, "withdraw": C,
    "credentials": Q, "balances": Q, "positions": Q, "margin": Q, "user_exists": Q,
    "user_by_key": Q, "alerts": Q, "self_trades_prevented": Q, "check_invariants": Q,
    "check_ready": Q,
    # symbols, market data, settlement
    "add_symbol": C, "halt": C, "resume": C, "book": Q, "orderbook": Q, "trades": Q,
    "candles": Q, "ticker": Q, "settle": C, "settlement": Q, "ledger_totals": Q,
    "ledger_balance": Q, "market_snapshot": Q,
}  # fmt: skip
"""Every method of ``Engine`` a gateway may call, by name, and its kind."""

log = logging.getLogger(__name__)

INTERNAL: Final = "internal error"
"""The message of an engine's error that is not one of this package's."""

OK: Final = 0
FAILED: Final = 1
EXPIRED: Final = 2


class Call(msgspec.Struct, array_like=True, frozen=True):
    """One method call: ``id`` names it to its gateway, which stops waiting at
    ``deadline_ms`` (ms since the epoch): the engine runs none it reads later."""

    id: int
    deadline_ms: int
    method: str
    args: Any
    kwargs: Any


class Answer(msgspec.Struct, array_like=True, frozen=True):
    """The answer to the call ``id``: ``OK`` and its value, ``FAILED`` and its error
    (``error_of``), or ``EXPIRED`` (read after its deadline, so never run)."""

    id: int
    status: int
    value: Any


CALLS_ENCODER: Final = msgspec.msgpack.Encoder()
CALLS_DECODER: Final = msgspec.msgpack.Decoder(list[Call])
ANSWERS_DECODER: Final = msgspec.msgpack.Decoder(list[Answer])


def error_of(exc: BaseException) -> list[Any]:
    """An error as an answer carries it: its class, message and field (or None). An
    error that is not one of this package's (a bug) is logged here with its traceback
    and travels as ``INTERNAL``: what it says stays on the engine."""
    cls = type(exc)
    if isinstance(exc, TradingEngineError):
        message = exc.message
    else:
        log.error("a gateway's call failed", exc_info=exc)
        message = INTERNAL
    return [f"{cls.__module__}:{cls.__qualname__}", message, getattr(exc, "field", None)]


class RemoteError(TradingEngineError):
    """Raised by a gateway for an error of the engine's that is not one of this
    package's own (a bug there): the API answers it 500."""


def raise_error(value: list[Any]) -> None:
    """Raise the error ``error_of`` wrote, as its own class where it is one of this
    package's ``TradingEngineError``s, else as ``RemoteError``."""
    name, message, field = value
    module, _, qualname = str(name).partition(":")
    cls: type[TradingEngineError] = RemoteError
    if module.startswith("trading_engine.") and "." not in qualname:
        import importlib  # noqa: PLC0415

        try:
            found = getattr(importlib.import_module(module), qualname)
        except (ImportError, AttributeError):
            found = None
        if isinstance(found, type) and issubclass(found, TradingEngineError):
            cls = found
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.message = message
    if field is not None:
        exc.field = field  # type: ignore[attr-defined]
    raise exc


def lower_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    return codec.lower(args), codec.lower(kwargs)
