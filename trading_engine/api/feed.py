"""Delivering the market-data actor's messages to WebSocket connections.

Each connection has a ``Subscriber``: the outbox the market-data actor
fills (``send_nowait`` never waits; more than ``limit`` messages waiting
raises ``trio.WouldBlock``, on which the actor drops the subscriber and
calls ``close``). The connection's own answers and heartbeats go through it
too, so everything leaves in the order it was put in.

Where the connection can be written directly (``api/frames.py``), one
``Flusher`` per Trio run writes for all of them: it wakes once the actor
has put a batch of messages in, and for each subscriber with messages
waiting turns them into frames and writes them to the socket in one system
call, without waiting and without a task switch per connection. Subscribers
that wait for the same messages (every follower of a book) share the
frames. A subscriber whose socket does not take everything at once (its
client reads slowly), or whose connection Hypercorn is writing to at that
moment, is handed to its connection's task (``run``), which writes as the
socket allows, merging waiting book deltas (``api/conflate.py``), until it
has caught up; then the flusher takes it back.

Without a direct writer (another server, TLS) the connection's task sends
each message through the ASGI server, merging book deltas the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from trading_engine.api.conflate import conflate
from trading_engine.api.frames import SocketWriter, text_frames

__all__ = ["Flusher", "Subscriber"]


class Flusher:
    """Writes every subscriber's waiting messages in one pass; one per Trio run."""

    _current: trio.lowlevel.RunVar[Flusher] = trio.lowlevel.RunVar("flusher")

    def __init__(self) -> None:
        self._dirty: list[Subscriber] = []
        self._wake = trio.lowlevel.ParkingLot()
        self.passes = 0
        self.writes = 0

    @classmethod
    def current(cls) -> Flusher:
        """This run's flusher, started as a system task the first time it is asked for.

        A system task because it serves every connection and outlives each;
        should it ever raise, Trio ends the whole run rather than let the feed
        go quiet while the rest keeps serving.
        """
        try:
            return cls._current.get()
        except LookupError:
            flusher = cls()
            cls._current.set(flusher)
            trio.lowlevel.spawn_system_task(flusher._run, name="websocket flusher")
            return flusher

    def mark(self, subscriber: Subscriber) -> None:
        self._dirty.append(subscriber)
        if len(self._dirty) == 1:
            self._wake.unpark_all()

    async def _run(self) -> None:
        while True:
            while not self._dirty:
                await self._wake.park()
            dirty, self._dirty = self._dirty, []
            self.passes += 1
            shared: list[str] = []
            frames = b""
            for subscriber in dirty:
                texts = subscriber._take_for_flusher()
                if texts:
                    if texts != shared:  # str equality tests identity first: cheap when shared
                        shared, frames = texts, text_frames(texts)
                    subscriber._write_now(texts, frames)
                    self.writes += 1


class Subscriber:
    """One connection's outbox: ``send_nowait`` and ``close`` for the actor, ``run`` for the
    connection's task."""

    def __init__(self, writer: SocketWriter | None, limit: int) -> None:
        self._writer = writer
        self._flusher = Flusher.current() if writer is not None else None
        self._limit = limit
        self._pending: list[str] = []
        self._rest = b""
        """Of a write the socket took only in part; the send lock stays held for it."""
        self._queued = False
        """In the flusher's list."""
        self._pumping = writer is None
        """The connection's task writes (it is behind, or there is no flusher)."""
        self._wake = trio.lowlevel.ParkingLot()
        self._held: int | None = None
        """While held: where ``release`` puts its first message; nothing is written."""
        self.closed = False

    def send_nowait(self, text: str) -> None:
        """Queue ``text``; ``trio.WouldBlock`` if ``limit`` are waiting, an error once closed."""
        if self.closed:
            raise trio.ClosedResourceError
        if len(self._pending) >= self._limit:
            raise trio.WouldBlock
        self._pending.append(text)
        if self._held is None:
            self._to_write()

    def hold(self) -> None:
        """Keep what comes from now on waiting until ``release``: a snapshot that is
        fetched after subscribing goes out before the updates that came meanwhile."""
        self._held = len(self._pending)

    def release(self, first: str | None) -> None:
        """Put ``first`` (if any) before what came since ``hold``, and write again."""
        at, self._held = self._held, None
        if first is not None and at is not None:
            self._pending.insert(at, first)
        if self._pending or self.closed:
            self._to_write()

    def _to_write(self) -> None:
        """Messages wait: wake whoever writes them (the connection's task or the flusher)."""
        if self._pumping:
            self._wake.unpark_all()
        elif not self._queued and self._flusher is not None:
            self._queued = True
            self._flusher.mark(self)

    def close(self) -> None:
        """No more messages: ``run`` writes those waiting and returns."""
        self.closed = True
        self._pumping = True
        self._wake.unpark_all()

    def _take_for_flusher(self) -> list[str]:
        self._queued = False
        if self._pumping or self._held is not None:
            return []
        texts, self._pending = self._pending, []
        return texts

    def _write_now(self, texts: list[str], frames: bytes) -> None:
        assert self._writer is not None
        rest = self._writer.try_write(frames)
        if rest is None:  # Hypercorn is writing to this connection: wait for it
            self._pending[:0] = texts
        elif rest:
            self._rest = rest
        else:
            return
        self._pumping = True
        self._wake.unpark_all()

    async def run(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Write what the flusher left to this connection; return once closed and written.

        ``send`` sends one message the ordinary way, for a connection without
        a direct writer.
        """
        writer = self._writer
        try:
            while True:
                while self._held is not None or not (
                    self._pumping and (self._pending or self._rest or self.closed)
                ):
                    await self._wake.park()
                if self._rest:
                    assert writer is not None
                    rest, self._rest = self._rest, b""
                    await writer.finish(rest)
                texts, self._pending = self._pending, []
                if texts:
                    texts = conflate(texts)
                    if writer is not None:
                        await writer.write(text_frames(texts))
                    else:
                        for text in texts:
                            await send(text)
                if self._pending:
                    continue  # more came meanwhile
                if self.closed:
                    return
                if writer is not None:
                    self._pumping = False  # caught up: the flusher writes again
        finally:
            if self._rest and writer is not None:
                # Cancelled (the connection is ending) before the rest was written: the
                # send lock must not stay held, or Hypercorn could not close.
                self._rest = b""
                writer.abandon()
