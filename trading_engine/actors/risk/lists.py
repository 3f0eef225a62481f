"""Order lists in the risk actor: checked and held as one, their records, their cancel.

A list (``core.lists``) is checked member by member as any order is
(``_prepare``), then its funds as a whole, and held before it goes to its
symbol's matcher, which places it whole or refuses it whole (``ListRefused``:
every hold is given back).

What a list holds:

- every member its own hold, as the same order alone would hold, from the
  moment the list is accepted, the deferred members of an ``oto`` or
  ``otoco`` included (their funds are there when their turn comes);
- but an OCO pair (an ``oco``'s two legs, an ``otoco``'s last two) one hold
  for both, kept under the first leg's order id: the larger of what the two
  need, not the sum. The matcher cancels one leg before the other's first
  trade, so only one leg ever spends from it; when a leg ends the hold drops
  to what the leg left needs (``_group_need``), and the last leg's end frees
  it. ``core.holds`` counts a pair the same way, so ``check_invariants`` and
  the audit check it.

A member that never reaches its book (the list cancelled or rejected first)
frees its hold when its list's ``OrderListUpdated`` is applied.

A mixin over ``AmendMixin`` (``_sync_hold``, ``_release``, ``_prepare``).
"""

from __future__ import annotations

from typing import Any

from trading_engine.actors.messages import (
    CancelList,
    ListRequest,
    MatchCancelList,
    MatchSubmitList,
    Refused,
    Rejected,
)
from trading_engine.actors.risk.amends import AmendMixin
from trading_engine.core.enums import ListStatus, ListType, RejectReason
from trading_engine.core.events import (
    OrderAccepted,
    OrderDeferred,
    OrderListPlaced,
    OrderListUpdated,
    OrderRejected,
)
from trading_engine.core.ids import OrderId, Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.core.list_views import ListRecord
from trading_engine.core.lists import check_list
from trading_engine.core.orders import OrderSpec
from trading_engine.core.risk import Hold, Rejection, hold_for, shortfall
from trading_engine.errors import InvalidInput, InvariantViolation
from trading_engine.storage.journal import StorageUnavailable

__all__ = ["ListsMixin", "pair_of"]


def pair_of(kind: ListType) -> tuple[int, ...]:
    """The positions of a list's OCO pair among its members (none for an ``oto``)."""
    return {ListType.OCO: (0, 1), ListType.OTOCO: (1, 2)}.get(kind, ())


