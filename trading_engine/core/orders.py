"""Orders: the immutable request (``OrderSpec``) and the live state (``Order``).

An order's status changes only through ``advance``, which consults the one
transition table below::

    (new) ─> open | pending_trigger | rejected
    pending_trigger ─> open | partially_filled | filled | cancelled | expired
    open ─> partially_filled | filled | cancelled | expired
    partially_filled ─> partially_filled | filled | cancelled | expired
    filled, cancelled, rejected, expired: final

A triggered stop goes from ``pending_trigger`` straight to whatever its first
match makes it; a stop that triggers and rests unfilled becomes ``open``.
"""

from __future__ import annotations

from typing import NamedTuple

from trading_engine.core.enums import OrderStatus, OrderType, Side, StpMode, TimeInForce
from trading_engine.core.ids import ClientOrderId, OrderId, UserId
from trading_engine.errors import InvalidInput, InvalidTransition

__all__ = [
    "FAVOURABLE",
    "PROTECTED",
    "RESTING_TYPES",
    "TRAILING",
    "TRANSITIONS",
    "TRIGGERED",
    "WAITING",
    "WITH_LIMIT",
    "Order",
    "OrderSpec",
    "advance",
    "trailing_distance",
    "trailing_limit",
    "trailing_stop_at",
    "triggers_rising",
]

_T = OrderType
WITH_LIMIT: frozenset[OrderType] = frozenset({_T.LIMIT, _T.STOP_LIMIT, _T.TAKE_PROFIT_LIMIT})
"""The types whose ``price`` is the client's limit price."""
TRIGGERED: frozenset[OrderType] = frozenset(
    {_T.STOP, _T.STOP_LIMIT, _T.TAKE_PROFIT, _T.TAKE_PROFIT_LIMIT}
)
"""The types that wait, ``pending_trigger``, for a trade price to reach their ``stop_price``."""
TRAILING: frozenset[OrderType] = frozenset({_T.TRAILING_STOP, _T.TRAILING_STOP_LIMIT})
"""The types whose stop price trails the last trade price (``trailing_stop_at``)."""
WAITING: frozenset[OrderType] = TRIGGERED | TRAILING
"""The types accepted ``pending_trigger``."""
RESTING_TYPES: frozenset[OrderType] = WITH_LIMIT | {_T.TRAILING_STOP_LIMIT}
"""The types whose remainder may rest in the book once active (if GTC or GTD)."""
PROTECTED: frozenset[OrderType] = frozenset(
    {_T.MARKET, _T.STOP, _T.TAKE_PROFIT, _T.TRAILING_STOP, _T.TRAILING_STOP_LIMIT}
)
"""The types whose ``price`` the risk actor sets: a protection price, the worst price the
order may trade at (a trailing stop-limit's limit never passes it), which its hold
covers."""
FAVOURABLE: frozenset[OrderType] = frozenset({_T.TAKE_PROFIT, _T.TAKE_PROFIT_LIMIT})
"""The triggered types that wait for the price to move in their favour (take-profits): a
sell at or above its stop price, a buy at or below; a stop waits for the other way."""


_BPS = 10_000


