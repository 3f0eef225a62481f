"""One WebSocket connection of the dialect's streams: what it is sent, in order, and its pings.

The market-data actor fills the connection's ``Inbox`` with our channel
messages (JSON text, published after commit, ``actors/marketdata.py``), as it
fills the feed's ``Subscriber``: ``send_nowait`` never waits, and a client
``OUTBOX`` messages behind is dropped (the actor closes the inbox). The
connection's own answers go into the same inbox (``say``), already in
Binance's shape, so that an answer and the data after it keep their order.

``Link.run`` serves the connection: one task takes what waits, merges runs of
book deltas (``api/conflate.py``: the ``seq``/``prev_seq`` chain stays whole,
so a diff stream's ``U``/``u`` stays gap-free), has the stream translate them,
and writes the frames straight to the socket where it can (``api/frames.py``:
a write that gets nowhere for ``STALL_SECONDS`` cuts the connection); another
sends a ping frame every ``PING_SECONDS``, as Binance does. A dropped client is
closed with 1008 and no message (Binance sends none); when the server stops,
every connection is sent what waits, then Binance's ``serverShutdown`` event, and
is closed with 1001.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
from quart import Response, current_app, jsonify, websocket

from trading_engine.api.conflate import conflate
from trading_engine.api.frames import (
    Closer,
    SocketWriter,
    current_socket_writer,
    text_frames,
)
from trading_engine.api.ws_guard import Refusal
from trading_engine.api.ws_limits import MessageLimits

__all__ = [
    "OUTBOX",
    "PING_SECONDS",
    "STALL_SECONDS",
    "TOO_MANY",
    "Inbox",
    "Link",
    "dump",
    "refusal",
    "refuse",
    "refuse_upgrade",
]

OUTBOX = 1000
"""Messages a connection may fall behind by before it is dropped."""
PING_SECONDS = 20.0
"""Between two ping frames, as Binance sends them."""
STALL_SECONDS = 10.0
"""How long a write may get no byte into the socket before the connection is cut."""

_PING = b"\x89\x00"
"""A ping frame with no payload (RFC 6455, section 5.5.2); Hypercorn ignores the pong."""


def dump(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"))


TOO_MANY = "Too many requests: at most a few messages a second on a connection."


def refusal(inbox: Inbox, limits: MessageLimits, answer: Any) -> None:
    """Answer a frame its rate-limit bucket had no token for; a client that keeps
    flooding is sent away (1008)."""
    if limits.refused():
        inbox.end(answer, 1008, "too many messages")
    else:
        inbox.say(answer)


def refuse(status: int, code: int, msg: str) -> Response:
    """Refuse a WebSocket handshake with Binance's error body."""
    response = jsonify({"code": code, "msg": msg})
    response.status_code = status
    return response


def refuse_upgrade(refusal: Refusal) -> Response:
    """Binance's answer (-1003, 429) to an upgrade ``api/ws_guard.py`` refuses."""
    if refusal.code == "rate_limited":
        return refuse(429, -1003, "Too many requests; current request rate is over the limit.")
    return refuse(429, -1003, f"Too many connections; {refusal.message}.")


@attrs.frozen
class _Said:
    """A message of the connection's own, already in Binance's shape."""

    text: str