class ListsMixin(AmendMixin):
    """``POST /order-lists`` checked and held, list events applied, ``DELETE`` routed."""

    def _submit_list(self, request: ListRequest, reply: Any) -> Rejected | None:
        if not self.storage_available:
            raise StorageUnavailable("storage is unavailable: orders are not accepted")
        members = request.orders
        if not members:
            raise InvalidInput("orders", "a list needs orders")
        symbol = members[0].symbol
        for position, member in enumerate(members):
            if member.symbol != symbol:
                raise InvalidInput(
                    f"orders.{position}.symbol", "every order of a list is on one symbol"
                )
        state = self.symbols.get(symbol)
        if state is not None and state.margin:
            raise InvalidInput("orders.0.symbol", f"{symbol} trades on margin: lists are spot")
        list_id = self.next_list_id
        specs: list[OrderSpec] = []
        reasons: list[Rejection] = []
        for position, member in enumerate(members):
            try:
                spec, why = self._prepare(member, self.next_order_id + position)
            except InvalidInput as exc:
                message = str(exc).removeprefix(f"{exc.field}: ")
                raise InvalidInput(f"orders.{position}.{exc.field}", message) from None
            if spec is None:  # an unknown user or symbol, a halted symbol
                return Rejected(tuple(why))
            reasons += [r for r in why if r.reason is not RejectReason.INSUFFICIENT_FUNDS]
            specs.append(spec._replace(list_id=list_id))
        kind = request.kind
        check_list(kind, specs)
        assert state is not None
        instrument = state.instrument
        for spec in specs:
            if (
                spec.client_order_id is not None
                and (spec.user_id, spec.client_order_id) in self.client_ids
            ):
                reasons.append(Rejection(RejectReason.DUPLICATE_CLIENT_ORDER_ID))
        holds = _list_holds(instrument, kind, specs)
        needed: dict[str, int] = {}
        for _, hold in holds:
            needed[hold.asset] = needed.get(hold.asset, 0) + hold.amount
        for asset, amount in needed.items():
            available, _ = self.accounts.balance(request.user_id, asset)
            if amount > available:
                reasons.append(
                    shortfall(RejectReason.INSUFFICIENT_FUNDS, Hold(asset, amount), available)
                )
        if reasons:
            return Rejected(tuple(reasons))
        self.next_list_id += 1
        self.next_order_id += len(specs)
        for key, hold in holds:
            self.accounts.hold(key, request.user_id, hold)
        pair = pair_of(kind)
        if pair:
            key = specs[pair[0]].order_id
            for position in pair:
                self._join_pair(key, symbol, specs[position])
        for spec in specs:
            if spec.client_order_id is not None:
                client_key = (spec.user_id, spec.client_order_id)
                self.client_ids[client_key] = spec.order_id
                self._unconfirmed_ids[spec.order_id] = client_key
                self._unconfirmed_specs[spec.order_id] = (symbol, spec)
        self._queue(symbol, MatchSubmitList(list_id, kind, tuple(specs), reply))
        return None

    def _cancel_list(self, message: CancelList) -> None:
        record = self.lists.get(message.list_id)
        if record is None or (message.user_id is not None and record.user_id != message.user_id):
            message.reply.send(Refused("unknown_order_list", f"no order list {message.list_id}"))
            return
        halted = self.symbols[record.symbol].halted
        if halted is not None:
            message.reply.send(Refused("symbol_halted", f"{record.symbol} is halted: {halted}"))
            return
        command = MatchCancelList(
            record.list_id, tuple(record.members), message.user_id, message.reply
        )
        self._queue(record.symbol, command)

    def _join_pair(self, key: OrderId, symbol: Symbol, spec: OrderSpec) -> None:
        order_id = spec.order_id
        if order_id not in self.hold_groups:
            self.hold_groups[order_id] = key
            self.group_members.setdefault(key, []).append(order_id)
            self.group_specs[order_id] = (symbol, spec)

    def _apply_list_event(
        self,
        instrument: Instrument,
        event: OrderListPlaced | OrderDeferred | OrderListUpdated | OrderAccepted | OrderRejected,
    ) -> None:
        """A list's event, or a member's ``OrderAccepted`` or ``OrderRejected``: the list's
        record, and, for a member that joins it, its hold (already taken live; taken here
        on replay)."""
        if isinstance(event, OrderListPlaced):
            self.lists[event.list_id] = ListRecord(event)
            self.next_list_id = max(self.next_list_id, event.list_id + 1)
            return
        if isinstance(event, OrderListUpdated):
            record = self.lists[event.list_id]
            record.apply(event)
            for order_id in record.deferred:  # never placed: their holds go back
                if record.status is not ListStatus.OPEN:
                    self._release(order_id)
                    self._forget_pending(order_id)
            self._final_lists[event.list_id] = None
            keep = self._config.keep_finished
            while keep and len(self._final_lists) > keep:
                self.lists.pop(self._final_lists.popitem(last=False)[0], None)
            return
        spec = event.spec
        record = self.lists[spec.list_id]
        if not record.apply(event) or isinstance(event, OrderRejected):
            return  # a deferred member placed or rejected: its hold is there already
        if isinstance(event, OrderDeferred):
            self.next_order_id = max(self.next_order_id, spec.order_id + 1)
        position = len(record.members) - 1
        pair = pair_of(record.kind)
        accounts = self.accounts
        if position not in pair:
            if spec.order_id not in accounts.holds:
                accounts.hold(spec.order_id, spec.user_id, hold_for(instrument, spec))
            return
        key = record.members[pair[0]]
        self._join_pair(key, instrument.symbol, spec)
        hold = hold_for(instrument, spec)
        entry = accounts.holds.get(key)
        if entry is None:
            accounts.hold(key, spec.user_id, hold)
        elif hold.amount > entry[2] and not accounts.adjust_hold(key, hold.amount):
            raise InvariantViolation(f"order list {record.list_id}: no funds for its pair")


def _list_holds(
    instrument: Instrument, kind: ListType, specs: list[OrderSpec]
) -> list[tuple[OrderId, Hold]]:
    """The holds a list takes: each member's, but one for its OCO pair (the larger)."""
    pair = pair_of(kind)
    holds = []
    for position, spec in enumerate(specs):
        if position in pair[1:]:
            continue
        hold = hold_for(instrument, spec)
        if pair and position == pair[0]:
            other = hold_for(instrument, specs[pair[1]])
            hold = Hold(hold.asset, max(hold.amount, other.amount))
        holds.append((spec.order_id, hold))
    return holds
