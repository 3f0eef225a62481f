"""Order lists as clients see them: ``ListRecord``, kept from events, and ``ListView``.

The risk actor keeps one record per list (``GET /order-lists/{id}``); the symbol
actor builds one for the reply to ``POST /order-lists`` (``list_outcome``). Both
are driven only by events, so a record rebuilt from the journal equals the one
kept live. A member that waits for its list's working order (``OrderDeferred``)
is not an order yet: the list shows it from its spec, as ``pending``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from trading_engine.core.enums import ListStatus, ListType, OrderStatus
from trading_engine.core.events import (
    Event,
    OrderAccepted,
    OrderDeferred,
    OrderListPlaced,
    OrderListUpdated,
    OrderRejected,
    Trade,
)
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.orders import OrderSpec
from trading_engine.core.views import OrderRecord, OrderView, concerns

__all__ = ["ListRecord", "ListView", "list_outcome"]


class ListView(NamedTuple):
    """A list at one moment: its members' views in the client's order; ``pending`` names
    those still waiting to be placed (shown from their specs)."""

    list_id: int
    kind: ListType
    symbol: Symbol
    user_id: UserId
    status: ListStatus
    orders: tuple[OrderView, ...]
    pending: tuple[OrderId, ...]
    created_ts: int
    updated_ts: int


class ListRecord:
    """One list's state, kept by applying its events in order (``apply``)."""

    def __init__(self, event: OrderListPlaced) -> None:
        self.list_id = event.list_id
        self.kind = event.kind
        self.symbol = event.symbol
        self.user_id = event.user_id
        self.status = ListStatus.OPEN
        self.members: list[OrderId] = []
        self.deferred: dict[OrderId, OrderSpec] = {}
        """Members not placed yet (or never, if the list ended first)."""
        self.created_ts = self.updated_ts = event.ts

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its state (engine snapshots), rebuilt by ``_list_record``."""
        return _list_record, (
            self.list_id, self.kind, self.symbol, self.user_id, self.status, self.members,
            self.deferred, self.created_ts, self.updated_ts,
        )  # fmt: skip

    def apply(
        self, event: OrderDeferred | OrderAccepted | OrderRejected | OrderListUpdated
    ) -> bool:
        """Apply a list's event; for a member's, True if it is new (it just joined)."""
        self.updated_ts = event.ts
        if isinstance(event, OrderListUpdated):
            self.status = event.status
            return False
        order_id = event.spec.order_id
        if isinstance(event, OrderDeferred):
            self.members.append(order_id)
            self.deferred[order_id] = event.spec
            return True
        if self.deferred.pop(order_id, None) is not None:
            return False
        self.members.append(order_id)
        return True

    def view(self, orders: Mapping[OrderId, OrderRecord]) -> ListView:
        """The view, each placed member's from ``orders``; a member never placed shows its
        spec (``pending`` while the list is open, else cancelled with the list)."""
        views = []
        for order_id in self.members:
            record = orders.get(order_id)
            if record is None:
                spec = self.deferred.get(order_id)
                if spec is None:
                    continue  # a finished order forgotten since

                open_ = self.status is ListStatus.OPEN
                status = OrderStatus.OPEN if open_ else OrderStatus.CANCELLED
                record = OrderRecord(self.symbol, spec, status, self.created_ts)
                if not open_:
                    record.cancelled, record.remaining = record.remaining, 0
                    record.reason = "order_list"
            views.append(record.view())
        pending = tuple(self.deferred) if self.status is ListStatus.OPEN else ()
        return ListView(
            self.list_id, self.kind, self.symbol, self.user_id, self.status, tuple(views),
            pending, self.created_ts, self.updated_ts,
        )  # fmt: skip


def _list_record(
    list_id: int, kind: ListType, symbol: Symbol, user_id: UserId, status: ListStatus,
    members: list[OrderId], deferred: dict[OrderId, OrderSpec], created_ts: int,
    updated_ts: int,
) -> ListRecord:  # fmt: skip
    record = ListRecord(OrderListPlaced(0, created_ts, symbol, list_id, user_id, kind))
    record.status = status
    record.members = members
    record.deferred = deferred
    record.updated_ts = updated_ts
    return record


def list_outcome(events: Sequence[Event]) -> tuple[ListView, tuple[Trade, ...]]:
    """The view of the list that ``events`` (a placing command's, starting with
    ``OrderListPlaced``) placed, and the trades of its members."""
    first = events[0]
    assert isinstance(first, OrderListPlaced)
    record = ListRecord(first)
    orders: dict[OrderId, OrderRecord] = {}
    trades: list[Trade] = []
    for event in events[1:]:
        if isinstance(event, OrderDeferred | OrderListUpdated):
            if getattr(event, "list_id", record.list_id) == record.list_id:
                record.apply(event)
            continue
        if (
            isinstance(event, OrderAccepted | OrderRejected)
            and event.spec.list_id == record.list_id
        ):
            record.apply(event)
            orders[event.spec.order_id] = (
                OrderRecord.accepted(event)
                if isinstance(event, OrderAccepted)
                else OrderRecord.rejected(event)
            )
            continue
        for order_id, order in orders.items():
            if concerns(event, order_id):
                order.apply(event)
                if isinstance(event, Trade) and event not in trades:
                    trades.append(event)
    return record.view(orders), tuple(trades)
