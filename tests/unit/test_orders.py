"""OrderSpec.create validation, the Order record, and the status transition table."""

from typing import Any

import pytest

from trading_engine.core.enums import OrderStatus, OrderType, Side, StpMode, TimeInForce
from trading_engine.core.ids import ClientOrderId, OrderId, UserId
from trading_engine.core.orders import TRANSITIONS, Order, OrderSpec, advance
from trading_engine.errors import InvalidInput, InvalidTransition, InvariantViolation

ALICE = UserId("alice")
S = OrderStatus

# The table as drawn in the orders module's docstring, written out independently.
DOCUMENTED_TRANSITIONS: dict[OrderStatus, set[OrderStatus]] = {
    S.PENDING_TRIGGER: {S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED},
    S.OPEN: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED},
    S.PARTIALLY_FILLED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED},
    S.FILLED: set(),
    S.CANCELLED: set(),
    S.REJECTED: set(),
    S.EXPIRED: set(),
}


def spec(type_: OrderType = OrderType.LIMIT, **fields: Any) -> OrderSpec:
    """A valid order of ``type_`` unless ``fields`` override its defaults."""
    defaults: dict[str, Any] = {"quantity": 5}
    if type_ in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        defaults["price"] = 10_000
    if type_ in (OrderType.STOP, OrderType.STOP_LIMIT):
        defaults["stop_price"] = 10_100
    return OrderSpec.create(OrderId(1), ALICE, Side.BUY, type_, **(defaults | fields))


def order_in(status: OrderStatus) -> Order:
    return Order(spec(), status, ts=0)


def test_create_keeps_every_field_of_a_valid_order() -> None:
    created = OrderSpec.create(
        OrderId(7),
        ALICE,
        Side.SELL,
        OrderType.STOP_LIMIT,
        3,
        price=9_900,
        stop_price=9_950,
        time_in_force=TimeInForce.GTD,
        stp=StpMode.DECREMENT,
        client_order_id=ClientOrderId("c-1"),
        expire_time=123,
    )
    assert created == OrderSpec(
        OrderId(7),
        ALICE,
        Side.SELL,
        OrderType.STOP_LIMIT,
        3,
        9_900,
        9_950,
        TimeInForce.GTD,
        False,
        StpMode.DECREMENT,
        ClientOrderId("c-1"),
        123,
    )


def test_create_defaults_to_gtc_cancel_newest_and_no_client_id() -> None:
    created = spec()
    assert created.time_in_force is TimeInForce.GTC
    assert created.stp is StpMode.CANCEL_NEWEST
    assert created.post_only is False
    assert created.client_order_id is None
    assert created.expire_time is None


@pytest.mark.parametrize(
    ("type_", "fields", "field"),
    [
        pytest.param(OrderType.LIMIT, {"quantity": 0}, "quantity", id="zero-quantity"),
        pytest.param(OrderType.LIMIT, {"quantity": -1}, "quantity", id="negative-quantity"),
        pytest.param(OrderType.LIMIT, {"price": 0}, "price", id="limit-without-price"),
        pytest.param(OrderType.LIMIT, {"price": -5}, "price", id="limit-negative-price"),
        pytest.param(OrderType.STOP_LIMIT, {"price": 0}, "price", id="stop-limit-without-price"),
        pytest.param(OrderType.MARKET, {"price": 10_000}, "price", id="market-with-price"),
        pytest.param(OrderType.STOP, {"price": 10_000}, "price", id="stop-with-price"),
        pytest.param(OrderType.STOP, {"stop_price": 0}, "stop_price", id="stop-without-stop"),
        pytest.param(
            OrderType.STOP_LIMIT, {"stop_price": 0}, "stop_price", id="stop-limit-without-stop"
        ),
        pytest.param(OrderType.LIMIT, {"stop_price": 9_000}, "stop_price", id="limit-with-stop"),
        pytest.param(OrderType.MARKET, {"stop_price": 9_000}, "stop_price", id="market-with-stop"),
        pytest.param(
            OrderType.LIMIT,
            {"time_in_force": TimeInForce.GTD},
            "expire_time",
            id="gtd-without-expire-time",
        ),
        pytest.param(OrderType.LIMIT, {"expire_time": 5}, "expire_time", id="gtc-with-expiry"),
        pytest.param(
            OrderType.LIMIT,
            {"time_in_force": TimeInForce.IOC, "expire_time": 5},
            "expire_time",
            id="ioc-with-expire-time",
        ),
        pytest.param(OrderType.MARKET, {"post_only": True}, "post_only", id="post-only-market"),
        pytest.param(OrderType.STOP, {"post_only": True}, "post_only", id="post-only-stop"),
        pytest.param(
            OrderType.STOP_LIMIT, {"post_only": True}, "post_only", id="post-only-stop-limit"
        ),
        pytest.param(
            OrderType.STOP,
            {"time_in_force": TimeInForce.FOK},
            "time_in_force",
            id="fok-stop",
        ),
        pytest.param(
            OrderType.STOP_LIMIT,
            {"time_in_force": TimeInForce.FOK},
            "time_in_force",
            id="fok-stop-limit",
        ),
        pytest.param(
            OrderType.LIMIT,
            {"post_only": True, "time_in_force": TimeInForce.IOC},
            "post_only",
            id="post-only-ioc",
        ),
        pytest.param(
            OrderType.LIMIT,
            {"post_only": True, "time_in_force": TimeInForce.FOK},
            "post_only",
            id="post-only-fok",
        ),
        pytest.param(
            OrderType.LIMIT,
            {"client_order_id": ClientOrderId("")},
            "client_order_id",
            id="empty-client-order-id",
        ),
        pytest.param(
            OrderType.LIMIT,
            {"client_order_id": ClientOrderId("x" * 65)},
            "client_order_id",
            id="client-order-id-over-64",
        ),
    ],
)
def test_create_rejects_an_invalid_combination_naming_the_field(
    type_: OrderType, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        spec(type_, **fields)
    assert info.value.field == field


def test_post_only_gtd_limit_is_accepted() -> None:
    created = spec(post_only=True, time_in_force=TimeInForce.GTD, expire_time=9)
    assert created.post_only is True


def test_client_order_id_of_64_characters_is_accepted() -> None:
    assert spec(client_order_id=ClientOrderId("x" * 64)).client_order_id == "x" * 64


def test_market_orders_are_forced_to_ioc() -> None:
    assert spec(OrderType.MARKET).time_in_force is TimeInForce.IOC
    assert spec(OrderType.MARKET, time_in_force=TimeInForce.GTC).time_in_force is TimeInForce.IOC


def test_market_order_cannot_be_gtd() -> None:
    with pytest.raises(InvalidInput) as info:
        spec(OrderType.MARKET, time_in_force=TimeInForce.GTD, expire_time=9)
    assert info.value.field == "time_in_force"


def test_stop_order_keeps_gtc_or_gtd_for_its_wait_for_the_trigger() -> None:
    assert spec(OrderType.STOP).time_in_force is TimeInForce.GTC
    waiting = spec(OrderType.STOP, time_in_force=TimeInForce.GTD, expire_time=9)
    assert (waiting.time_in_force, waiting.expire_time) == (TimeInForce.GTD, 9)


def test_market_fok_stays_fok() -> None:
    assert spec(OrderType.MARKET, time_in_force=TimeInForce.FOK).time_in_force is TimeInForce.FOK


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK])
def test_limit_order_keeps_its_time_in_force(tif: TimeInForce) -> None:
    assert spec(time_in_force=tif).time_in_force is tif


