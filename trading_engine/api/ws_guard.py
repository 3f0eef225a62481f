"""Who may open a WebSocket connection, decided before its handshake is accepted.

Every WebSocket endpoint, of both dialects, is wrapped in ``guarded``:

- the upgrade takes a token from its client address's bucket (``ip:<address>``) of
  the limiter HTTP requests and WebSocket messages take from (``api/limits.py``);
  an empty bucket refuses it, ``rate_limited`` with ``Retry-After``;
- then one address may hold at most ``WsConnections.cap`` connections at once in
  this process (``MAX_WS_PER_ADDRESS``, 0: no cap); one more is refused,
  ``too_many_connections``.

A refused upgrade is answered with a plain HTTP 429, and nothing is upgraded
(counted in ``/metrics`` as ``te_websocket_refused_total{reason}`` and logged):
a WebSocket handler that returns a response before accepting has Quart send it
as the handshake's answer (Hypercorn's ``websocket.http.response`` extension).
Each dialect words the refusal (``Refusal``): ``/api/v1/trading/ws`` in the
API's error shape, the Binance streams as Binance's -1003.

A connection counts against its address from the moment it is admitted until
its handler ends, however it ends (closed, failed, the client gone, the server
stopping): the count is given back in a ``finally``.

The client address is ``remote_addr``: the peer's, or behind proxies trusted
with ``TRUSTED_PROXY_HOPS`` the one they report (``api/app.py``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec

import attrs
from quart import Response, current_app, websocket

from trading_engine.api.limits import retry_after
from trading_engine.storage.limits import Limiter

__all__ = ["GUARDED", "Refusal", "WsConnections", "guarded"]

_P = ParamSpec("_P")
Handler = Callable[_P, Awaitable[Response | None]]

log = logging.getLogger("trading_engine.http")

GUARDED = "ws_guarded"
"""The attribute ``guarded`` sets on the handler it wraps."""


@attrs.frozen
class Refusal:
    """Why an upgrade is refused, for the dialect to word as a 429."""

    code: str
    """``rate_limited`` (then ``guarded`` adds ``Retry-After``) or ``too_many_connections``."""
    message: str


class WsConnections:
    """The WebSocket connections open in this process, counted by client address."""

    CONFIG_KEY = "WS_CONNECTIONS"
    """Where ``create_app`` keeps this process's count, in the app's config."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        """Connections one address may hold at once; 0 for no cap."""
        self._open: dict[str, int] = {}

    def open(self, address: str) -> bool:
        """Count one more connection of ``address``; False (and not counted) at the cap."""
        held = self._open.get(address, 0)
        if self.cap and held >= self.cap:
            return False
        self._open[address] = held + 1
        return True

    def close(self, address: str) -> None:
        """Give back a connection ``open`` counted."""
        held = self._open[address] - 1
        if held:
            self._open[address] = held
        else:
            del self._open[address]  # no entry left behind per address ever seen

    def held(self, address: str) -> int:
        """Connections of ``address`` open now."""
        return self._open.get(address, 0)


def guarded(
    refuse: Callable[[Refusal], Response],
) -> Callable[[Handler[_P]], Handler[_P]]:
    """Wrap a WebSocket handler: the upgrade takes a token and a place among its address's
    connections, or is answered with ``refuse``'s response, a 429 in the dialect's error
    shape (see the module's docstring)."""

    def wrap(handler: Handler[_P]) -> Handler[_P]:
        @functools.wraps(handler)
        async def admitted(*args: _P.args, **kwargs: _P.kwargs) -> Response | None:
            address = str(websocket.remote_addr)
            limiter: Limiter | None = current_app.config.get("LIMITER")
            if limiter is not None:
                wait = await limiter.take(f"ip:{address}")
                if wait > 0:
                    refusal = Refusal("rate_limited", "too many requests: slow down")
                    response = _refused(refuse, refusal, address)
                    response.headers["Retry-After"] = retry_after(wait)
                    return response
            connections: WsConnections = current_app.config[WsConnections.CONFIG_KEY]
            if not connections.open(address):
                message = (
                    f"at most {connections.cap} WebSocket connections at once from one address"
                )
                return _refused(refuse, Refusal("too_many_connections", message), address)
            try:
                return await handler(*args, **kwargs)
            finally:
                connections.close(address)

        setattr(admitted, GUARDED, True)
        return admitted

    return wrap


def _refused(refuse: Callable[[Refusal], Response], refusal: Refusal, address: str) -> Response:
    """``refuse``'s answer to ``refusal``, counted in ``/metrics``
    (``te_websocket_refused_total``) and logged with the address."""
    metrics = current_app.config.get("METRICS")
    if metrics is not None:
        metrics.ws_refused.labels(refusal.code).inc()
    log.info(
        "websocket refused",
        extra={"fields": {"address": address, "path": websocket.path, "reason": refusal.code}},
    )
    return refuse(refusal)
