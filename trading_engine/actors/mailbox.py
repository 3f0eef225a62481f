"""Asking an actor and getting one answer back.

A ``Reply`` is a one-shot slot: the asker awaits it with a deadline, the
answering side fills it once. The answering side holds it in a ``with``
block (or the actor that owns it closes it when it dies), so that a crash
gives the asker ``ActorUnavailable`` at once instead of a hang.

Exceptions::

    TradingEngineError
    ├── ActorUnavailable   the actor died or stopped before answering (HTTP 503)
    ├── EngineBusy         an inbox was full: back off and retry (HTTP 503)
    └── ReplyTimeout       no answer within the deadline (HTTP 503)
"""

from __future__ import annotations

import math
from collections import deque
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import trio

from trading_engine.errors import TradingEngineError

__all__ = [
    "ActorUnavailable",
    "Deadlines",
    "EngineBusy",
    "Reply",
    "ReplyTimeout",
    "receive_batch",
]

T = TypeVar("T")


class ActorUnavailable(TradingEngineError):
    """Raised to an asker when the actor stopped or crashed before it answered."""

    code = "actor_unavailable"


class EngineBusy(TradingEngineError):
    """Raised when an actor's inbox is full; nothing was done, so resending is safe."""

    code = "busy"


class ReplyTimeout(TradingEngineError):
    """Raised when no answer came within the deadline; the command may still complete."""

    code = "timeout"


class Reply(Generic[T]):
    """A one-shot answer. ``send`` or ``fail`` once; ``wait`` returns or raises it.

    Built on Trio's low-level parking (``wait_task_rescheduled``) rather than a
    ``trio.Event``: every request makes one, and an Event brings a parking lot
    and its dict with it.
    """

    __slots__ = ("_done", "_error", "_value", "_waiters")

    def __init__(self) -> None:
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._waiters: list[trio.lowlevel.Task] | None = None

    @property
    def done(self) -> bool:
        return self._done

    @property
    def failed(self) -> bool:
        """Answered with an error (``fail``, ``close``)."""
        return self._error is not None

    def send(self, value: T) -> None:
        """Answer; a second answer is ignored (a crash path may race a late one)."""
        if not self._done:
            self._value = value
            self._wake()

    def fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        self._done = True
        waiters, self._waiters = self._waiters, None
        for task in waiters or ():
            trio.lowlevel.reschedule(task)

    async def _park(self) -> None:
        task = trio.lowlevel.current_task()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(task)

        def abort(_: object) -> trio.lowlevel.Abort:
            if self._waiters is not None and task in self._waiters:
                self._waiters.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def close(self) -> None:
        """Fail the asker with ``ActorUnavailable`` unless already answered."""
        self.fail(ActorUnavailable("the engine stopped before it answered"))

    def __enter__(self) -> Reply[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def wait(self, timeout: float = math.inf) -> T:
        """The answer; raises what the actor failed it with, or ``ReplyTimeout``."""
        if self._done:
            await trio.lowlevel.checkpoint()
        elif math.isinf(timeout):
            await self._park()
        else:
            with trio.move_on_after(timeout):
                await self._park()
            if not self._done:
                raise ReplyTimeout(f"no answer within {timeout} s")
        return self.result()

    def result(self) -> T:
        """The answer of a reply that is done; raises what the actor failed it with."""
        if self._error is not None:
            raise self._error
        return cast(T, self._value)


class Deadlines:
    """Fails replies that outlive their deadline, all with one timer task.

    A cancel scope per request costs more than the rest of a small request's
    trip through the engine; one sweep every ``tick`` seconds costs nothing
    per request but an append. Deadlines are checked to within ``tick``.
    """

    def __init__(self, timeout: float, tick: float = 0.1) -> None:
        self.timeout = timeout
        self._tick = tick
        self._queue: deque[tuple[float, Reply[Any]]] = deque()

    def watch(self, reply: Reply[Any]) -> None:
        self._queue.append((trio.current_time() + self.timeout, reply))

    async def run(self) -> None:
        queue = self._queue
        while True:
            await trio.sleep(self._tick)
            now = trio.current_time()
            while queue and queue[0][0] <= now:
                _, reply = queue.popleft()
                if not reply.done:
                    reply.fail(ReplyTimeout(f"no answer within {self.timeout:g} s"))


async def receive_batch(
    inbox: trio.MemoryReceiveChannel[T], limit: int = 100_000, gather: int = 0
) -> list[T] | None:
    """Wait for a message, then take everything else already waiting (up to ``limit``).

    One wake-up per burst instead of one per message. With ``gather``, first
    let the tasks that can run go ``gather`` steps further, so that what they
    are about to send joins this batch: no wait at all when nothing else can
    run, a few scheduler passes under load. Returns None once the inbox is
    closed and empty.
    """
    try:
        batch = [await inbox.receive()]
    except (trio.EndOfChannel, trio.ClosedResourceError):
        return None
    for _ in range(gather):
        await trio.lowlevel.cancel_shielded_checkpoint()
    while len(batch) < limit:
        try:
            batch.append(inbox.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            break
    return batch
