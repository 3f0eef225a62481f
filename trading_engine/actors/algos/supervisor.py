"""The algorithm supervisor: one actor per running algorithm, resumed after a crash.

It owns the ``$algos`` stream (it alone numbers its events) and every
algorithm's state as the journal holds it (``core.algos.AlgoState``), which
recovery rebuilds by replaying the stream and which snapshots keep. A new
algorithm is journaled (``AlgoStarted``) before its actor starts and before
the request is answered; each event an actor writes goes through ``write``,
which answers once the event is durable and applied, so the state never
holds what the journal does not.

An actor that raises is started again on the same state: it resumes at the
first slice not journaled as done, and sends the child a crash may have
left unjournaled again under the same client order id (``actors/algos/actor.py``
says why that is safe). ``max_restarts`` crashes within ``window`` seconds
end the algorithm as ``failed``. An engine start resumes every algorithm that
was running or paused.

A stop (``StopAlgo``) sets the handle's flag and cuts the actor's sleep short;
once the actor has returned (never between sending a child and journaling
it), the algorithm is journaled ``cancelled`` and the stop is answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, assert_never

import trio

from trading_engine.actors.algos.actor import AlgoActor, AlgoEngine, AlgoHandle
from trading_engine.actors.mailbox import Reply
from trading_engine.actors.messages import (
    AlgoMessage,
    AlgoRequest,
    Commit,
    Query,
    Refused,
    StartAlgo,
    StopAlgo,
)
from trading_engine.core.algos import (
    ALGOS_STREAM,
    AlgoEvent,
    AlgoSliceDone,
    AlgoStarted,
    AlgoState,
    AlgoStatus,
    AlgoStatusChanged,
    AlgoView,
)
from trading_engine.core.events import Journaled
from trading_engine.core.ids import UserId

__all__ = ["AlgoSupervisor"]

log = logging.getLogger(__name__)


class AlgoSupervisor:
    NOT_IN_SNAPSHOT = frozenset(
        {
            "_inbox",
            "_journal",
            "_clock",
            "_poll",
            "_max_restarts",
            "_window",
            "_engine",
            "_nursery",
            "_handles",
            "_next_seq",
            "_next_id",
            "_writing",
        }
    )
    """Channels, settings and the running actors; ``algos`` and ``seq`` are in snapshots."""

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[AlgoMessage],
        journal_inbox: trio.MemorySendChannel[Commit],
        *,
        clock: Callable[[], int] = time.time_ns,
        poll: float = 1.0,
        max_restarts: int = 5,
        window: float = 60.0,
    ) -> None:
        self._inbox = inbox
        self._journal = journal_inbox
        self._clock = clock
        """Nanoseconds since the epoch: the schedule's time (tests give a mock)."""
        self._poll = poll
        self._max_restarts = max_restarts
        self._window = window
        self.algos: dict[int, AlgoState] = {}
        self.seq = 0
        """The last ``$algos`` event applied."""
        self._engine: AlgoEngine | None = None
        self._nursery: trio.Nursery | None = None
        self._handles: dict[int, AlgoHandle] = {}
        self._next_seq = 0
        self._next_id = 1
        self._writing: dict[int, tuple[AlgoEvent, Reply[None]]] = {}
        """Events handed to the journal and not applied yet, by ``seq``."""

    # ------------------------------------------------------------ state

    def recover(self, events: Sequence[Journaled]) -> None:
        """Apply journaled ``$algos`` events before the actors start."""
        for event in events:
            if event.seq > self.seq:
                self._apply(event)  # type: ignore[arg-type]

    def _apply(self, event: AlgoEvent) -> None:
        if isinstance(event, AlgoStarted):
            self.algos[event.algo_id] = AlgoState(event)
        else:
            self.algos[event.algo_id].apply(event)
        self.seq = max(self.seq, event.seq)

    def _catch_up(self) -> None:
        """Apply, in ``seq`` order, every event the journal has answered and not applied yet.

        The one path by which events reach the state: a writer calls it once its event is
        answered, and every query calls it first, because the market-data actor may have
        published an answered event before its writer ran again (a read never shows an
        algorithm older than an update the client already has).
        """
        for seq in sorted(self._writing):
            event, reply = self._writing[seq]
            if not reply.done or reply.failed:
                break
            del self._writing[seq]
            self._apply(event)

    async def write(
        self, make: Callable[[int, int], AlgoStarted | AlgoSliceDone | AlgoStatusChanged]
    ) -> None:
        """Journal the event ``make(seq, ts)`` and apply it (with any earlier one answered)
        once durable.

        Raises ``ActorUnavailable`` if the journal fails. Only the engine's stop cancels
        a writer, and the state is then rebuilt from the journal at the next start.
        """
        self._next_seq += 1
        event = make(self._next_seq, self._clock())
        reply: Reply[None] = Reply()
        self._writing[event.seq] = (event, reply)
        try:
            await self._journal.send(Commit(ALGOS_STREAM, [event], ((reply, None),)))
            await reply.wait()
        except BaseException:
            self._writing.pop(event.seq, None)
            raise
        self._catch_up()

    # ------------------------------------------------------------ running

    async def run(
        self, engine: AlgoEngine, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Resume every algorithm that was running or paused, then serve the inbox."""
        self._engine = engine
        self._next_seq = self.seq
        self._next_id = max(self.algos, default=0) + 1
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for state in self.algos.values():
                if not state.status.is_final:
                    self._start(state)
            task_status.started()
            async for message in self._inbox:
                self.handle(message)

    def handle(self, message: AlgoMessage) -> None:
        assert self._nursery is not None
        match message:
            case StartAlgo(request=request, reply=reply):
                algo_id = self._next_id
                self._next_id += 1
                self._nursery.start_soon(self._create, algo_id, request, reply)
            case StopAlgo(algo_id=algo_id, user_id=user_id, reply=reply):
                state = self.algos.get(algo_id)
                handle = self._handles.get(algo_id)
                if state is None or (user_id is not None and state.started.user_id != user_id):
                    reply.send(Refused("unknown_algo", f"no algo {algo_id}"))
                elif handle is None:
                    reply.send(Refused("algo_not_running", f"algo {algo_id} is {state.status}"))
                else:
                    handle.stop()
                    self._nursery.start_soon(self._answer_stop, handle, reply)
            case Query(read=read, reply=reply):
                self._catch_up()
                reply.send(read(self))
            case _:
                assert_never(message)

    async def _create(self, algo_id: int, request: AlgoRequest, reply: Reply[Any]) -> None:
        r = request
        num, den = r.participation

        def make(seq: int, ts: int) -> AlgoStarted:
            return AlgoStarted(
                seq, ts, algo_id, r.user_id, r.symbol, r.kind, r.side, r.quantity, r.slices,
                r.duration_ns, r.limit_price, num, den,
            )  # fmt: skip

        with reply:
            await self.write(make)
            state = self.algos[algo_id]
            reply.send(state.view())
            self._start(state)

    async def _answer_stop(self, handle: AlgoHandle, reply: Reply[AlgoView | Refused]) -> None:
        with reply:
            await handle.stopped.wait()
            reply.send(handle.state.view())

    def _start(self, state: AlgoState) -> None:
        assert self._nursery is not None
        handle = self._handles[state.algo_id] = AlgoHandle(state)
        self._nursery.start_soon(self._keep, handle)

    async def _keep(self, handle: AlgoHandle) -> None:
        """Run the algorithm's actor until the algorithm ends, restarting it if it raises."""
        assert self._engine is not None
        state = handle.state
        try:
            while not state.status.is_final and not handle.stopping:
                actor = AlgoActor(handle, self._engine, self.write, self._clock, poll=self._poll)
                try:
                    await actor.run()
                except Exception as exc:
                    log.exception("algo %s crashed; resuming from its journal", state.algo_id)
                    if self._too_many(handle):
                        await self._status(state, AlgoStatus.FAILED, f"crashed: {exc}")
                    continue
                break
            if handle.stopping and not state.status.is_final:
                await self._status(state, AlgoStatus.CANCELLED, "cancelled")
        finally:
            del self._handles[state.algo_id]
            handle.stopped.set()

    async def _status(self, state: AlgoState, status: AlgoStatus, reason: str) -> None:
        s = state.started
        await self.write(
            lambda seq, ts: AlgoStatusChanged(
                seq, ts, s.algo_id, s.user_id, s.symbol, status, reason
            )
        )

    def _too_many(self, handle: AlgoHandle) -> bool:
        now = trio.current_time()
        handle.restarts = [t for t in handle.restarts if t >= now - self._window] + [now]
        return len(handle.restarts) >= self._max_restarts

    # ------------------------------------------------------------ queries

    def query_algo(self, algo_id: int) -> AlgoView | None:
        state = self.algos.get(algo_id)
        return None if state is None else state.view()

    def query_live_algos(self, user_id: UserId) -> tuple[int, list[AlgoView]]:
        """The user's running and paused algorithms, oldest first, and the last ``$algos``
        ``seq`` they include: the ``orders`` channel's snapshot of them."""
        views = [
            s.view()
            for s in self.algos.values()
            if s.started.user_id == user_id and not s.status.is_final
        ]
        return self.seq, sorted(views, key=lambda view: view.algo_id)

    def query_user_algos(self, user_id: UserId, limit: int) -> list[AlgoView]:
        """The user's algorithms, newest first."""
        views = [s.view() for s in reversed(self.algos.values()) if s.started.user_id == user_id]
        return views[:limit]
