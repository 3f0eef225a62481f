"""Engine snapshots pickle the core's objects: each must come back with every attribute.

``Order`` and ``OrderRecord`` pickle as a list of fields (no state dict: snapshots
hold hundreds of thousands of them), so a field added to the class and not to
that list would silently vanish from snapshots. These tests name every
attribute an instance has and check that each survives, with values that
differ from what the constructor would set.
"""

from __future__ import annotations

import pickle
from typing import Any

from trading_engine.core.enums import OrderStatus, OrderType, Side, StpMode, TimeInForce
from trading_engine.core.events import Trade
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, TradeId, UserId
from trading_engine.core.ledger import Entry, Posting
from trading_engine.core.orders import ORDER_STATE, Order, OrderSpec
from trading_engine.core.views import RECORD_STATE, OrderRecord

SPEC = OrderSpec(
    OrderId(7), UserId("ann"), Side.SELL, OrderType.STOP_LIMIT, 40, 101, 99,
    TimeInForce.GTD, True, StpMode.CANCEL_BOTH, ClientOrderId("c-7"), 123_456,
)  # fmt: skip


def attributes(obj: Any) -> dict[str, Any]:
    """Every attribute of ``obj``, compiled (mypyc's state dict) or not (slots or a dict)."""
    state = obj.__getstate__()
    if isinstance(state, tuple):
        state = {**(state[0] or {}), **state[1]}
    return dict(state)


def round_trip(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def test_a_spec_comes_back_equal_and_of_its_type() -> None:
    back = round_trip(SPEC)
    assert type(back) is OrderSpec
    assert back == SPEC


def test_an_order_keeps_every_attribute() -> None:
    order = Order(SPEC, OrderStatus.PENDING_TRIGGER, 1_000)
    changed = {
        "status": OrderStatus.PARTIALLY_FILLED, "updated_ts": 2_000, "price": 103,
        "quantity": 35, "remaining": 20, "filled": 10, "cancelled": 5, "notional": 1_030,
        "resting": True,
    }  # fmt: skip
    for name, value in changed.items():
        setattr(order, name, value)
    names = set(attributes(order))
    assert names == set(ORDER_STATE) | {"order_id", "user_id", "side"}
    back = round_trip(order)
    assert attributes(back) == attributes(order)


def test_an_order_record_keeps_every_attribute() -> None:
    record = OrderRecord(Symbol("BTC_AIT"), SPEC, OrderStatus.OPEN, 1_000)
    changed = {
        "status": OrderStatus.CANCELLED, "updated_ts": 3_000, "price": 104, "quantity": 30,
        "filled": 12, "remaining": 0, "cancelled": 18, "notional": 1_240, "reason": "user",
    }  # fmt: skip
    for name, value in changed.items():
        setattr(record, name, value)
    assert set(attributes(record)) == set(RECORD_STATE)
    assert attributes(round_trip(record)) == attributes(record)


def test_an_event_comes_back_equal() -> None:
    trade = Trade(
        5, 99, Symbol("BTC_AIT"), TradeId(3), 101, 4, Side.BUY, OrderId(1), OrderId(2),
        UserId("a"), UserId("b"), -1, 4,
    )  # fmt: skip
    back = round_trip(trade)
    assert type(back) is Trade
    assert back == trade


def test_a_posting_comes_back_with_its_entries() -> None:
    posting = Posting.create(
        "BTC_AIT:3", "trade", [Entry("a", "BTC", 4), Entry("b", "BTC", -4)], ts=11
    )
    back = round_trip(posting)
    assert type(back) is Posting
    assert back.key() == posting.key()
    assert all(type(entry) is Entry for entry in back.entries)