def trailing_distance(spec: OrderSpec, anchor: int) -> int:
    """How far a trailing stop's stop price is from ``anchor``, the best trade price since
    it was armed: ``trailing_delta`` ticks, or ``trailing_bps`` of the anchor rounded down
    (at least one tick)."""
    if spec.trailing_delta:
        return spec.trailing_delta
    return max(anchor * spec.trailing_bps // _BPS, 1)


def trailing_stop_at(spec: OrderSpec, anchor: int) -> int:
    """A trailing stop's stop price when ``anchor`` is the best trade price since it was
    armed: below it for a sell (it protects a long), above it for a buy; at least 1."""
    distance = trailing_distance(spec, anchor)
    if spec.side is Side.SELL:
        return max(anchor - distance, 1)
    return anchor + distance


def trailing_limit(spec: OrderSpec, stop_price: int) -> int:
    """A triggered trailing stop-limit's limit price: ``limit_offset`` beyond its stop
    price (below for a sell, above for a buy), never past its protection price
    (``spec.price``, which its hold covers) and at least 1."""
    if spec.side is Side.SELL:
        return max(stop_price - spec.limit_offset, spec.price, 1)
    limit = stop_price + spec.limit_offset
    return min(limit, spec.price) if spec.price else limit


def triggers_rising(side: Side, kind: OrderType) -> bool:
    """Whether a triggered order of ``side`` and ``kind`` triggers when a trade prints at or
    above its stop price (a buy stop, a sell take-profit), rather than at or below."""
    return (side is Side.BUY) is (kind not in FAVOURABLE)


_S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING_TRIGGER: frozenset(
        {_S.OPEN, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED}
    ),
    _S.OPEN: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED}),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class OrderSpec(NamedTuple):
    """What a client asked for, exactly as accepted; never changes.

    Prices are ticks, quantities lots, times nanoseconds since the epoch.
    A stop order's time in force governs how long it waits for its trigger
    (GTC, or GTD until ``expire_time``); once triggered it is a market order.
    ``price`` is the limit price of a limit or stop-limit order. On a market or
    stop order it is 0 (the matcher's price band applies) or a protection
    price that the risk actor sets: the worst price the order may trade at,
    which its hold covers. Build one from untrusted input with
    ``OrderSpec.create``, which checks the combination of fields and refuses a
    client's price on a market order.

    ``reduce_only`` (margin symbols only): the order may only reduce its
    user's position, never open or grow one; the matcher keeps it within the
    position (see ``core.matcher``). Last, with a default, so that specs
    journaled before it existed decode as ordinary orders.

    ``quote_quantity`` (a market order only; 0 for none) is an amount of the quote
    asset in its minor units: a buy spends at most that much, a sell receives at most
    that much, fees included, filling whole lots (see ``core.matcher``). Its
    ``quantity`` is then a cap in lots that the risk actor sets (``Instrument.lots_for_quote``
    at the band's low edge, where a lot is cheapest), not the client's.

    A trailing stop (``TRAILING``) has no ``stop_price`` of its own: the matcher keeps
    it, ``trailing_delta`` ticks (or ``trailing_bps`` basis points) from the best trade
    price since the order was armed (``trailing_stop_at``); ``activation_price`` (0 for
    none) arms it only once a trade reaches it in the order's favour (a sell at or
    above, a buy at or below); a trailing stop-limit's limit is ``limit_offset`` ticks
    beyond the stop price when it triggers (``trailing_limit``).

    ``display_quantity`` (a limit GTC or GTD order; 0 for none) makes it an iceberg:
    resting, it shows slices of that many lots (``Order.hidden`` is the rest).

    ``list_id`` (0 for none) names the order list (``core.lists``) the order belongs to.
    """

    order_id: OrderId
    user_id: UserId
    side: Side
    type: OrderType
    quantity: int
    price: int = 0
    stop_price: int = 0
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stp: StpMode = StpMode.CANCEL_NEWEST
    client_order_id: ClientOrderId | None = None
    expire_time: int | None = None
    reduce_only: bool = False
    quote_quantity: int = 0
    trailing_delta: int = 0
    trailing_bps: int = 0
    activation_price: int = 0
    limit_offset: int = 0
    display_quantity: int = 0
    list_id: int = 0

    @classmethod
    def create(
        cls,
        order_id: OrderId,
        user_id: UserId,
        side: Side,
        type: OrderType,  # noqa: A002 - the field's wire name
        quantity: int,
        price: int = 0,
        stop_price: int = 0,
        time_in_force: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        stp: StpMode = StpMode.CANCEL_NEWEST,
        client_order_id: ClientOrderId | None = None,
        expire_time: int | None = None,
        reduce_only: bool = False,
        quote_quantity: int = 0,
        trailing_delta: int = 0,
        trailing_bps: int = 0,
        activation_price: int = 0,
        limit_offset: int = 0,
        display_quantity: int = 0,
    ) -> OrderSpec:
        """Check that the fields make a valid order; raises ``InvalidInput`` naming the field.

        A quote-sized order (``quote_quantity``) may have ``quantity`` 0: the risk actor
        sets its cap."""
        if quote_quantity:
            if type is not OrderType.MARKET:
                raise InvalidInput("quote_quantity", "is only for a market order")
            if quote_quantity < 0:
                raise InvalidInput("quote_quantity", "must be positive")
            if time_in_force is TimeInForce.FOK:
                raise InvalidInput("time_in_force", "a quote-sized market order is IOC")
            if quantity < 0:
                raise InvalidInput("quantity", "must not be negative")
        elif quantity <= 0:
            raise InvalidInput("quantity", "must be positive")
        _check_trailing(type, trailing_delta, trailing_bps, activation_price, limit_offset)
        has_limit = type in WITH_LIMIT
        if has_limit and price <= 0:
            raise InvalidInput("price", f"is required for a {type} order")
        if not has_limit and price:
            raise InvalidInput("price", f"must not be given for a {type} order")
        is_stop = type in TRIGGERED
        if is_stop and stop_price <= 0:
            raise InvalidInput("stop_price", f"is required for a {type} order")
        if not is_stop and stop_price:
            raise InvalidInput("stop_price", f"must not be given for a {type} order")
        if time_in_force is TimeInForce.GTD:
            if expire_time is None:
                raise InvalidInput("expire_time", "is required when time_in_force is GTD")
        elif expire_time is not None:
            raise InvalidInput("expire_time", "is only allowed when time_in_force is GTD")
        if type is OrderType.MARKET:
            if time_in_force is TimeInForce.GTD:
                raise InvalidInput("time_in_force", "a market order cannot be GTD")
            if time_in_force is TimeInForce.GTC:
                # A market order never rests: IOC is what it means.
                time_in_force = TimeInForce.IOC
        if post_only and (
            type is not OrderType.LIMIT or time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
        ):
            raise InvalidInput("post_only", "needs a limit order that may rest (GTC or GTD)")
        if type in WAITING and time_in_force is TimeInForce.FOK:
            raise InvalidInput("time_in_force", f"FOK is not available on {type} orders")
        if display_quantity:
            if type is not OrderType.LIMIT or time_in_force not in _RESTING_TIFS:
                raise InvalidInput(
                    "display_quantity", "needs a limit order that may rest (GTC, GTD)"
                )
            if not 0 < display_quantity < quantity:
                raise InvalidInput("display_quantity", "must be positive and below the quantity")
        if client_order_id is not None and not 1 <= len(client_order_id) <= 64:
            raise InvalidInput("client_order_id", "must be 1 to 64 characters")
        return cls(
            order_id,
            user_id,
            side,
            type,
            quantity,
            price,
            stop_price,
            time_in_force,
            post_only,
            stp,
            client_order_id,
            expire_time,
            reduce_only,
            quote_quantity,
            trailing_delta,
            trailing_bps,
            activation_price,
            limit_offset,
            display_quantity,
        )

    @property
    def rests(self) -> bool:
        """Whether a remainder of this order may rest in the book once active."""
        return self.type in _RESTING_TYPES and self.time_in_force in _RESTING_TIFS

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its fields, rebuilt by ``tuple.__new__`` (snapshots hold many specs:
        this skips the Python-level ``__new__`` of a named tuple)."""
        return tuple.__new__, (OrderSpec, tuple(self))


_RESTING_TYPES = RESTING_TYPES


def _check_trailing(
    kind: OrderType, delta: int, bps: int, activation_price: int, limit_offset: int
) -> None:
    """Raise ``InvalidInput`` unless the trailing fields fit the order's type."""
    if kind not in TRAILING:
        for name, value in (
            ("trailing_delta", delta), ("trailing_bps", bps),
            ("activation_price", activation_price), ("limit_offset", limit_offset),
        ):  # fmt: skip
            if value:
                raise InvalidInput(name, "is only for a trailing_stop or trailing_stop_limit order")
        return
    if (delta > 0) is (bps > 0) or delta < 0 or bps < 0:
        raise InvalidInput("trailing_delta", "give one of trailing_delta or trailing_bps, positive")
    if bps >= _BPS:
        raise InvalidInput("trailing_bps", "must be below 10000 (100%)")
    if activation_price < 0:
        raise InvalidInput("activation_price", "must be positive")
    if limit_offset < 0:
        raise InvalidInput("limit_offset", "must not be negative")
    if limit_offset and kind is not OrderType.TRAILING_STOP_LIMIT:
        raise InvalidInput("limit_offset", "is only for a trailing_stop_limit order")


