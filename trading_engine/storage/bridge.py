"""The one way Trio code awaits asyncio libraries (asyncpg, redis-py).

asyncpg and ``redis.asyncio`` run only on an asyncio event loop. The bridge
runs a stock asyncio loop in a dedicated thread, created inside that thread,
and lets Trio tasks await coroutine functions on it::

    async with open_bridge() as bridge:
        pool = await bridge.call(make_pool, dsn)
        rows = await bridge.call(fetch_rows, pool, 42)

``call`` takes the coroutine function and its arguments, never a coroutine
object: the function is called in the loop's thread, so whatever it does on
being called (some asyncio APIs start work before they are awaited) happens
on the right loop. Objects an asyncio library hands back (a pool, a
connection) belong to that loop: keep them opaque on the Trio side and pass
them back into functions run by ``call``.

How a call travels: ``loop.call_soon_threadsafe`` starts a task on the
loop; the task's done callback wakes the Trio task through its run's
``TrioToken.run_sync_soon``. That is the same path as
``asyncio.run_coroutine_threadsafe``, minus its ``concurrent.futures``
layer, which only adds locking when the waiter is a Trio task. Each way,
what crosses waits in a queue and only the first of a burst wakes the other
thread (a write to its wake-up socket, a system call): the calls made while
the loop has not yet come round start together, and the answers that come
meanwhile wake their Trio tasks together.

Cancellation: a Trio task cancelled while it waits is released at once
(``trio.Cancelled`` is raised, as for any checkpoint) and the asyncio task
is asked to cancel. The asyncio side may still complete: a statement that
reached the server may commit even though its caller was cancelled. Writes
sent through the bridge must therefore be idempotent, or their caller must
be able to find out afterwards whether they happened.

On leaving ``open_bridge`` every asyncio task still running is cancelled and
awaited, the loop is closed and the thread joined; calls still waiting get
``BridgeClosed``. Close what you opened on the loop (a pool) through the
bridge before that, or its transports are torn down without a goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import outcome
import trio

from trading_engine.errors import TradingEngineError

__all__ = ["Bridge", "BridgeClosed", "open_bridge"]

P = ParamSpec("P")
T = TypeVar("T")

_STOP_TIMEOUT = 10.0
"""Seconds the loop gets to finish cancelled tasks when the bridge closes."""


class BridgeClosed(TradingEngineError):
    """Raised by ``Bridge.call`` when the bridge is closed, or closes while the call waits.

    Your code (or the ``async with`` around it) closed the bridge; nothing
    outside broke it.
    """

    code = "bridge_closed"


class _Call:
    """One call in flight: which Trio task waits, and whether it still does."""

    __slots__ = ("task", "waiting")

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.waiting = True


class Bridge:
    """A handle on the asyncio loop thread; build one with ``open_bridge``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken) -> None:
        self._loop = loop
        self._token = token
        self._closed = False
        self._waiting: set[_Call] = set()
        """Owned by the Trio thread: the calls whose Trio task still waits."""
        self._tasks: set[asyncio.Task[Any]] = set()
        """Owned by the loop thread: the asyncio tasks of calls not finished yet."""
        self._shutdown_task: asyncio.Task[None] | None = None
        self._for_loop: deque[Callable[[], None]] = deque()
        """What the loop thread is to run, in order (``_to_loop``)."""
        self._loop_woken = False
        """A ``_run_for_loop`` is due on the loop: what is queued needs no other wake-up."""
        self._for_trio: deque[tuple[_Call, outcome.Outcome[Any]]] = deque()
        """The answers for Trio tasks, in order (``_to_trio``)."""
        self._trio_woken = False
        """A ``_wake_all`` is due in the Trio thread."""

    @property
    def closed(self) -> bool:
        return self._closed

    async def call(
        self, fn: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(*args, **kwargs)`` on the asyncio loop and return (or raise) its outcome.

        Raises whatever ``fn`` raises, ``BridgeClosed`` if the bridge is closed
        or closes first, and ``trio.Cancelled`` if the caller is cancelled
        meanwhile (then the asyncio task is cancelled, but may still complete).
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise BridgeClosed("the asyncio bridge is closed")
        call = _Call(trio.lowlevel.current_task())
        handle: list[asyncio.Task[T]] = []

        def start() -> None:  # in the loop thread
            try:
                task = self._loop.create_task(fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - the caller gets it, as from fn itself
                # Not a coroutine function, or arguments that don't fit.
                self._to_trio(call, outcome.Error(exc))
                return
            handle.append(task)
            self._tasks.add(task)
            task.add_done_callback(finished)

        def finished(task: asyncio.Task[T]) -> None:  # in the loop thread
            self._tasks.discard(task)
            if task.cancelled():
                result: outcome.Outcome[T] = outcome.Error(
                    BridgeClosed("the asyncio bridge closed during the call")
                )
            elif (exc := task.exception()) is not None:
                result = outcome.Error(exc)
            else:
                result = outcome.Value(task.result())
            self._to_trio(call, result)

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:  # in the Trio thread
            call.waiting = False
            self._waiting.discard(call)
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                self._to_loop(cancel)  # after ``start``: the queue keeps the order
            return trio.lowlevel.Abort.SUCCEEDED

        def cancel() -> None:  # in the loop thread
            if handle:
                handle[0].cancel()

        self._waiting.add(call)
        self._to_loop(start)
        value: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return value

    def _to_loop(self, fn: Callable[[], None]) -> None:  # in the Trio thread
        """Have the loop thread run ``fn``, after what was queued before; wake it only if
        no wake-up is due already. Raises ``RuntimeError`` once the loop is closed."""
        self._for_loop.append(fn)
        if not self._loop_woken:
            self._loop_woken = True
            try:
                self._loop.call_soon_threadsafe(self._run_for_loop)
            except RuntimeError:
                self._loop_woken = False
                raise

    def _run_for_loop(self) -> None:  # in the loop thread
        # First: what is queued from now on wakes the loop again, or this pass runs it.
        self._loop_woken = False
        queued = self._for_loop
        while queued:
            queued.popleft()()

    def _to_trio(self, call: _Call, result: outcome.Outcome[Any]) -> None:  # in the loop thread
        """Hand ``result`` to ``call``'s Trio task; wake the Trio thread only if no wake-up
        is due already."""
        self._for_trio.append((call, result))
        if not self._trio_woken:
            self._trio_woken = True
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._wake_all)

    def _wake_all(self) -> None:  # in the Trio thread
        self._trio_woken = False
        answers = self._for_trio
        while answers:
            self._wake(*answers.popleft())

    def _wake(self, call: _Call, result: outcome.Outcome[Any]) -> None:  # in the Trio thread
        if call.waiting:
            call.waiting = False
            self._waiting.discard(call)
            trio.lowlevel.reschedule(call.task, result)

    def _close(self) -> None:  # in the Trio thread
        """Refuse new calls and ask the loop to wind down; the thread ends after it."""
        self._closed = True
        self._to_loop(self._begin_shutdown)

    def _release_waiters(self) -> None:  # in the Trio thread, once the loop thread ended
        """Wake any call the loop never answered (a task that ignored its cancellation)."""
        for call in list(self._waiting):
            self._wake(call, outcome.Error(BridgeClosed("the asyncio bridge closed")))

    def _begin_shutdown(self) -> None:  # in the loop thread
        # Keep a reference: the loop holds its tasks only weakly.
        self._shutdown_task = self._loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:  # in the loop thread
        """Cancel the calls still running and wait for them, then stop the loop."""
        try:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=_STOP_TIMEOUT)
            await self._loop.shutdown_asyncgens()
            await self._loop.shutdown_default_executor()
        finally:
            self._loop.stop()


