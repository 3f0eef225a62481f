"""Events: every state change of a symbol, numbered by the symbol's ``seq``.

Within a symbol, ``seq`` starts at 1 and increases by exactly one per event.
Applying a symbol's events in order (``Matcher.apply``) rebuilds its state.

Events are immutable: every attribute is ``Final``, which mypy enforces
statically and which the compiled core (see ``build_core.py``) enforces at
run time. They are plain classes rather than ``attrs.frozen`` ones, on
purpose: the matcher makes several per order, and compiled to native
classes they cost a fraction of a frozen attrs instance or a named tuple.
Equality and hashing are by type and field values.

Events and what they change on replay:

- ``OrderAccepted``: a new order; it enters the book at once if it may rest
  (its fills follow and reduce it), or waits for its trigger if it is a stop.
- ``OrderRejected``: nothing in the book; the order is final.
- ``Trade``: the execution; an ``OrderFilled`` follows for the maker, then the taker.
- ``OrderFilled``: an order's fill; remaining and status follow from it.
- ``OrderCancelled``, ``OrderExpired``: the order leaves the book.
- ``OrderReduced``: quantity removed without a trade (self-trade decrement).
- ``OrderAmended``: new price or quantity; ``priority_kept`` says whether it
  kept its place in the queue (a reduction) or went to the back.
- ``StopTriggered``: a stop order becomes active and, if it may rest, enters the book.
- ``IcebergRefilled``: an iceberg shows a new slice at the back of its level's
  queue (when it first rests, and each time its slice is filled), and hides
  the rest; replay rests it then, so its fills before that leave the book alone.
- ``StopMoved``: a trailing stop's stop price, set when it is armed and moved as
  the price moves in its favour; replay takes it as it is.
- ``OrderListPlaced``: an order list (``core.lists``) opens; its members follow, in
  the client's order, each an ``OrderAccepted`` or, if it waits for the working
  order, an ``OrderDeferred``.
- ``OrderDeferred``: a list's member that waits to be placed (not in the book).
- ``OrderListUpdated``: a list's new status (it ended: done, cancelled or rejected);
  replay forgets the list then.
- ``SelfTradePrevented``: informational, for surveillance; the cancels and
  reductions it caused follow as their own events.
- ``BookLevel``: a price level's new total quantity (0: the level is gone),
  one per touched level at the end of each command; for market data.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final, Protocol, final

from trading_engine.core.enums import (
    CancelReason,
    Liquidity,
    ListStatus,
    ListType,
    OrderStatus,
    RejectReason,
    Side,
    StpMode,
)
from trading_engine.core.ids import OrderId, Symbol, TradeId, UserId
from trading_engine.core.orders import OrderSpec

__all__ = [
    "BookLevel",
    "Event",
    "EventBase",
    "IcebergRefilled",
    "Journaled",
    "OrderAccepted",
    "OrderAmended",
    "OrderCancelled",
    "OrderDeferred",
    "OrderExpired",
    "OrderFilled",
    "OrderListPlaced",
    "OrderListUpdated",
    "OrderReduced",
    "OrderRejected",
    "SelfTradePrevented",
    "StopMoved",
    "StopTriggered",
    "Trade",
]


class Journaled(Protocol):
    """What the journal needs of any event: its number and time, and its fields."""

    @property
    def seq(self) -> int:
        """The event's number in its stream: 1, 2, 3, ... with no gaps."""
        ...

    @property
    def ts(self) -> int:
        """When it happened, in nanoseconds since the epoch."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


class EventBase:
    """What every event shares: ``seq``, ``ts`` (nanoseconds), ``symbol``, then its own fields.

    ``__slots__`` lists the fields in their documented order (not sorted), and
    ``FIELDS`` is that order.
    """

    __slots__ = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def values(self) -> tuple[Any, ...]:
        """The field values in ``FIELDS`` order."""
        return tuple(getattr(self, name) for name in self.FIELDS)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, EventBase)
        return self.values() == other.values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.values()))

    def __reduce__(self) -> tuple[type[EventBase], tuple[Any, ...]]:
        """Pickled as the constructor's arguments (engine snapshots hold events)."""
        return type(self), self.values()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__name__}({fields})"


