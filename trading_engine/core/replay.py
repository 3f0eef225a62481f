"""Replay: rebuilding a matcher's state from its journaled events, deciding nothing."""

from __future__ import annotations

from typing import Final

from trading_engine.core.enums import (
    OrderStatus,
    OrderType,
    Side,
)
from trading_engine.core.events import (
    BookLevel,
    Event,
    IcebergRefilled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderDeferred,
    OrderExpired,
    OrderFilled,
    OrderListPlaced,
    OrderListUpdated,
    OrderReduced,
    OrderRejected,
    SelfTradePrevented,
    StopMoved,
    StopTriggered,
    Trade,
)
from trading_engine.core.lists import OrderLists
from trading_engine.core.orders import TRAILING, Order, advance, trailing_limit
from trading_engine.errors import InvalidTransition, InvariantViolation

__all__ = ["Replay"]

_BUY: Final = Side.BUY
_CANCELLED: Final = OrderStatus.CANCELLED
_PENDING: Final = OrderStatus.PENDING_TRIGGER
_TRAILING: Final = TRAILING


class Replay(OrderLists):
    """``apply``: one event at a time, in ``seq`` order, to the state it came from."""

    def apply(self, event: Event) -> None:
        """Apply one event of this symbol, in ``seq`` order, to rebuild state.

        Raises ``InvariantViolation`` on a gap in ``seq`` or an event that
        does not fit the state (a fill of an unknown order, say).
        """
        if event.seq != self.seq + 1:
            raise InvariantViolation(f"expected seq {self.seq + 1}, got {event.seq}")
        self.seq = event.seq
        orders = self.orders
        try:
            match event:
                case OrderAccepted(spec=spec, ts=ts):
                    order = Order.from_spec(spec, ts)
                    self._index(order)
                    if order.status is not _PENDING:
                        self._rest_if_allowed(order)
                    elif spec.type in _TRAILING:
                        self._add_trailing(order)
                    else:
                        self._add_stop(order)
                    if spec.list_id:
                        self._replay_member(spec, accepted=True)
                case IcebergRefilled(order_id=order_id):
                    order = orders[order_id]
                    _, shown = self._slice(order)
                    if (shown, order.hidden) != (event.displayed, event.hidden):
                        raise InvariantViolation(f"seq {event.seq}: iceberg slice differs")
                case StopMoved(order_id=order_id, stop_price=stop):
                    self._trailing[order_id].stop_price = stop
                case OrderRejected(spec=spec):
                    if spec.list_id:
                        self._replay_member(spec, accepted=False)
                case OrderListPlaced() | OrderDeferred() | OrderListUpdated():
                    self._replay_list_event(event)
                case Trade(trade_id=trade_id, price=price):
                    self.last_trade_id = trade_id
                    self.last_trade_price = price
                    if self._margin:
                        buys = event.aggressor is _BUY
                        taker, maker = event.taker_user_id, event.maker_user_id
                        self._shift(taker, maker, buys, event.quantity, live=False)
                case OrderFilled():
                    order = orders[event.order_id]
                    if order.resting:  # a fill takes from what the book shows
                        self.book.side(order.side).levels[order.price].quantity -= event.quantity
                    order.remaining -= event.quantity
                    order.filled += event.quantity
                    order.notional += event.price * event.quantity
                    order.updated_ts = event.ts
                    advance(order, event.status)
                    if order.remaining == 0:
                        self._finish(order)
                case OrderCancelled() | OrderExpired():
                    order = orders[event.order_id]
                    quantity = order.remaining
                    self._reduce(order, quantity)
                    order.cancelled += quantity
                    order.updated_ts = event.ts
                    cancelled = isinstance(event, OrderCancelled)
                    advance(order, _CANCELLED if cancelled else OrderStatus.EXPIRED)
                    self._finish(order)
                case OrderReduced():
                    order = orders[event.order_id]
                    self._reduce(order, event.quantity)
                    order.cancelled += event.quantity
                    order.updated_ts = event.ts
                case OrderAmended():
                    order = orders[event.order_id]
                    moved = self._apply_amend(
                        order, event.price, event.quantity, event.remaining,
                        event.priority_kept, event.ts,
                    )  # fmt: skip
                    if moved is not order:
                        self._rest_if_allowed(moved)
                case StopTriggered():
                    order = orders[event.order_id]
                    if order.spec.type in _TRAILING:
                        del self._trailing[order.order_id]
                        if order.spec.type is OrderType.TRAILING_STOP_LIMIT:
                            order.price = trailing_limit(order.spec, order.stop_price)
                    advance(order, OrderStatus.OPEN)
                    self._rest_if_allowed(order)
                case SelfTradePrevented():
                    pass
                case BookLevel(side=side, price=price, quantity=quantity):
                    level = self.book.side(side).levels.get(price)
                    if (level.quantity if level else 0) != quantity:
                        raise InvariantViolation(f"seq {event.seq}: level {side} {price} differs")
        except (KeyError, InvalidTransition) as exc:
            raise InvariantViolation(f"seq {event.seq}: {event!r} does not fit: {exc}") from exc
