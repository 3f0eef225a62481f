"""One open order list as its symbol's matcher keeps it (``core.lists`` says what lists do).

A module of its own so that ``matcher_state`` can name the type without importing the
room that works with it.
"""

from __future__ import annotations

from trading_engine.core.enums import ListType
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.orders import OrderSpec

__all__ = ["OrderList"]


class OrderList:
    """An open list: its members' ids in the client's order (working first), and the
    deferred members' specs, which wait for the working order to fill."""

    def __init__(
        self,
        list_id: int,
        kind: ListType,
        user_id: UserId,
        members: list[OrderId] | None = None,
        waiting: list[OrderSpec] | None = None,
    ) -> None:
        self.list_id = list_id
        self.kind = kind
        self.user_id = user_id
        self.members: list[OrderId] = [] if members is None else members
        self.waiting: list[OrderSpec] = [] if waiting is None else waiting

    def legs(self) -> tuple[OrderId, OrderId] | None:
        """The ids of its OCO pair (an ``oco``'s two orders, an ``otoco``'s last two), once
        both are members; None for an ``oto``."""
        first = 0 if self.kind is ListType.OCO else 1
        if self.kind is ListType.OTO or len(self.members) < first + 2:
            return None
        return self.members[first], self.members[first + 1]

    def __reduce__(self) -> tuple[object, ...]:
        return OrderList, (self.list_id, self.kind, self.user_id, self.members, self.waiting)

    def __repr__(self) -> str:
        waiting = [spec.order_id for spec in self.waiting]
        return f"OrderList({self.list_id}, {self.kind}, {self.user_id}, {self.members}, {waiting})"
