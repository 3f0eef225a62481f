"""A graceful stop: what is in flight, and the signal for the WebSocket feeds to close.

Left to itself, Hypercorn's graceful stop waits its ``graceful_timeout`` for
every connection to end, and two kinds never do: a WebSocket, whose client
then sees the connection cut (1006, abnormal closure), and, under its trio
worker, an idle keep-alive HTTP connection (its idle timer is lost after the
connection's first request). So a stop with a browser or a subscriber
connected took the whole timeout. ``serve`` sets ``closing`` when it stops:
each feed sends a close frame (1001, going away) and ends. It then waits only
until no request and no feed is in flight (``wait``), and closes what is
left, which is idle.
"""

from __future__ import annotations

from typing import Any

import trio
from quart import Quart

__all__ = ["Drain"]


class Drain:
    """Counts the app's requests and WebSocket connections while they run."""

    def __init__(self) -> None:
        self.closing = trio.Event()
        """Set when the server stops: every feed closes with 1001."""
        self.in_flight = 0
        self._idle = trio.lowlevel.ParkingLot()

    def install(self, app: Quart) -> None:
        """Count each HTTP request and WebSocket connection of ``app`` while it runs."""
        inner = app.asgi_app

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] not in ("http", "websocket"):
                await inner(scope, receive, send)
                return
            self.in_flight += 1
            try:
                await inner(scope, receive, send)
            finally:
                self.in_flight -= 1
                if not self.in_flight:
                    self._idle.unpark_all()

        app.asgi_app = counted  # type: ignore[method-assign]  # Quart's way to add ASGI middleware

    async def wait(self) -> None:
        """Return once no request or WebSocket connection is in flight."""
        while self.in_flight:
            await self._idle.park()
