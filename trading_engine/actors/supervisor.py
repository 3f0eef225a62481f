"""The supervisor: one symbol actor per symbol, restarted from the journal when it crashes.

It creates each symbol's inbox and keeps it, so a restarted actor reads the
same inbox and no queued command is lost. A crash closes the replies of the
batch in hand (their askers get ``ActorUnavailable``) and asks the risk actor
to release the holds of orders that never reached the journal; the actor is
then rebuilt from the symbol's journaled events, once every commit it had
already handed to the journal actor is durable. A symbol that crashes
``max_restarts`` times within ``window`` seconds is halted: its commands are
refused with ``symbol_halted`` until an admin resumes it. Other symbols never
notice.

The supervisor also writes the ``$symbols`` stream (listings, halts,
resumes), which it alone owns.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import assert_never

import attrs
import trio

from trading_engine.actors.mailbox import Reply
from trading_engine.actors.messages import (
    BookSnapshot,
    Commit,
    Expire,
    MatchAmend,
    MatchCancel,
    MatchCancelAll,
    MatchCancelList,
    MatchSubmit,
    MatchSubmitList,
    Refused,
    Rejected,
    ReleaseHolds,
    SetReference,
    SupervisorNotice,
    SymbolBatch,
    SymbolCommand,
    SymbolStatus,
)
from trading_engine.actors.symbol import SymbolActor, rebuild_matcher
from trading_engine.core.account_events import (
    SYMBOLS_STREAM,
    InstrumentListed,
    SymbolHalted,
    SymbolResumed,
    SymbolsStreamEvent,
)
from trading_engine.core.enums import RejectReason
from trading_engine.core.events import Journaled
from trading_engine.core.ids import OrderId, Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.core.matcher import Matcher
from trading_engine.core.risk import Rejection
from trading_engine.storage.journal import Journal

__all__ = ["Supervisor", "SymbolHandle"]

log = logging.getLogger(__name__)


@attrs.define(eq=False)
class SymbolHandle:
    """What the supervisor keeps per symbol across restarts."""

    instrument: Instrument
    send: trio.MemorySendChannel[SymbolBatch]
    receive: trio.MemoryReceiveChannel[SymbolBatch]
    halted: str | None = None
    restarts: deque[float] = attrs.field(factory=deque)
    crashes: int = 0
    scope: trio.CancelScope | None = None
    resumed: trio.Event = attrs.field(factory=trio.Event)
    ready: trio.Event = attrs.field(factory=trio.Event)
    recovered: Matcher | None = None
    """The matcher rebuilt at engine start from the one read of the journal;
    the first start takes it, later restarts read the journal again."""


class Supervisor:
    def __init__(
        self,
        journal: Journal,
        journal_inbox: trio.MemorySendChannel[Commit],
        notify: Callable[[SupervisorNotice], None],
        *,
        inbox_size: int = 10_000,
        max_restarts: int = 5,
        window: float = 60.0,
        expire_every: float = 1.0,
    ) -> None:
        self._journal = journal
        self._journal_inbox = journal_inbox
        self._notify = notify
        """Sends a status message to every actor that tracks symbols (never blocks)."""
        self._inbox_size = inbox_size
        self._max_restarts = max_restarts
        self._window = window
        self._expire_every = expire_every
        self.handles: dict[Symbol, SymbolHandle] = {}
        self.seq = 0
        self._nursery: trio.Nursery | None = None

    # ------------------------------------------------------------ recovery and start

    def recover(self, event: SymbolsStreamEvent) -> None:
        """Apply one journaled ``$symbols`` event before the actors start."""
        self.seq = event.seq
        match event:
            case InstrumentListed(instrument=instrument):
                self._register(instrument).recovered = Matcher(instrument)
            case SymbolHalted(symbol=symbol, reason=reason):
                self.handles[symbol].halted = reason
                self._announce(self.handles[symbol])
            case SymbolResumed(symbol=symbol):
                self.handles[symbol].halted = None
                self._announce(self.handles[symbol])
            case _:
                assert_never(event)

    def restore(
        self, seq: int, symbols: dict[Symbol, tuple[Instrument, str | None, Matcher]]
    ) -> None:
        """Take the symbols of a snapshot before the actors start (``actors/snapshot.py``)."""
        self.seq = seq
        for instrument, halted, matcher in symbols.values():
            handle = self._register(instrument)
            handle.recovered = matcher
            if halted is not None:
                handle.halted = halted
                self._announce(handle)

    def recover_symbol(self, symbol: Symbol, events: Sequence[Journaled]) -> None:
        """Apply journaled events of ``symbol``'s own stream before the actors start."""
        matcher = self.handles[symbol].recovered
        assert matcher is not None, f"{symbol}: events after the engine started"
        for event in events:
            matcher.apply(event)  # type: ignore[arg-type]

    def _register(self, instrument: Instrument) -> SymbolHandle:
        send, receive = trio.open_memory_channel[SymbolBatch](self._inbox_size)
        handle = SymbolHandle(instrument, send, receive)
        self.handles[instrument.symbol] = handle
        self._announce(handle)
        return handle

    def status(self, symbol: Symbol) -> SymbolStatus:
        handle = self.handles[symbol]
        halted = handle.halted is not None
        return SymbolStatus(handle.instrument, handle.send, halted, handle.halted or "")

    def _announce(self, handle: SymbolHandle) -> None:
        self._notify(self.status(handle.instrument.symbol))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for handle in self.handles.values():
                nursery.start_soon(self._keep, handle)
            nursery.start_soon(self._expiry_clock)
            task_status.started()
            await trio.sleep_forever()  # symbols added later start in this nursery

    # ------------------------------------------------------------ admin

    async def add(self, instrument: Instrument) -> Refused | None:
        if instrument.symbol in self.handles:
            return Refused("symbol_exists", f"{instrument.symbol} is already listed")
        await self._write(InstrumentListed(self.seq + 1, time.time_ns(), instrument))
        handle = self._register(instrument)
        assert self._nursery is not None
        self._nursery.start_soon(self._keep, handle)
        return None

    async def halt(self, symbol: Symbol, reason: str) -> Refused | None:
        handle = self.handles.get(symbol)
        if handle is None:
            return Refused("symbol_unknown", f"no symbol {symbol}")
        if handle.halted is not None:
            return Refused("symbol_halted", f"{symbol} is already halted: {handle.halted}")
        await self._set_halted(handle, reason)
        return None

    async def resume(self, symbol: Symbol) -> Refused | None:
        handle = self.handles.get(symbol)
        if handle is None:
            return Refused("symbol_unknown", f"no symbol {symbol}")
        if handle.halted is None:
            return Refused("symbol_trading", f"{symbol} is not halted")
        await self._write(SymbolResumed(self.seq + 1, time.time_ns(), symbol))
        handle.halted = None
        handle.restarts.clear()
        handle.resumed.set()
        # Announce only once the actor reads the inbox again: until then the
        # halted loop would refuse what risk forwards.
        await handle.ready.wait()
        self._announce(handle)
        return None

    async def _set_halted(self, handle: SymbolHandle, reason: str) -> None:
        await self._write(
            SymbolHalted(self.seq + 1, time.time_ns(), handle.instrument.symbol, reason)
        )
        handle.halted = reason
        handle.resumed = trio.Event()
        self._announce(handle)
        if handle.scope is not None:
            handle.scope.cancel()

    async def _write(self, event: SymbolsStreamEvent) -> None:
        reply: Reply[None] = Reply()
        await self._journal_inbox.send(Commit(SYMBOLS_STREAM, [event], ((reply, None),)))
        await reply.wait()
        self.seq = event.seq

    async def flush(self, stream: str) -> None:
        """Wait until every commit already handed to the journal actor is durable."""
        reply: Reply[None] = Reply()
        await self._journal_inbox.send(Commit(stream, [], ((reply, None),)))
        await reply.wait()

    # ------------------------------------------------------------ keeping one symbol alive

    async def _keep(self, handle: SymbolHandle) -> None:
        symbol = handle.instrument.symbol
        while True:
            if handle.halted is not None:
                await self._serve_halted(handle)
                continue
            matcher = await self._matcher(handle)
            actor = SymbolActor(matcher, handle.receive, self._journal_inbox, self._notify)
            with trio.CancelScope() as scope:
                handle.scope = scope
                handle.ready.set()
                try:
                    await actor.run()
                except Exception as exc:
                    handle.crashes += 1
                    log.exception("symbol %s crashed; restarting from the journal", symbol)
                    self._notify(ReleaseHolds(tuple(actor.inflight), tuple(actor.amends)))
                    if self._too_many(handle):
                        reason = (
                            f"crashed {len(handle.restarts)} times in {self._window:g} s: {exc}"
                        )
                        with trio.CancelScope(shield=True):
                            await self._set_halted(handle, reason)
                    continue
                finally:
                    handle.scope = None
                    handle.ready = trio.Event()
                return
            if scope.cancelled_caught:
                self._notify(ReleaseHolds(tuple(actor.inflight), tuple(actor.amends)))

    async def _matcher(self, handle: SymbolHandle) -> Matcher:
        """The matcher recovery built, the first time; after that, one rebuilt from
        the journal once every commit already handed to it is durable."""
        if (matcher := handle.recovered) is not None:
            handle.recovered = None
            return matcher
        await self.flush(handle.instrument.symbol)
        return await rebuild_matcher(handle.instrument, self._journal)

    def _too_many(self, handle: SymbolHandle) -> bool:
        now = trio.current_time()
        handle.restarts.append(now)
        while handle.restarts and handle.restarts[0] < now - self._window:
            handle.restarts.popleft()
        return len(handle.restarts) >= self._max_restarts

    async def _serve_halted(self, handle: SymbolHandle) -> None:
        """Refuse every command with ``symbol_halted`` until resumed."""
        matcher = await self._matcher(handle)
        reason = handle.halted or "halted"
        with trio.CancelScope() as scope:
            handle.scope = scope

            async def watch_resume() -> None:
                await handle.resumed.wait()
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch_resume)
                async for batch in handle.receive:
                    released: list[OrderId] = []
                    amended: list[OrderId] = []
                    for command in batch.commands:
                        _answer_halted(command, reason, matcher, released, amended)
                    if released or amended:
                        self._notify(ReleaseHolds(tuple(released), tuple(amended)))
        handle.scope = None

    async def _expiry_clock(self) -> None:
        """Tell each trading symbol the time, so that GTD orders expire when due."""
        if math.isinf(self._expire_every):
            return
        while True:
            await trio.sleep(self._expire_every)
            now = time.time_ns()
            for handle in self.handles.values():
                if handle.halted is None:
                    with contextlib.suppress(trio.WouldBlock):  # busy: the next tick will do
                        handle.send.send_nowait(SymbolBatch((Expire(now),)))


