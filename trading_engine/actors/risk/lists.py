"""Order lists in the risk actor: checked and held as one, their records, their cancel.

A list (``core.lists``) is checked member by member as any order is
(``_prepare``), then its funds as a whole, and held before it goes to its
symbol's matcher, which places it whole or refuses it whole (``ListRefused``:
every hold is given back).

What a list holds:

- every placed member its own hold, as the same order alone would hold, from
  the moment the list is accepted;
- every deferred member of an ``oto`` or ``otoco`` (placed only once the
  working order has filled completely), from the same moment, what it will
  need less what the working order's remaining lots deliver at least in that
  asset (``core.holds.pending_hold``): a take-profit and a stop-loss sell
  after a working buy of the same quantity hold nothing at first. Each fill
  of the working order raises the deferred holds by what its rest no longer
  delivers, from what the fill just paid in, in the same ``apply`` as the
  trade (``_fund_pending``), so no other order of the user spends it first;
  once the working order has filled, they hold in full, and are placed;
- but an OCO pair (an ``oco``'s two legs, an ``otoco``'s last two) one hold
  for both, kept under the first leg's order id: the larger of what the two
  need, not the sum. The matcher cancels one leg before the other's first
  trade, so only one leg ever spends from it; when a leg ends the hold drops
  to what the leg left needs (``_group_need``), and the last leg's end frees
  it. ``core.holds`` counts a pair and a deferred member the same way, so
  ``check_invariants`` and the audit check them.

A member that never reaches its book (the list cancelled or rejected first)
frees its hold when its list's ``OrderListUpdated`` is applied; what the
working order's fills paid into it goes back to available with it.

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
    OrderFilled,
    OrderListPlaced,
    OrderListUpdated,
    OrderRejected,
)
from trading_engine.core.holds import pending_hold
from trading_engine.core.ids import OrderId, Symbol, UserId
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

    def _submit_list(self, request: ListRequest, reply: Any) -> Rejected | Refused | None:
        if not self.storage_available:
            raise StorageUnavailable("storage is unavailable: orders are not accepted")
        client_key = None
        if request.list_client_id is not None:
            client_key = (request.user_id, request.list_client_id)
            taken = self._open_list_with(client_key)
            if taken is not None:
                return Refused(
                    "list_client_id_reused",
                    f"list_client_id {request.list_client_id!r} names the open order list"
                    f" {taken}: nothing placed",
                )
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
        if client_key is not None:
            self._lists_in_flight[specs[0].order_id] = (client_key, list_id)
        command = MatchSubmitList(list_id, kind, tuple(specs), reply, request.list_client_id or "")
        self._queue(symbol, command)
        return None

    def _open_list_with(self, client_key: tuple[UserId, str]) -> int | None:
        """The id of the user's open list (or list on its way to the journal) with this
        client id, if there is one."""
        for key, list_id in self._lists_in_flight.values():
            if key == client_key:
                return list_id
        kept = self.list_client_ids.get(client_key)
        record = None if kept is None else self.lists.get(kept)
        if record is not None and record.status is ListStatus.OPEN:
            return kept
        return None

    def _list_refused(self, first_member: OrderId) -> None:
        """A list refused or bounced before it was journaled: no longer in flight."""
        self._lists_in_flight.pop(first_member, None)

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
            if event.list_client_id:
                self.list_client_ids[(event.user_id, event.list_client_id)] = event.list_id
                flying = [k for k, (_, i) in self._lists_in_flight.items() if i == event.list_id]
                for first_member in flying:
                    del self._lists_in_flight[first_member]
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
                gone = self.lists.pop(self._final_lists.popitem(last=False)[0], None)
                if gone is not None and gone.list_client_id:
                    client_key = (gone.user_id, gone.list_client_id)
                    if self.list_client_ids.get(client_key) == gone.list_id:
                        del self.list_client_ids[client_key]
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
        if isinstance(event, OrderDeferred):
            hold = self._pending_hold(instrument, record, spec)
        else:
            hold = hold_for(instrument, spec)
        if position not in pair:
            if spec.order_id not in accounts.holds:
                accounts.hold(spec.order_id, spec.user_id, hold)
            return
        key = record.members[pair[0]]
        self._join_pair(key, instrument.symbol, spec)
        entry = accounts.holds.get(key)
        if entry is None:
            accounts.hold(key, spec.user_id, hold)
        elif hold.amount > entry[2] and not accounts.adjust_hold(key, hold.amount):
            raise InvariantViolation(f"order list {record.list_id}: no funds for its pair")

    def _pending_hold(self, instrument: Instrument, record: ListRecord, spec: OrderSpec) -> Hold:
        """What the deferred member ``spec`` of ``record`` holds now: ``pending_hold`` for
        the lots its working order has left to fill."""
        working = self.orders[record.members[0]]
        return pending_hold(instrument, working.spec, working.remaining, spec)

    def _fund_pending(self, instrument: Instrument, event: OrderFilled) -> None:
        """A fill of a list's working order, its trade applied: raise its deferred
        members' holds to what the working order's rest no longer covers, from what the
        fill paid in (``pending_hold`` never rises by more), before any other command of
        the user can spend it."""
        record = self.lists.get(self.orders[event.order_id].spec.list_id)
        if (
            record is None
            or record.status is not ListStatus.OPEN
            or not record.deferred
            or record.members[0] != event.order_id
        ):
            return
        working = self.orders[event.order_id].spec
        accounts = self.accounts
        for spec in record.deferred.values():
            key = self._held_by(spec.order_id)
            entry = accounts.holds.get(key)
            hold = pending_hold(instrument, working, event.remaining, spec)
            raised = entry is not None and hold.amount > entry[2]
            if raised and not accounts.adjust_hold(key, hold.amount):
                raise InvariantViolation(
                    f"order list {record.list_id}: its working order's fill does not "
                    f"fund order {spec.order_id}"
                )


def _list_holds(
    instrument: Instrument, kind: ListType, specs: list[OrderSpec]
) -> list[tuple[OrderId, Hold]]:
    """The holds a list takes: each member's, the deferred ones' less what the working
    order will deliver (``pending_hold``), but one for its OCO pair (the larger)."""
    pair = pair_of(kind)
    working = specs[0]

    def held(position: int) -> Hold:
        spec = specs[position]
        if kind is ListType.OCO or position == 0:
            return hold_for(instrument, spec)
        return pending_hold(instrument, working, working.quantity, spec)

    holds = []
    for position, spec in enumerate(specs):
        if position in pair[1:]:
            continue
        hold = held(position)
        if pair and position == pair[0]:
            other = held(pair[1])
            hold = Hold(hold.asset, max(hold.amount, other.amount))
        holds.append((spec.order_id, hold))
    return holds