@pytest.mark.parametrize(
    ("type_", "fields", "rests"),
    [
        (OrderType.LIMIT, {}, True),
        (OrderType.LIMIT, {"time_in_force": TimeInForce.GTD, "expire_time": 9}, True),
        (OrderType.LIMIT, {"time_in_force": TimeInForce.IOC}, False),
        (OrderType.LIMIT, {"time_in_force": TimeInForce.FOK}, False),
        (OrderType.STOP_LIMIT, {}, True),
        (OrderType.MARKET, {}, False),
        (OrderType.STOP, {}, False),
    ],
)
def test_rests_only_for_limit_types_with_gtc_or_gtd(
    type_: OrderType, fields: dict[str, Any], rests: bool
) -> None:
    assert spec(type_, **fields).rests is rests


@pytest.mark.parametrize(
    ("type_", "status"),
    [
        (OrderType.LIMIT, OrderStatus.OPEN),
        (OrderType.MARKET, OrderStatus.OPEN),
        (OrderType.STOP, OrderStatus.PENDING_TRIGGER),
        (OrderType.STOP_LIMIT, OrderStatus.PENDING_TRIGGER),
    ],
)
def test_order_from_spec_starts_open_or_pending_trigger(
    type_: OrderType, status: OrderStatus
) -> None:
    order = Order.from_spec(spec(type_), ts=42)
    assert order.status is status
    assert (order.quantity, order.remaining, order.filled, order.cancelled) == (5, 5, 0, 0)
    assert order.notional == 0
    assert order.resting is False
    assert order.updated_ts == 42


def test_moved_copy_keeps_counters_and_takes_the_new_price_and_quantity() -> None:
    order = Order.from_spec(spec(quantity=10), ts=1)
    order.filled, order.remaining, order.cancelled, order.notional = 3, 6, 1, 30_000
    order.status = OrderStatus.PARTIALLY_FILLED
    order.resting = True
    moved = order.moved(price=10_050, quantity=12, remaining=8, ts=2)
    assert moved is not order
    assert (moved.price, moved.quantity, moved.remaining) == (10_050, 12, 8)
    assert (moved.filled, moved.cancelled, moved.notional) == (3, 1, 30_000)
    assert moved.status is OrderStatus.PARTIALLY_FILLED
    assert moved.resting is False
    assert moved.updated_ts == 2
    assert (order.price, order.quantity, order.remaining) == (10_000, 10, 6)


def test_transition_table_is_the_documented_one() -> None:
    assert {status: set(targets) for status, targets in TRANSITIONS.items()} == (
        DOCUMENTED_TRANSITIONS
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [(source, target) for source, targets in DOCUMENTED_TRANSITIONS.items() for target in targets],
)
def test_advance_allows_every_documented_transition(
    source: OrderStatus, target: OrderStatus
) -> None:
    order = order_in(source)
    advance(order, target)
    assert order.status is target


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (source, target)
        for source in OrderStatus
        for target in OrderStatus
        if target not in DOCUMENTED_TRANSITIONS[source]
    ],
)
def test_advance_refuses_every_other_transition(source: OrderStatus, target: OrderStatus) -> None:
    order = order_in(source)
    with pytest.raises(InvalidTransition):
        advance(order, target)
    assert order.status is source


def test_illegal_transition_is_an_invariant_violation_naming_the_order() -> None:
    order = order_in(OrderStatus.FILLED)
    with pytest.raises(InvariantViolation, match=r"order 1: filled -> open is not allowed"):
        advance(order, OrderStatus.OPEN)