def _answer_halted(
    command: SymbolCommand,
    reason: str,
    matcher: Matcher,
    released: list[OrderId],
    amended: list[OrderId],
) -> None:
    """Answer a command of a halted symbol: refuse it, or read the frozen book for a
    snapshot. A submit's order goes to ``released``: its hold is to be released; an
    amend's to ``amended``: the hold risk raised for it is to be lowered again."""
    refusal = Refused("symbol_halted", f"symbol halted: {reason}")
    match command:
        case MatchSubmit(spec=spec, reply=reply):
            released.append(spec.order_id)
            if reply is not None:
                reply.send(Rejected((Rejection(RejectReason.SYMBOL_HALTED),)))
        case MatchAmend(order_id=order_id, reply=reply):
            amended.append(order_id)
            if reply is not None:
                reply.send(refusal)
        case MatchSubmitList(specs=specs, reply=reply):
            released.extend(spec.order_id for spec in specs)
            if reply is not None:
                reply.send(Rejected((Rejection(RejectReason.SYMBOL_HALTED),)))
        case MatchCancel(reply=reply) | MatchCancelList(reply=reply):
            if reply is not None:
                reply.send(refusal)
        case MatchCancelAll(reply=reply):
            if reply is not None:
                reply.send([])
        case BookSnapshot(depth=depth, reply=reply):
            reply.send((matcher.seq, *matcher.depth(depth)))
        case Expire() | SetReference():
            pass  # nothing to answer, and a halted symbol does not run them
        case _:
            assert_never(command)
