"""Order lists in the matcher: OCO pairs, and orders placed once another has filled.

A list lives in one symbol, so its matcher alone decides what happens to it,
within the step of the symbol actor that causes it:

- ``oco``: a take-profit leg (``limit``, ``take_profit``, ``take_profit_limit``)
  and a stop-loss leg (``stop``, ``stop_limit``, ``trailing_stop``,
  ``trailing_stop_limit``) on one side, both able to rest (GTC or GTD; a limit
  leg that would trade at once or a stop that would trigger at once refuses the
  list). When either leg trades (a first fill, partial or full) or triggers, the
  other is cancelled (reason ``oco``) before that trade or the triggered order's
  first trade, and the list is ``done``; the leg that traded goes on as an
  ordinary order. So both legs never trade.
- ``oto``: a working order, then a pending order, deferred (``OrderDeferred``,
  not in the book) until the working order has filled completely, then placed
  in the same step, after the taker's matching and the stops it triggered; the
  list is then ``done``.
- ``otoco``: a working order, then an OCO pair (take-profit, stop-loss), placed
  as an ``oto`` places its pending order and then working as an ``oco``.

A member that ends unfilled while the list is open (cancelled by its owner, by
self-trade prevention, a mass cancel or the dead man's switch; expired; an IOC
or market working order's unfilled rest) cuts the list: every other live member
is cancelled (reason ``order_list``), the deferred ones are dropped, and the
list is ``cancelled``. A deferred member that the matcher rejects when its
turn comes (a stop that would trigger at once, say) is rejected with its pair,
and the list is ``rejected``. Every change is an event, so replay rebuilds the
lists without deciding anything.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from trading_engine.core.enums import (
    CancelReason,
    ListStatus,
    ListType,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from trading_engine.core.events import (
    Event,
    OrderAccepted,
    OrderDeferred,
    OrderListPlaced,
    OrderListUpdated,
    OrderRejected,
)
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.order_list import OrderList
from trading_engine.core.orders import Order, OrderSpec
from trading_engine.core.positions import Positions
from trading_engine.errors import InvalidInput

__all__ = ["LIST_SIZES", "ListRefusal", "OrderLists", "check_list"]

_PENDING: Final = OrderStatus.PENDING_TRIGGER
_T = OrderType
TAKE_PROFIT_LEG: Final = frozenset({_T.LIMIT, _T.TAKE_PROFIT, _T.TAKE_PROFIT_LIMIT})
STOP_LOSS_LEG: Final = frozenset({_T.STOP, _T.STOP_LIMIT, _T.TRAILING_STOP, _T.TRAILING_STOP_LIMIT})
LIST_SIZES: Final = {ListType.OCO: 2, ListType.OTO: 2, ListType.OTOCO: 3}
"""How many orders each kind of list has."""
_RESTING_TIFS: Final = frozenset({TimeInForce.GTC, TimeInForce.GTD})


class ListRefusal(NamedTuple):
    """A list the matcher refused, changing nothing: its member at ``position`` would be
    rejected (``reason``), or, an OCO leg, would trade at once (``post_only_would_take``)."""

    position: int
    reason: RejectReason


def check_list(kind: ListType, specs: list[OrderSpec]) -> None:
    """Raise ``InvalidInput`` naming the field (``orders.1.type``) unless ``specs`` (each
    already a valid order) make a list of ``kind``; the book is not consulted."""
    if len(specs) != LIST_SIZES[kind]:
        raise InvalidInput("orders", f"an {kind} list has {LIST_SIZES[kind]} orders")
    client_ids = [spec.client_order_id for spec in specs if spec.client_order_id is not None]
    if len(set(client_ids)) != len(client_ids):
        raise InvalidInput("orders", "the orders of a list need distinct client_order_ids")
    for index, spec in enumerate(specs):
        if spec.quote_quantity:
            raise InvalidInput(f"orders.{index}.quote_quantity", "is not available in a list")
    if kind is ListType.OTO:
        return
    first = 0 if kind is ListType.OCO else 1
    take_profit, stop_loss = specs[first], specs[first + 1]
    if take_profit.type not in TAKE_PROFIT_LEG:
        raise InvalidInput(
            f"orders.{first}.type", "an OCO's first leg is a limit, take_profit or "
            "take_profit_limit order",
        )  # fmt: skip
    if stop_loss.type not in STOP_LOSS_LEG:
        raise InvalidInput(
            f"orders.{first + 1}.type", "an OCO's second leg is a stop, stop_limit, "
            "trailing_stop or trailing_stop_limit order",
        )  # fmt: skip
    if stop_loss.side is not take_profit.side:
        raise InvalidInput(f"orders.{first + 1}.side", "the legs of an OCO are on one side")
    for index in (first, first + 1):
        if specs[index].time_in_force not in _RESTING_TIFS:
            raise InvalidInput(
                f"orders.{index}.time_in_force", "an OCO leg must be able to rest: GTC or GTD"
            )


class OrderLists(Positions):
    """The open lists of ``MatcherState`` (``lists``, ``_list_of``, ``_links``): placing
    a list, its OCO pairs, its deferred members, and its end. ``_run``, ``_precheck`` and
    ``_would_take`` are the matcher's (``matcher.py``)."""

    def _run(self, taker: Order) -> None:
        raise NotImplementedError

    def _precheck(self, spec: OrderSpec, ts: int) -> RejectReason | None:
        raise NotImplementedError

    def _would_take(self, side: Side, price: int) -> bool:
        raise NotImplementedError

    def submit_list(
        self, list_id: int, kind: ListType, specs: list[OrderSpec], ts: int
    ) -> list[Event] | ListRefusal:
        """Place a list (``check_list`` passed): ``OrderListPlaced``, then each member
        accepted or deferred, then the accepted ones matched; or refuse it whole."""
        out = self._begin(ts)
        active = len(specs) if kind is ListType.OCO else 1
        for index, spec in enumerate(specs[:active]):
            reason = self._precheck(spec, ts)
            if (
                reason is None
                and kind is ListType.OCO
                and spec.type is OrderType.LIMIT
                and self._would_take(spec.side, spec.price)
            ):
                reason = RejectReason.POST_ONLY_WOULD_TAKE
            if reason is not None:
                return ListRefusal(index, reason)
        user_id = specs[0].user_id
        order_list = self.lists[list_id] = OrderList(list_id, kind, user_id)
        self.seq += 1
        out.append(OrderListPlaced(self.seq, ts, self.symbol, list_id, user_id, kind))
        orders = []
        for index, spec in enumerate(specs):
            order_list.members.append(spec.order_id)
            self._list_of[spec.order_id] = list_id
            self.seq += 1
            if index < active:
                order = Order.from_spec(spec, ts)
                out.append(OrderAccepted(self.seq, ts, self.symbol, spec, order.status))
                self._index(order)
                orders.append(order)
            else:
                order_list.waiting.append(spec)
                out.append(OrderDeferred(self.seq, ts, self.symbol, spec))
        self._relink(order_list)
        self._start(orders)
        self._activate()
        self._emit_levels()
        return out

    def cancel_list(
        self, list_id: int, order_ids: tuple[OrderId, ...], user_id: UserId | None, ts: int
    ) -> list[Event] | None:
        """Cancel an open list (every live member, the deferred ones dropped: ``cancelled``),
        or, once it ended, those of ``order_ids`` (its members) still live; None if there
        is nothing to cancel."""
        order_list = self.lists.get(list_id)
        if order_list is not None:
            if user_id is not None and order_list.user_id != user_id:
                return None
            out = self._begin(ts)
            self._cut_list(order_list)
            self._emit_levels()
            return out
        live = [
            order
            for order_id in order_ids
            if (order := self.orders.get(order_id)) is not None
            and order.spec.list_id == list_id
            and (user_id is None or order.user_id == user_id)
        ]
        if not live:
            return None
        out = self._begin(ts)
        for order in live:
            self._cancel(order, CancelReason.USER)
        self._emit_levels()
        return out

    def _start(self, orders: list[Order]) -> None:
        """Newly accepted members: the waiting ones join their stops first, so that a
        leg that trades at once finds its pair's other leg there to cancel."""
        for order in orders:
            if order.status is _PENDING:
                self._add_pending(order)
        for order in orders:
            if order.status is not _PENDING and order.order_id in self.orders:
                self._run(order)

    def _relink(self, order_list: OrderList) -> None:
        """Link the list's OCO legs to each other once both are live."""
        legs = order_list.legs()
        if legs is not None and legs[0] in self.orders and legs[1] in self.orders:
            self._links[legs[0]] = legs[1]
            self._links[legs[1]] = legs[0]

    def _resolve(self, order: Order) -> None:
        """A linked leg trades or triggers: cancel the other leg, the list is done."""
        other = self.orders.get(self._links[order.order_id])
        if other is not None:
            self._cancel(other, CancelReason.OCO)
        self._end_list(self.lists[self._list_of[order.order_id]], ListStatus.DONE)

    def _filled(self, order_id: OrderId) -> None:
        """A member filled completely: if it is its list's working order, the deferred
        members are placed once the command's matching is done (``_activate``)."""
        order_list = self.lists.get(self._list_of[order_id])
        if order_list is not None and order_list.waiting and order_list.members[0] == order_id:
            self._activations.append(order_list.list_id)

    def _activate(self) -> None:
        """Place the deferred members of the lists whose working order filled: accepted
        all together (then an ``oto`` is done, an ``otoco``'s pair linked), or, if the
        matcher rejects one, all rejected and the list ``rejected``."""
        while self._activations:
            order_list = self.lists.get(self._activations.pop(0))
            if order_list is None or not order_list.waiting:
                continue
            specs = order_list.waiting
            order_list.waiting = []
            ts = self._ts
            reasons = [self._precheck(spec, ts) for spec in specs]
            failed = next((reason for reason in reasons if reason is not None), None)
            if failed is not None:
                for spec, reason in zip(specs, reasons, strict=True):
                    self.seq += 1
                    self._out.append(
                        OrderRejected(self.seq, ts, self.symbol, spec, reason or failed)
                    )
                self._end_list(order_list, ListStatus.REJECTED)
                continue
            orders = []
            for spec in specs:
                order = Order.from_spec(spec, ts)
                self.seq += 1
                self._out.append(OrderAccepted(self.seq, ts, self.symbol, spec, order.status))
                self._index(order)
                orders.append(order)
            if order_list.kind is ListType.OTO:
                self._end_list(order_list, ListStatus.DONE)
            else:
                self._relink(order_list)
            self._start(orders)

    def _member_ended(self, order: Order, reason: CancelReason | None) -> None:
        if reason is CancelReason.OCO or reason is CancelReason.ORDER_LIST:
            return  # the list's own doing
        order_list = self.lists.get(self._list_of[order.order_id])
        if order_list is not None:
            self._cut_list(order_list)

    def _cut_list(self, order_list: OrderList) -> None:
        """Cancel every live member (``order_list``), drop the deferred ones: ``cancelled``."""
        del self.lists[order_list.list_id]
        order_list.waiting = []
        for order_id in order_list.members:
            order = self.orders.get(order_id)
            if order is not None and order.spec.list_id == order_list.list_id:
                self._cancel(order, CancelReason.ORDER_LIST)
        self._end_list(order_list, ListStatus.CANCELLED)

    def _end_list(self, order_list: OrderList, status: ListStatus) -> None:
        """The list ends with ``status``: ``OrderListUpdated``, and it is forgotten."""
        self._forget_list(order_list)
        self.seq += 1
        self._out.append(
            OrderListUpdated(
                self.seq, self._ts, self.symbol, order_list.list_id, order_list.user_id, status
            )
        )

    def _forget_list(self, order_list: OrderList) -> None:
        self.lists.pop(order_list.list_id, None)
        for order_id in order_list.members:
            self._list_of.pop(order_id, None)
            self._links.pop(order_id, None)

    # ------------------------------------------------------------ replay

    def _replay_list_event(self, event: OrderListPlaced | OrderDeferred | OrderListUpdated) -> None:
        if isinstance(event, OrderListPlaced):
            self.lists[event.list_id] = OrderList(event.list_id, event.kind, event.user_id)
        elif isinstance(event, OrderDeferred):
            order_list = self.lists[event.spec.list_id]
            order_list.members.append(event.spec.order_id)
            order_list.waiting.append(event.spec)
            self._list_of[event.spec.order_id] = order_list.list_id
        else:
            self._forget_list(self.lists[event.list_id])

    def _replay_member(self, spec: OrderSpec, accepted: bool) -> None:
        """Replay: a member accepted (or, a deferred one, rejected) joins its list."""
        order_list = self.lists.get(spec.list_id)
        if order_list is None:
            return
        waiting = [s for s in order_list.waiting if s.order_id != spec.order_id]
        if len(waiting) < len(order_list.waiting):
            order_list.waiting = waiting
        else:
            order_list.members.append(spec.order_id)
            self._list_of[spec.order_id] = spec.list_id
        if accepted:
            self._relink(order_list)
