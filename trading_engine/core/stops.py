"""Triggered orders (stops and take-profits): the heaps of those pending, and which ones the
last taker's trades crossed.

Two heaps, by the direction a trade must move to trigger the order: ``_stops_up`` holds
those that trigger at or above their stop price (buy stops, sell take-profits),
``_stops_down`` those at or below (sell stops, buy take-profits).

Trailing stops are not in the heaps: their stop prices (``Order.stop_price``, 0
until armed) move. ``_trailing`` holds the pending ones, and after each taker's trades
``_trail`` moves and triggers them. A taker's trades run one way, from its first
price to its last, so two points tell all that happened: each trailing stop
sees the first price, then the last; at each, an unarmed one arms if the price
reached its activation price (or it has none), an armed one triggers if the
price reached its stop price, and otherwise its stop follows the price if that
is in the order's favour. Every new stop price is a ``StopMoved`` event."""

from __future__ import annotations

import heapq
from typing import Final

from trading_engine.core.enums import (
    OrderStatus,
    OrderType,
    Side,
)
from trading_engine.core.events import StopMoved
from trading_engine.core.ids import OrderId
from trading_engine.core.matcher_state import MatcherState
from trading_engine.core.orders import (
    TRAILING,
    Order,
    trailing_limit,
    trailing_stop_at,
    triggers_rising,
)

__all__ = ["StopOrders"]

_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_PENDING: Final = OrderStatus.PENDING_TRIGGER
_TRAILING: Final = TRAILING
_TRAILING_LIMIT: Final = OrderType.TRAILING_STOP_LIMIT


class StopOrders(MatcherState):
    """The stop heaps of ``MatcherState``: adding a triggered order, finding those a taker
    crossed."""

    def _triggered(self, side: Side, low: int, high: int) -> list[Order]:
        """Triggered orders crossed by trades from ``low`` to ``high``, in the order they
        were crossed.

        A buy taker's trades rise, so those triggering downwards (crossed at its
        first, lowest trade) come before those triggering upwards; a sell taker's
        fall, so the reverse.
        """
        orders = self.orders
        seen: set[OrderId] = set()
        up: list[Order] = []
        stops = self._stops_up
        while stops and stops[0][0] <= high:
            stop, _, order_id = heapq.heappop(stops)
            order = orders.get(order_id)
            # An entry is stale if its order ended (or, were an id ever reused, is another).
            if (
                order is not None
                and order.status is _PENDING
                and triggers_rising(order.side, order.spec.type)
                and order.spec.stop_price == stop
                and order_id not in seen
            ):
                seen.add(order_id)
                up.append(order)
        down: list[Order] = []
        stops = self._stops_down
        while stops and -stops[0][0] >= low:
            key, _, order_id = heapq.heappop(stops)
            order = orders.get(order_id)
            if (
                order is not None
                and order.status is _PENDING
                and not triggers_rising(order.side, order.spec.type)
                and order.spec.stop_price == -key
                and order_id not in seen
            ):
                seen.add(order_id)
                down.append(order)
        return down + up if side is _BUY else up + down

    def _add_stop(self, order: Order) -> None:
        stop = order.spec.stop_price
        if triggers_rising(order.side, order.spec.type):
            heapq.heappush(self._stops_up, (stop, self.seq, order.order_id))
        else:
            heapq.heappush(self._stops_down, (-stop, self.seq, order.order_id))
        if order.spec.expire_time is not None:
            heapq.heappush(self._expiries, (order.spec.expire_time, order.order_id))

    def _add_pending(self, order: Order) -> None:
        """A new order that waits for its trigger: a stop or take-profit into its heap, a
        trailing stop into ``_trailing``, armed at once against the last trade price if
        that already reached its activation price (or it has none)."""
        if order.spec.type not in _TRAILING:
            self._add_stop(order)
            return
        self._add_trailing(order)
        last = self.last_trade_price
        if last is not None and self._activated(order, last):
            self._move_stop(order, trailing_stop_at(order.spec, last))

    def _add_trailing(self, order: Order) -> None:
        """A trailing stop waits, unarmed, in ``_trailing`` (and for its expiry)."""
        self._trailing[order.order_id] = order
        if order.spec.expire_time is not None:
            heapq.heappush(self._expiries, (order.spec.expire_time, order.order_id))

    def _trail(self, taker_buys: bool, low: int, high: int) -> list[Order]:
        """Arm, move and trigger the trailing stops after a taker's trades from ``low`` to
        ``high``; the triggered ones, oldest first, out of ``_trailing`` (a stop-limit
        with its limit price set: ``trailing_limit``)."""
        first, last = (low, high) if taker_buys else (high, low)
        triggered: list[Order] = []
        for order_id, order in list(self._trailing.items()):
            stop = order.stop_price
            sells = order.side is _SELL
            for price in (first, last):
                if not stop:
                    if self._activated(order, price):
                        stop = self._move_stop(order, trailing_stop_at(order.spec, price))
                    continue
                if price <= stop if sells else price >= stop:
                    del self._trailing[order_id]
                    if order.spec.type is _TRAILING_LIMIT:
                        order.price = trailing_limit(order.spec, stop)
                    triggered.append(order)
                    break
                follows = trailing_stop_at(order.spec, price)
                if follows > stop if sells else follows < stop:
                    stop = self._move_stop(order, follows)
        return triggered

    def _activated(self, order: Order, price: int) -> bool:
        activation = order.spec.activation_price
        if not activation:
            return True
        return price >= activation if order.side is _SELL else price <= activation

    def _move_stop(self, order: Order, stop: int) -> int:
        order.stop_price = stop
        self.seq += 1
        self._out.append(
            StopMoved(self.seq, self._ts, self.symbol, order.order_id, order.user_id, stop)
        )
        return stop