_RESTING_TIFS = frozenset({TimeInForce.GTC, TimeInForce.GTD})


ORDER_STATE = (
    "spec", "status", "created_ts", "updated_ts", "price", "quantity",
    "remaining", "filled", "cancelled", "notional", "resting", "stop_price", "hidden",
)  # fmt: skip
"""What a pickled ``Order`` keeps, in ``_order``'s order; ``order_id``, ``user_id`` and
``side`` come from the spec."""


def _order(
    spec: OrderSpec, status: OrderStatus, created_ts: int, updated_ts: int, price: int,
    quantity: int, remaining: int, filled: int, cancelled: int, notional: int, resting: bool,
    stop_price: int, hidden: int,
) -> Order:  # fmt: skip
    """An ``Order`` back from its pickle: one call, no state dict (snapshots hold many)."""
    order = Order(spec, status, created_ts)
    order.updated_ts = updated_ts
    order.price = price
    order.quantity = quantity
    order.remaining = remaining
    order.filled = filled
    order.cancelled = cancelled
    order.notional = notional
    order.resting = resting
    order.stop_price = stop_price
    order.hidden = hidden
    return order


class Order:
    """The live state of an order while the symbol actor holds it.

    Invariant: ``filled + remaining + cancelled == quantity``. ``price`` is
    the current limit price in ticks (0 for a market order); ``notional`` is
    the sum of price x quantity over its fills, for the average price.
    ``resting`` is true exactly while the order sits in the book. ``stop_price`` is
    the spec's, or a trailing stop's current one (0 until armed). ``hidden`` is the
    part of ``remaining`` that a resting iceberg does not show (0 for any other
    order, and for an iceberg until it rests): the book counts ``remaining -
    hidden``. A plain
    class rather than attrs: it is the matcher's hottest object, and a plain
    class compiles to a native one (see ``build_core.py``).
    """

    __slots__ = (
        "cancelled", "created_ts", "filled", "hidden", "notional", "order_id", "price", "quantity",
        "remaining", "resting", "side", "spec", "status", "stop_price", "updated_ts", "user_id",
    )  # fmt: skip

    def __init__(self, spec: OrderSpec, status: OrderStatus, ts: int) -> None:
        self.spec = spec
        self.order_id = spec.order_id
        self.user_id = spec.user_id
        self.side = spec.side
        self.price = spec.price
        self.quantity = spec.quantity
        self.remaining = spec.quantity
        self.status = status
        self.created_ts = ts
        self.updated_ts = ts
        self.filled = 0
        self.cancelled = 0
        self.notional = 0
        self.resting = False
        self.stop_price = spec.stop_price
        self.hidden = 0

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as ``ORDER_STATE`` (engine snapshots): the rest comes from the spec."""
        return _order, (
            self.spec, self.status, self.created_ts, self.updated_ts, self.price, self.quantity,
            self.remaining, self.filled, self.cancelled, self.notional, self.resting,
            self.stop_price, self.hidden,
        )  # fmt: skip

    @classmethod
    def from_spec(cls, spec: OrderSpec, ts: int) -> Order:
        if spec.type in WAITING:
            return cls(spec, OrderStatus.PENDING_TRIGGER, ts)
        return cls(spec, OrderStatus.OPEN, ts)

    def moved(self, price: int, quantity: int, remaining: int, ts: int) -> Order:
        """A copy with a new price and quantity, not resting: an amend that lost priority."""
        copy = Order(self.spec, self.status, ts)
        copy.created_ts = self.created_ts
        copy.price = price
        copy.quantity = quantity
        copy.remaining = remaining
        copy.filled = self.filled
        copy.cancelled = self.cancelled
        copy.notional = self.notional
        copy.stop_price = self.stop_price
        return copy

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id}, {self.side}, {self.status}, price={self.price}, "
            f"quantity={self.quantity}, remaining={self.remaining}, filled={self.filled})"
        )


def advance(order: Order, status: OrderStatus) -> None:
    """Move ``order`` to ``status``; raises ``InvalidTransition`` if the table forbids it."""
    if status not in TRANSITIONS[order.status]:
        raise InvalidTransition(
            f"order {order.order_id}: {order.status} -> {status} is not allowed"
        )
    order.status = status