@final
class OrderAccepted(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "spec",
        "status",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        spec: OrderSpec,
        status: OrderStatus,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.spec: Final = spec
        self.status: Final = status
        """``open``, or ``pending_trigger`` for a stop."""


@final
class OrderRejected(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "spec",
        "reason",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        spec: OrderSpec,
        reason: RejectReason,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.spec: Final = spec
        self.reason: Final = reason


@final
class Trade(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "trade_id",
        "price",
        "quantity",
        "aggressor",
        "maker_order_id",
        "taker_order_id",
        "maker_user_id",
        "taker_user_id",
        "maker_fee",
        "taker_fee",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        trade_id: TradeId,
        price: int,
        quantity: int,
        aggressor: Side,
        maker_order_id: OrderId,
        taker_order_id: OrderId,
        maker_user_id: UserId,
        taker_user_id: UserId,
        maker_fee: int,
        taker_fee: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.trade_id: Final = trade_id
        self.price: Final = price
        self.quantity: Final = quantity
        self.aggressor: Final = aggressor
        """The taker's side."""
        self.maker_order_id: Final = maker_order_id
        self.taker_order_id: Final = taker_order_id
        self.maker_user_id: Final = maker_user_id
        self.taker_user_id: Final = taker_user_id
        self.maker_fee: Final = maker_fee
        """Quote minor units the maker pays; negative for a rebate."""
        self.taker_fee: Final = taker_fee


@final
class OrderFilled(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "order_id",
        "user_id",
        "trade_id",
        "price",
        "quantity",
        "liquidity",
        "fee",
        "filled",
        "remaining",
        "status",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        order_id: OrderId,
        user_id: UserId,
        trade_id: TradeId,
        price: int,
        quantity: int,
        liquidity: Liquidity,
        fee: int,
        filled: int,
        remaining: int,
        status: OrderStatus,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.order_id: Final = order_id
        self.user_id: Final = user_id
        self.trade_id: Final = trade_id
        self.price: Final = price
        self.quantity: Final = quantity
        self.liquidity: Final = liquidity
        self.fee: Final = fee
        self.filled: Final = filled
        """Cumulative filled quantity after this fill."""
        self.remaining: Final = remaining
        self.status: Final = status


@final
class OrderCancelled(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "order_id",
        "user_id",
        "quantity",
        "filled",
        "reason",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        order_id: OrderId,
        user_id: UserId,
        quantity: int,
        filled: int,
        reason: CancelReason,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.order_id: Final = order_id
        self.user_id: Final = user_id
        self.quantity: Final = quantity
        """The quantity that was still open and is now cancelled."""
        self.filled: Final = filled
        self.reason: Final = reason


@final
class OrderExpired(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "order_id",
        "user_id",
        "quantity",
        "filled",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        order_id: OrderId,
        user_id: UserId,
        quantity: int,
        filled: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.order_id: Final = order_id
        self.user_id: Final = user_id
        self.quantity: Final = quantity
        self.filled: Final = filled


@final
class OrderReduced(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "order_id",
        "user_id",
        "quantity",
        "remaining",
        "reason",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        order_id: OrderId,
        user_id: UserId,
        quantity: int,
        remaining: int,
        reason: CancelReason,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.order_id: Final = order_id
        self.user_id: Final = user_id
        self.quantity: Final = quantity
        """How much was taken off, without a trade."""
        self.remaining: Final = remaining
        self.reason: Final = reason


@final
class OrderAmended(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "order_id",
        "user_id",
        "price",
        "quantity",
        "remaining",
        "priority_kept",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        order_id: OrderId,
        user_id: UserId,
        price: int,
        quantity: int,
        remaining: int,
        priority_kept: bool,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.order_id: Final = order_id
        self.user_id: Final = user_id
        self.price: Final = price
        self.quantity: Final = quantity
        """The new total quantity, filled part included."""
        self.remaining: Final = remaining
        self.priority_kept: Final = priority_kept


@final
class StopTriggered(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "order_id",
        "user_id",
        "trigger_price",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        order_id: OrderId,
        user_id: UserId,
        trigger_price: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.order_id: Final = order_id
        self.user_id: Final = user_id
        self.trigger_price: Final = trigger_price


@final
class IcebergRefilled(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "order_id",
        "user_id",
        "displayed",
        "hidden",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        order_id: OrderId,
        user_id: UserId,
        displayed: int,
        hidden: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.order_id: Final = order_id
        self.user_id: Final = user_id
        self.displayed: Final = displayed
        """The lots the book now shows of it, at the back of its level."""
        self.hidden: Final = hidden
        """The lots of it the book does not show."""


@final
class StopMoved(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "order_id",
        "user_id",
        "stop_price",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        order_id: OrderId,
        user_id: UserId,
        stop_price: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.order_id: Final = order_id
        self.user_id: Final = user_id
        self.stop_price: Final = stop_price
        """The trailing stop's new trigger price, in ticks."""


@final
class SelfTradePrevented(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "taker_order_id",
        "maker_order_id",
        "user_id",
        "mode",
        "quantity",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        taker_order_id: OrderId,
        maker_order_id: OrderId,
        user_id: UserId,
        mode: StpMode,
        quantity: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.taker_order_id: Final = taker_order_id
        self.maker_order_id: Final = maker_order_id
        self.user_id: Final = user_id
        self.mode: Final = mode
        self.quantity: Final = quantity
        """The quantity that would have traded."""


@final
class OrderListPlaced(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "list_id",
        "user_id",
        "kind",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        list_id: int,
        user_id: UserId,
        kind: ListType,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.list_id: Final = list_id
        self.user_id: Final = user_id
        self.kind: Final = kind


@final
class OrderDeferred(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "spec",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        spec: OrderSpec,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.spec: Final = spec
        """The member as accepted into its list; it is placed (``OrderAccepted``) or
        rejected when the list's working order has filled, or dropped when the list ends."""


@final
class OrderListUpdated(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "list_id",
        "user_id",
        "status",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        list_id: int,
        user_id: UserId,
        status: ListStatus,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.list_id: Final = list_id
        self.user_id: Final = user_id
        self.status: Final = status


@final
class BookLevel(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "ts",
        "symbol",
        "side",
        "price",
        "quantity",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        side: Side,
        price: int,
        quantity: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.side: Final = side
        self.price: Final = price
        self.quantity: Final = quantity
        """The level's new total quantity; 0 when the level is gone."""


Event = (
    OrderAccepted
    | OrderRejected
    | Trade
    | OrderFilled
    | OrderCancelled
    | OrderExpired
    | OrderReduced
    | OrderAmended
    | StopTriggered
    | StopMoved
    | IcebergRefilled
    | SelfTradePrevented
    | OrderListPlaced
    | OrderDeferred
    | OrderListUpdated
    | BookLevel
)
