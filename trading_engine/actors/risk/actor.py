"""The risk actor's loop: its inbox read in batches, each message dispatched, then sent on.

``run`` goes live (``go_live``, ``margin.py``), starts the clock of the
dead man's switches (``switches.py``) beside its loop, then handles each batch of
its inbox, one ``match`` over the message kinds (``handle``), and flushes:
the commands of one wake-up go to each symbol in one ``SymbolBatch`` (a full
or closed inbox refuses the batch with ``EngineBusy`` and undoes its holds),
and the ``$accounts`` events of the wake-up go to the journal in one
``Commit`` with the replies that wait for them. A reply that needs no
journal is sent at once. An engine error raised by a request fails its
reply; an ``InvariantViolation`` is a bug and crashes the actor.

``RiskActor`` puts the parts (mixins, see the package's docstring) together
and adds only this.
"""

from __future__ import annotations

from typing import Any, assert_never

import trio

from trading_engine.actors.mailbox import EngineBusy, receive_batch
from trading_engine.actors.messages import (
    AmendOrder,
    CancelAllAfter,
    CancelAllOrders,
    CancelList,
    CancelOrder,
    CheckOrder,
    Commit,
    CommittedBatch,
    CreateUser,
    FireSwitches,
    MatchAmend,
    MatchCancel,
    MatchCancelAll,
    MatchSubmit,
    MatchSubmitList,
    MoveFunds,
    Query,
    ReferencePrice,
    Refused,
    ReleaseHolds,
    RiskMessage,
    SetCredential,
    StorageStatus,
    SubmitList,
    SubmitOrder,
    SwitchFired,
    SymbolBatch,
    SymbolCommand,
    SymbolStatus,
)
from trading_engine.actors.risk.committed import CommittedMixin
from trading_engine.actors.risk.queries import QueriesMixin
from trading_engine.actors.risk.state import SymbolState
from trading_engine.core.account_events import ACCOUNTS_STREAM
from trading_engine.core.ids import Symbol
from trading_engine.errors import InvariantViolation, TradingEngineError

__all__ = ["RiskActor"]


class RiskActor(QueriesMixin, CommittedMixin):
    """Owns accounts and order views; reached only through ``inbox``.

    Built as ``RiskActor(inbox, journal, config, margin_rates, itself=send)``, ``send``
    being ``inbox``'s sending side (for the actor's clock): the constructor
    is ``RiskState.__init__`` (``state.py``), beside every attribute it sets."""

    async def run(self) -> None:
        self.go_live()
        await self._flush()
        async with trio.open_nursery() as nursery:
            self._tasks = nursery
            nursery.start_soon(self.switch_clock)
            while (batch := await receive_batch(self._inbox)) is not None:
                for message in batch:
                    self.handle(message)
                await self._flush()
            nursery.cancel_scope.cancel()
        self._tasks = None

    async def _flush(self) -> None:
        for symbol, commands in self._outgoing.items():
            state = self.symbols[symbol]
            try:
                state.inbox.send_nowait(SymbolBatch(tuple(commands)))
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._bounce(symbol, commands)
        self._outgoing = {}
        if self._account_events or self._account_replies:
            commit = Commit(ACCOUNTS_STREAM, self._account_events, tuple(self._account_replies))
            self._account_events = []
            self._account_replies = []
            await self._journal.send(commit)

    def _bounce(self, symbol: Symbol, commands: list[SymbolCommand]) -> None:
        """The symbol's inbox is full or gone: undo and refuse every command of the batch."""
        for command in commands:
            if isinstance(command, MatchSubmit):
                self._forget_submit(command.spec)
            elif isinstance(command, MatchSubmitList):
                for spec in command.specs:
                    self._forget_submit(spec)
            elif isinstance(command, MatchAmend):
                self._amend_ended(command.order_id, committed=False)
            reply = getattr(command, "reply", None)
            if reply is not None:
                reply.fail(EngineBusy(f"{symbol} is busy: retry shortly"))

    def handle(self, message: RiskMessage) -> None:
        """Handle one message; replies that need no journal are answered at once."""
        match message:
            case SubmitOrder(request=request, reply=reply):
                with _AnswerErrors(reply):
                    outcome = self._submit(request, reply)
                    if outcome is not None:
                        reply.send(outcome)
            case SubmitList(request=request, reply=reply):
                with _AnswerErrors(reply):
                    rejected = self._submit_list(request, reply)
                    if rejected is not None:
                        reply.send(rejected)
            case CancelList():
                self._cancel_list(message)
            case CommittedBatch(commits=commits):
                for committed in commits:
                    self.apply(committed.stream, committed.events)
            case CancelOrder(order_id=order_id, user_id=user_id, reply=reply):
                refused = self._route(order_id, user_id)
                if isinstance(refused, Refused):
                    reply.send(refused)
                else:
                    self._queue(refused, MatchCancel(order_id, "user", reply))
            case AmendOrder():
                self._amend(message)
            case CancelAllOrders(user_id=user_id, symbol=symbol, reply=reply):
                if symbol not in self.symbols:
                    reply.send([])
                else:
                    self._queue(symbol, MatchCancelAll(user_id, reply))
            case CheckOrder(request=request, reply=reply):
                with _AnswerErrors(reply):
                    reply.send(self._dry_run(request))
            case MoveFunds():
                self._move_funds(message)
            case CreateUser():
                self._create_user(message)
            case SetCredential():
                self._set_credential(message)
            case Query(read=read, reply=reply):
                with _AnswerErrors(reply):
                    reply.send(read(self))
            case SymbolStatus(instrument=instrument, inbox=inbox, halted=halted, reason=reason):
                state = self.symbols.get(instrument.symbol)
                if state is None:
                    limits = self._config.limits_for(instrument)
                    state = self.symbols[instrument.symbol] = SymbolState(instrument, inbox, limits)
                state.inbox = inbox
                state.halted = reason or "halted" if halted else None
            case ReferencePrice(symbol=symbol, price=price):
                if symbol in self.symbols:
                    self.symbols[symbol].reference = price
                    if price is not None and self.symbols[symbol].margin:
                        self._check_liquidations(symbol, price)
            case ReleaseHolds(order_ids=order_ids, amended=amended):
                for order_id in order_ids:
                    if order_id not in self.orders:
                        self._release(order_id)
                        self._forget_pending(order_id)
                for order_id in amended:
                    self._amend_ended(order_id, committed=False)
            case StorageStatus(available=available):
                self.storage_available = available
            case CancelAllAfter():
                self._cancel_all_after(message)
            case FireSwitches():
                self._fire_switches(message)
            case SwitchFired():
                self._switch_fired(message)
            case _:
                assert_never(message)


class _AnswerErrors:
    """Fail ``reply`` with an engine error raised inside the block, instead of crashing."""

    def __init__(self, reply: Any) -> None:
        self._reply = reply

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, TradingEngineError) and not isinstance(exc, _BUGS):
            self._reply.fail(exc)
            return True
        return False


# An invariant violation is a bug: let it crash the actor (and the engine) loudly.
_BUGS: tuple[type[Exception], ...] = (InvariantViolation,)
