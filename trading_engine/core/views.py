"""Order records built from events: what queries and replies show of an order.

``OrderRecord`` is mutable and belongs to whoever keeps it (the risk actor
keeps one per order, the symbol actor one per command's reply); ``view()``
takes an immutable ``OrderView`` snapshot. Both are driven only by events,
so a record rebuilt from the journal equals the one kept live.
"""

from __future__ import annotations

from typing import NamedTuple

from trading_engine.core.enums import (
    CancelReason,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from trading_engine.core.events import (
    BookLevel,
    Event,
    IcebergRefilled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderReduced,
    OrderRejected,
    StopMoved,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, UserId
from trading_engine.core.orders import WITH_LIMIT, Order, OrderSpec, trailing_limit

__all__ = ["OrderRecord", "OrderView", "concerns", "submit_outcome"]


class OrderView(NamedTuple):
    """An order as a client sees it, at one moment. ``notional`` is in tick x lot units.

    ``price`` is the client's own limit price (of a limit or stop-limit order), 0 for
    none; ``protection_price`` is the worst price a market or stop order may trade at,
    which the risk actor set and its hold covers (``OrderSpec.price`` holds it), 0 for
    none (and always 0 for a limit or stop-limit order).
    """

    order_id: OrderId
    client_order_id: ClientOrderId | None
    user_id: UserId
    symbol: Symbol
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: int
    stop_price: int
    quantity: int
    filled: int
    remaining: int
    cancelled: int
    notional: int
    status: OrderStatus
    reason: str | None
    """Why it was rejected, cancelled or expired; None otherwise."""
    post_only: bool
    expire_time: int | None
    created_ts: int
    updated_ts: int
    reduce_only: bool
    protection_price: int
    quote_quantity: int
    """A quote-sized market order's quote amount in minor units (``quantity`` is its cap in
    lots); 0 for any other."""
    trailing_delta: int
    trailing_bps: int
    activation_price: int
    limit_offset: int
    """A trailing stop's terms (``OrderSpec``); its ``stop_price`` is its current one."""
    display_quantity: int
    hidden: int
    """An iceberg's slice size, and the lots of its remainder the book does not show now
    (``remaining - hidden`` is its slice); 0 for any other order."""
    list_id: int = 0
    """The order list it belongs to; 0 for none."""


RECORD_STATE = (
    "symbol", "spec", "status", "created_ts", "updated_ts", "price",
    "quantity", "filled", "remaining", "cancelled", "notional", "reason", "stop_price",
    "hidden",
)  # fmt: skip
"""What a pickled ``OrderRecord`` keeps (all of it), in ``_record``'s order."""


def _record(
    symbol: Symbol, spec: OrderSpec, status: OrderStatus, created_ts: int, updated_ts: int,
    price: int, quantity: int, filled: int, remaining: int, cancelled: int, notional: int,
    reason: str | None, stop_price: int, hidden: int,
) -> OrderRecord:  # fmt: skip
    """An ``OrderRecord`` back from its pickle."""
    record = OrderRecord(symbol, spec, status, created_ts)
    record.updated_ts = updated_ts
    record.price = price
    record.quantity = quantity
    record.filled = filled
    record.remaining = remaining
    record.cancelled = cancelled
    record.notional = notional
    record.reason = reason
    record.stop_price = stop_price
    record.hidden = hidden
    return record


class OrderRecord:
    """The state of one order, kept by applying its events in order."""

    def __init__(self, symbol: Symbol, spec: OrderSpec, status: OrderStatus, ts: int) -> None:
        self.symbol = symbol
        self.spec = spec
        self.price = spec.price
        self.quantity = spec.quantity
        self.filled = 0
        self.remaining = spec.quantity
        self.cancelled = 0
        self.notional = 0
        self.status = status
        self.reason: str | None = None
        self.created_ts = ts
        self.updated_ts = ts
        self.stop_price = spec.stop_price
        """The spec's, or a trailing stop's current one (0 until armed)."""
        self.hidden = 0
        """A resting iceberg's lots that the book does not show."""

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as ``RECORD_STATE`` (engine snapshots hold many: no state dict)."""
        return _record, (
            self.symbol, self.spec, self.status, self.created_ts, self.updated_ts, self.price,
            self.quantity, self.filled, self.remaining, self.cancelled, self.notional, self.reason,
            self.stop_price, self.hidden,
        )  # fmt: skip

    @classmethod
    def accepted(cls, event: OrderAccepted) -> OrderRecord:
        return cls(event.symbol, event.spec, event.status, event.ts)

    @classmethod
    def rejected(cls, event: OrderRejected) -> OrderRecord:
        record = cls(event.symbol, event.spec, OrderStatus.REJECTED, event.ts)
        record.remaining = 0
        record.reason = str(event.reason)
        return record

    @classmethod
    def rejected_by_risk(
        cls, symbol: Symbol, spec: OrderSpec, reason: RejectReason, ts: int
    ) -> OrderRecord:
        record = cls(symbol, spec, OrderStatus.REJECTED, ts)
        record.remaining = 0
        record.reason = str(reason)
        return record

    @classmethod
    def from_order(cls, symbol: Symbol, order: Order) -> OrderRecord:
        """A record of a live order as the matcher holds it now."""
        record = cls(symbol, order.spec, order.status, order.created_ts)
        record.updated_ts = order.updated_ts
        record.price = order.price
        record.quantity = order.quantity
        record.filled = order.filled
        record.remaining = order.remaining
        record.cancelled = order.cancelled
        record.notional = order.notional
        record.stop_price = order.stop_price
        record.hidden = order.hidden
        return record

    def apply(self, event: Event) -> None:
        """Apply one event about this order (the caller picks them); other kinds are ignored."""
        if isinstance(event, OrderFilled):
            self.filled = event.filled
            self.remaining = event.remaining
            self.notional += event.price * event.quantity
            self.status = event.status
        elif isinstance(event, OrderCancelled):
            self._close(OrderStatus.CANCELLED, event.quantity, event.reason)
        elif isinstance(event, OrderExpired):
            self._close(OrderStatus.EXPIRED, event.quantity, "expired")
        elif isinstance(event, OrderReduced):
            self.remaining = event.remaining
            self.cancelled += event.quantity
            self.hidden = max(self.hidden - event.quantity, 0)  # an iceberg's hidden part first
        elif isinstance(event, OrderAmended):
            if event.priority_kept:
                self.hidden = max(self.hidden - (self.remaining - event.remaining), 0)
            else:
                self.hidden = 0  # until it rests again (``IcebergRefilled``)
            self.price = event.price
            self.quantity = event.quantity
            self.remaining = event.remaining
        elif isinstance(event, IcebergRefilled):
            self.hidden = event.hidden
        elif isinstance(event, StopTriggered):
            self.status = OrderStatus.OPEN
            if self.spec.type is OrderType.TRAILING_STOP_LIMIT:
                self.price = trailing_limit(self.spec, self.stop_price)
        elif isinstance(event, StopMoved):
            self.stop_price = event.stop_price
        else:
            return
        self.updated_ts = event.ts

    def _close(self, status: OrderStatus, quantity: int, reason: CancelReason | str) -> None:
        self.cancelled += quantity
        self.remaining = self.hidden = 0
        self.status = status
        self.reason = str(reason)

    def view(self) -> OrderView:
        spec = self.spec
        # A market or stop order's price is its protection price, never the client's; a
        # trailing stop-limit's is the limit it has (or would have now, if triggered).
        if spec.type in WITH_LIMIT:
            price, protection = self.price, 0
        elif spec.type is OrderType.TRAILING_STOP_LIMIT:
            stop = self.stop_price
            price, protection = (trailing_limit(spec, stop) if stop else 0), spec.price
        else:
            price, protection = 0, self.price
        return OrderView(
            spec.order_id, spec.client_order_id, spec.user_id, self.symbol, spec.side, spec.type,
            spec.time_in_force, price, self.stop_price, self.quantity,
            self.filled, self.remaining, self.cancelled, self.notional, self.status, self.reason,
            spec.post_only, spec.expire_time, self.created_ts, self.updated_ts, spec.reduce_only,
            protection, spec.quote_quantity, spec.trailing_delta, spec.trailing_bps,
            spec.activation_price, spec.limit_offset, spec.display_quantity, self.hidden,
            spec.list_id,
        )  # fmt: skip


def concerns(event: Event, order_id: OrderId) -> bool:
    """Whether ``event`` is about ``order_id`` (a trade is about both its orders)."""
    if isinstance(event, Trade):
        return order_id in (event.maker_order_id, event.taker_order_id)
    if isinstance(event, OrderAccepted | OrderRejected):
        return event.spec.order_id == order_id
    return getattr(event, "order_id", None) == order_id


def submit_outcome(order_id: OrderId, events: list[Event]) -> tuple[OrderView, list[Trade], bool]:
    """What a submit command did to its order: its view, its trades, and whether it was accepted.

    ``events`` are the command's events, the first being the order's
    ``OrderAccepted`` or ``OrderRejected``.
    """
    first = events[0]
    if isinstance(first, OrderRejected):
        return OrderRecord.rejected(first).view(), [], False
    assert isinstance(first, OrderAccepted)
    record = OrderRecord.accepted(first)
    trades: list[Trade] = []
    for event in events[1:]:
        if isinstance(event, BookLevel):
            continue  # most events of a command; never about one order
        if isinstance(event, Trade):
            if order_id in (event.maker_order_id, event.taker_order_id):
                trades.append(event)
        elif concerns(event, order_id):
            record.apply(event)
    return record.view(), trades, True