@contextlib.asynccontextmanager
async def open_bridge(name: str = "asyncio-bridge") -> AsyncIterator[Bridge]:
    """Start the asyncio loop thread, yield its ``Bridge``, and stop it on exit.

    Leaving waits, shielded from cancellation, until the loop has cancelled
    its remaining tasks (at most ten seconds) and the thread has ended, so
    neither the thread nor the loop outlives the ``async with``.
    """
    token = trio.lowlevel.current_trio_token()
    started = trio.Event()
    ended = trio.Event()
    loops: list[asyncio.AbstractEventLoop] = []
    failures: list[BaseException] = []

    def run() -> None:
        # The loop is created, run and closed in this thread only.
        try:
            loop = asyncio.new_event_loop()
        except BaseException as exc:
            failures.append(exc)
            token.run_sync_soon(started.set)
            raise
        asyncio.set_event_loop(loop)
        loops.append(loop)
        try:
            token.run_sync_soon(started.set)
            loop.run_forever()
        finally:
            loop.close()
            asyncio.set_event_loop(None)
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(ended.set)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    with trio.CancelScope(shield=True):
        await started.wait()
    if failures:
        thread.join()
        raise failures[0]
    bridge = Bridge(loops[0], token)
    try:
        yield bridge
    finally:
        with trio.CancelScope(shield=True):
            bridge._close()
            await ended.wait()
        thread.join()
        bridge._release_waiters()
