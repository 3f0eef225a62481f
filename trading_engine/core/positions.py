"""Positions and reduce-only orders (margin symbols), as the matcher keeps them.

The matcher keeps each user's net position from the symbol's own trades; a
reduce-only order is accepted for at most the position, and cut or cancelled
(``OrderReduced``, reason ``reduce_only``) when the position shrinks.
"""

from __future__ import annotations

from typing import Final

from trading_engine.core.enums import (
    CancelReason,
    RejectReason,
    Side,
)
from trading_engine.core.ids import UserId
from trading_engine.core.orders import Order, OrderSpec
from trading_engine.core.stops import StopOrders

__all__ = ["Positions"]

_BUY: Final = Side.BUY


class Positions(StopOrders):
    """Each user's position in a margin symbol, and the reduce-only orders it bounds."""

    def _reducible(self, user_id: UserId, side: Side) -> int:
        """The lots an order of ``user_id`` on ``side`` may trade and only reduce the position."""
        position = self.positions.get(user_id, 0)
        if side is _BUY:
            return -position if position < 0 else 0
        return position if position > 0 else 0

    def _reduce_only_check(self, spec: OrderSpec) -> tuple[RejectReason | None, OrderSpec]:
        """Why a new reduce-only order is rejected, or the spec capped at the position."""
        if not self._margin:
            return RejectReason.INVALID_ORDER, spec
        allowed = self._reducible(spec.user_id, spec.side)
        if not allowed:
            return RejectReason.REDUCE_ONLY_WOULD_INCREASE, spec
        if spec.quantity > allowed:
            return None, spec._replace(quantity=allowed)
        return None, spec

    def _shift(
        self, taker: UserId, maker: UserId, taker_buys: bool, quantity: int, *, live: bool
    ) -> None:
        """Move both sides' positions by a trade of ``quantity`` lots; ``live`` (not replay):
        note the users whose reduce-only orders must be cut after this taker."""
        if taker == maker:
            return  # a self-trade moves no position
        positions = self.positions
        for user_id, delta in ((taker, quantity), (maker, -quantity)):
            position = positions.get(user_id, 0) + (delta if taker_buys else -delta)
            if position:
                positions[user_id] = position
            else:
                del positions[user_id]
            if live and user_id in self._reduce_only:
                self._moved.append(user_id)

    def _clamp(self, order: Order) -> bool:
        """Cut a reduce-only order to the position it reduces, or cancel it if there is none
        on the other side; whether it is still live."""
        allowed = self._reducible(order.user_id, order.side)
        if not allowed:
            self._cancel(order, CancelReason.REDUCE_ONLY)
            return False
        if order.remaining > allowed:
            self._cut(order, order.remaining - allowed, CancelReason.REDUCE_ONLY)
        return True

    def _clamp_moved(self) -> None:
        """Cut the reduce-only orders of every user whose position the last taker moved."""
        moved, self._moved = self._moved, []
        orders = self.orders
        for user_id in dict.fromkeys(moved):
            for order_id in list(self._reduce_only.get(user_id, ())):
                self._clamp(orders[order_id])
