"""Triggered orders (stops and take-profits): the heaps of those pending, and which ones the
last taker's trades crossed.

Two heaps, by the direction a trade must move to trigger the order: ``_stops_up`` holds
those that trigger at or above their stop price (buy stops, sell take-profits),
``_stops_down`` those at or below (sell stops, buy take-profits)."""

from __future__ import annotations

import heapq
from typing import Final

from trading_engine.core.enums import (
    OrderStatus,
    Side,
)
from trading_engine.core.ids import OrderId
from trading_engine.core.matcher_state import MatcherState
from trading_engine.core.orders import Order, triggers_rising

__all__ = ["StopOrders"]

_BUY: Final = Side.BUY
_PENDING: Final = OrderStatus.PENDING_TRIGGER


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
