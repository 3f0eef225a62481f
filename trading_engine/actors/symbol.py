"""The symbol actor: one symbol's matcher, fed by its inbox in batches.

It drains everything waiting in its inbox in one wake-up, runs each command
through the matcher, and hands the batch's events to the journal actor in one
``Commit`` together with the replies, which the journal releases only once
the events are durable. On start it rebuilds its matcher by applying the
symbol's journaled events.

If it raises, the replies of the batch it was working on are closed (their
askers get ``ActorUnavailable``) and ``inflight`` names the orders whose
holds the risk actor must release, since they never reached the journal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, assert_never

import trio

from trading_engine.actors.mailbox import Reply, receive_batch
from trading_engine.actors.messages import (
    BookSnapshot,
    Commit,
    Expire,
    ListCancelled,
    ListRefused,
    ListResult,
    MatchAmend,
    MatchCancel,
    MatchCancelAll,
    MatchCancelList,
    MatchSubmit,
    MatchSubmitList,
    OrderResult,
    Refused,
    Rejected,
    ReleaseHolds,
    SetReference,
    SymbolBatch,
    SymbolCommand,
)
from trading_engine.core.enums import CancelReason
from trading_engine.core.events import Event, OrderListUpdated, OrderRejected, Trade
from trading_engine.core.ids import OrderId, Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.core.list_views import list_outcome
from trading_engine.core.lists import ListRefusal
from trading_engine.core.matcher import Matcher, Refusal
from trading_engine.core.risk import Rejection
from trading_engine.core.views import OrderRecord, concerns, submit_outcome
from trading_engine.storage.journal import Journal

__all__ = ["SymbolActor", "rebuild_matcher"]


async def rebuild_matcher(instrument: Instrument, journal: Journal) -> Matcher:
    """A matcher with every journaled event of the symbol applied, in ``seq`` order."""
    matcher = Matcher(instrument)
    for event in await journal.read(instrument.symbol):
        matcher.apply(event)  # type: ignore[arg-type]
    return matcher


class SymbolActor:
    """Runs one symbol's matcher; ``run`` returns when the inbox closes."""

    def __init__(
        self,
        matcher: Matcher,
        inbox: trio.MemoryReceiveChannel[SymbolBatch],
        journal: trio.MemorySendChannel[Commit],
        notify_risk: Callable[[ReleaseHolds], None],
    ) -> None:
        self.matcher = matcher
        self.symbol: Symbol = matcher.symbol
        self._inbox = inbox
        self._journal = journal
        self._notify_risk = notify_risk
        self.inflight: list[OrderId] = []
        """Submits of the batch in hand that the journal has not yet been given."""
        self.amends: list[OrderId] = []
        """Amends of the batch in hand (the risk actor raised their holds beforehand)."""
        self._replies: list[tuple[Reply[Any], object]] = []

    async def run(self) -> None:
        try:
            while (batch := await receive_batch(self._inbox)) is not None:
                events = self._handle(batch)
                replies = tuple(self._replies)
                self._replies = []
                if events or replies:
                    await self._journal.send(Commit(self.symbol, events, replies))
                self.inflight.clear()
                self.amends.clear()
        except BaseException:
            for reply, _ in self._replies:
                reply.close()
            raise

    def _handle(self, batch: Sequence[SymbolBatch]) -> list[Event]:
        matcher = self.matcher
        out: list[Event] = []
        ts = time.time_ns()
        commands = [command for message in batch for command in message.commands]
        for index, command in enumerate(commands):
            try:
                out.extend(self._command(matcher, command, ts))
            except BaseException:
                _close(command)  # ``_command`` listed what it held first thing
                self._abandon(commands[index + 1 :])
                raise
        return out

    def _abandon(self, commands: Sequence[SymbolCommand]) -> None:
        """A crash: the rest of the batch is never run; answer it and list what it held."""
        for command in commands:
            if isinstance(command, MatchSubmit):
                self.inflight.append(command.spec.order_id)
            elif isinstance(command, MatchSubmitList):
                self.inflight.extend(spec.order_id for spec in command.specs)
            elif isinstance(command, MatchAmend):
                self.amends.append(command.order_id)
            _close(command)

    def _command(self, matcher: Matcher, command: SymbolCommand, ts: int) -> list[Event]:
        match command:
            case MatchSubmit(spec=spec, reply=reply):
                self.inflight.append(spec.order_id)
                events = matcher.submit(spec, ts)
                if reply is not None:
                    self._replies.append((reply, _submit_result(spec.order_id, events)))
                return events
            case MatchCancel(order_id=order_id, reason=reason, reply=reply):
                before = self._record(order_id)
                cancelled = matcher.cancel(order_id, ts, reason=CancelReason(reason))
                return self._answer(order_id, before, cancelled, reply)
            case MatchAmend(order_id=order_id, price=price, quantity=quantity, reply=reply):
                self.amends.append(order_id)
                before = self._record(order_id)
                amended = matcher.amend(order_id, ts, price=price, quantity=quantity)
                if isinstance(amended, Refusal):
                    # Risk raised the hold for this amend; it may lower it again, now, and
                    # not once more should the batch crash.
                    self.amends.pop()
                    self._notify_risk(ReleaseHolds((), (order_id,)))
                return self._answer(order_id, before, amended, reply)
            case MatchCancelAll(user_id=user_id, reply=reply, reason=reason):
                records = {
                    o.order_id: OrderRecord.from_order(self.symbol, o)
                    for o in matcher.open_orders(user_id)
                }
                events = matcher.cancel_all(user_id, ts, reason=reason)
                for event in events:
                    record = records.get(getattr(event, "order_id", OrderId(0)))
                    if record is not None:
                        record.apply(event)
                if reply is not None:
                    self._replies.append((reply, [r.view() for r in records.values()]))
                return events
            case MatchSubmitList(list_id=list_id, kind=kind, specs=specs, reply=reply):
                ids = [spec.order_id for spec in specs]
                self.inflight.extend(ids)
                placed = matcher.submit_list(list_id, kind, list(specs), ts)
                if isinstance(placed, ListRefusal):
                    del self.inflight[-len(ids) :]
                    self._notify_risk(ReleaseHolds(tuple(ids)))
                    if reply is not None:
                        self._replies.append((reply, ListRefused(placed.position, placed.reason)))
                    return []
                if reply is not None:
                    self._replies.append((reply, ListResult(*list_outcome(placed))))
                return placed
            case MatchCancelList(list_id=list_id, order_ids=order_ids, user_id=user_id):
                members = matcher.lists[list_id].members if list_id in matcher.lists else order_ids
                kept = [r for r in map(self._record, members) if r is not None]
                ended = matcher.cancel_list(list_id, order_ids, user_id, ts)
                if command.reply is not None:
                    self._replies.append((command.reply, _list_cancelled(list_id, kept, ended)))
                return ended or []
            case Expire(now=now):
                return matcher.expire(now)
            case SetReference(price=price):
                matcher.reference_price = price
                return []
            case BookSnapshot(depth=depth, reply=reply):
                bids, asks = matcher.depth(depth)
                self._replies.append((reply, (matcher.seq, bids, asks)))
                return []
            case _:
                assert_never(command)

    def _record(self, order_id: OrderId) -> OrderRecord | None:
        """The order as it stands before a command changes it (the matcher mutates in place)."""
        order = self.matcher.orders.get(order_id)
        return None if order is None else OrderRecord.from_order(self.symbol, order)

    def _answer(
        self,
        order_id: OrderId,
        record: OrderRecord | None,
        result: list[Event] | Refusal,
        reply: Reply[OrderResult | Refused] | None,
    ) -> list[Event]:
        if isinstance(result, Refusal):
            if reply is not None:
                self._replies.append(
                    (reply, Refused(str(result.reason), f"order {order_id}: {result.reason}"))
                )
            return []
        if reply is not None and record is not None:
            trades = []
            for event in result:
                if concerns(event, order_id):
                    record.apply(event)
                    if isinstance(event, Trade):
                        trades.append(event)
            self._replies.append((reply, OrderResult(record.view(), tuple(trades))))
        return result


def _close(command: SymbolCommand) -> None:
    """Answer a command that will never run as the engine stopping answers it."""
    reply = getattr(command, "reply", None)
    if reply is not None:
        reply.close()


def _list_cancelled(
    list_id: int, records: list[OrderRecord], events: list[Event] | None
) -> ListCancelled | Refused:
    """The members a list's cancel changed, as they are now, and the list's new status."""
    if events is None:
        return Refused("order_list_not_open", f"order list {list_id} has no open order")
    status = None
    for event in events:
        if isinstance(event, OrderListUpdated) and event.list_id == list_id:
            status = event.status
        for record in records:
            if concerns(event, record.spec.order_id):
                record.apply(event)
    return ListCancelled(tuple(record.view() for record in records), status)


def _submit_result(order_id: OrderId, events: list[Event]) -> OrderResult | Rejected:
    view, trades, accepted = submit_outcome(order_id, events)
    if not accepted:
        first = events[0]
        assert isinstance(first, OrderRejected)
        return Rejected((Rejection(first.reason),), view)
    return OrderResult(view, tuple(trades))