class Inbox:
    """The connection's queue: the actor's messages (``send_nowait``) and its own (``say``).

    ``send_nowait`` raises ``trio.WouldBlock`` once ``limit`` messages wait and
    ``trio.ClosedResourceError`` once closed, on which the actor drops the
    connection and calls ``close``.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._items: list[str | _Said] = []
        self._limit = OUTBOX if limit is None else limit
        self._wake = trio.lowlevel.ParkingLot()
        self.closed = False
        self.ending: tuple[int, str] | None = None
        """Set by ``end``: the close code and reason once what waits is sent."""

    def send_nowait(self, text: str) -> None:
        if self.closed:
            raise trio.ClosedResourceError
        if len(self._items) >= self._limit:
            raise trio.WouldBlock
        self._items.append(text)
        self._wake.unpark_all()

    def say(self, message: Any) -> None:
        """Queue ``message`` (JSON-able) behind what waits; too far behind closes the inbox."""
        if self.closed:
            return
        if len(self._items) >= self._limit:
            self.close()
            return
        self._items.append(_Said(dump(message)))
        self._wake.unpark_all()

    def say_texts(self, texts: list[str]) -> None:
        """Queue ``texts`` (Binance's messages, as JSON) behind what waits, as ``say``."""
        for text in texts:
            if self.closed:
                return
            if len(self._items) >= self._limit:
                self.close()
                return
            self._items.append(_Said(text))
        self._wake.unpark_all()

    def close(self) -> None:
        """Drop the connection: what waits is given up."""
        self.closed = True
        self._wake.unpark_all()

    def end(self, message: Any, code: int, reason: str) -> None:
        """End the connection: ``message`` last, after what waits, then a close."""
        self.say(message)
        self.ending = (code, reason)
        self.closed = True
        self._wake.unpark_all()

    async def take(self) -> list[str | _Said] | None:
        """What waits, once something does; None once closed (given up unless ``end``)."""
        while not self._items and not self.closed:
            await self._wake.park()
        if self.closed and (self.ending is None or not self._items):
            return None
        items, self._items = self._items, []
        return items


Translate = Callable[[str], Awaitable[list[str]]]
"""Our channel message (JSON text) to the Binance messages it makes (perhaps none)."""


class Link:
    """Serves one accepted connection: its inbox out, translated; its frames in."""

    def __init__(
        self,
        inbox: Inbox,
        translate: Translate,
        after: Callable[[], Awaitable[list[str]]] | None = None,
        shutdown: Callable[[Any], Any] = lambda event: event,
    ) -> None:
        """``after`` gives what to send once a batch of messages is translated;
        ``shutdown`` wraps the ``serverShutdown`` event as the connection sends events."""
        self.inbox = inbox
        self._translate = translate
        self._after = after
        self._shutdown = shutdown
        self._writer: SocketWriter | None = current_socket_writer(stall=STALL_SECONDS)

    async def run(self, handle: Callable[[str | bytes], Awaitable[None]]) -> None:
        """Deliver, ping and read until the client goes, is dropped or the server stops;
        each frame the client sends goes to ``handle``."""
        closing: trio.Event = current_app.config["CLOSING"]
        async with trio.open_nursery() as nursery:
            closer = Closer(self._writer, nursery)
            nursery.start_soon(self._deliver, closer)
            nursery.start_soon(self._ping)
            nursery.start_soon(self._going_away, closer, closing)
            while True:
                raw = await websocket.receive()
                # Once dropped, what the client still sends is read and ignored until it
                # goes, so that Hypercorn's reader never blocks (see api/ws.py).
                if not self.inbox.closed:
                    await handle(raw)

    async def _going_away(self, closer: Closer, closing: trio.Event) -> None:
        """When the server stops: what waits, then ``serverShutdown``, then a close (1001)."""
        await closing.wait()
        if self.inbox.closed:  # dropped or ending already
            await closer.end(1001, "the server is shutting down")
            return
        event = {"e": "serverShutdown", "E": time.time_ns() // 1_000_000}
        self.inbox.end(self._shutdown(event), 1001, "the server is shutting down")
        closer.cut_later()  # what waits may not get out in time

    async def _deliver(self, closer: Closer) -> None:
        while (items := await self.inbox.take()) is not None:
            texts = [text for run in _runs(items) for text in await self._texts(run)]
            if self._after is not None:
                texts.extend(await self._after())
            if texts:
                await self._send(texts)
        await closer.end(*(self.inbox.ending or (1008, "too slow: reconnect")))

    async def _texts(self, run: list[str] | _Said) -> list[str]:
        if isinstance(run, _Said):
            return [run.text]
        return [out for text in conflate(run) for out in await self._translate(text)]

    async def _send(self, texts: list[str]) -> None:
        if self._writer is not None:
            await self._writer.write(text_frames(texts))
        else:
            for text in texts:
                await websocket.send(text)

    async def _ping(self) -> None:
        while self._writer is not None:
            await trio.sleep(PING_SECONDS)
            await self._writer.write(_PING)


def _runs(items: list[str | _Said]) -> list[list[str] | _Said]:
    """``items`` with consecutive channel messages grouped, for ``conflate``."""
    runs: list[list[str] | _Said] = []
    for item in items:
        if isinstance(item, _Said):
            runs.append(item)
        elif runs and isinstance(runs[-1], list):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs
