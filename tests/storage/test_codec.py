"""The codec: every event type survives encode, JSON text, decode; nothing inexact gets in."""

from __future__ import annotations

import json
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest

from trading_engine.core import account_events, events
from trading_engine.core.account_events import (
    Deposited,
    InstrumentListed,
    SymbolHalted,
    SymbolResumed,
    UserCreated,
    Withdrawn,
)
from trading_engine.core.enums import (
    CancelReason,
    Liquidity,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from trading_engine.core.events import (
    BookLevel,
    EventBase,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderReduced,
    OrderRejected,
    SelfTradePrevented,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, TradeId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.orders import OrderSpec
from trading_engine.storage import codec
from trading_engine.storage.codec import CodecError

BTC = Symbol("BTC_AIT")
ALICE, BOB = UserId("alice"), UserId("bob")
BIG = 2**70 + 1
"""Bigger than a float can hold exactly, and than a bigint: must come back exact."""
TS = 1_767_225_600_123_456_789

STOP_GTD = OrderSpec(
    OrderId(7),
    ALICE,
    Side.SELL,
    OrderType.STOP_LIMIT,
    quantity=BIG,
    price=99_000,
    stop_price=99_500,
    time_in_force=TimeInForce.GTD,
    post_only=False,
    stp=StpMode.DECREMENT,
    client_order_id=ClientOrderId("client-é-1"),
    expire_time=TS + 10**9,
)
PLAIN = OrderSpec(OrderId(8), BOB, Side.BUY, OrderType.MARKET, 5)
MARGIN = Instrument.create(
    "ETH_AIT",
    "ETH",
    "AIT",
    "0.01",
    "0.001",
    min_quantity="0.01",
    min_notional="10",
    taker_fee_bps=20,
    maker_fee_bps=-5,
    price_band_pct="12.5",
    mode="margin",
    quote_decimals=6,
)

SAMPLES: list[EventBase] = [
    OrderAccepted(1, TS, BTC, STOP_GTD, OrderStatus.PENDING_TRIGGER),
    OrderAccepted(2, TS, BTC, PLAIN, OrderStatus.OPEN),
    OrderRejected(3, TS, BTC, PLAIN, RejectReason.INSUFFICIENT_FUNDS),
    Trade(
        4,
        TS,
        BTC,
        TradeId(BIG),
        100_000,
        3,
        Side.BUY,
        OrderId(1),
        OrderId(2),
        ALICE,
        BOB,
        -6,
        30,
    ),
    OrderFilled(
        5,
        TS,
        BTC,
        OrderId(1),
        ALICE,
        TradeId(11),
        100_000,
        3,
        Liquidity.MAKER,
        -6,
        3,
        0,
        OrderStatus.FILLED,
    ),
    OrderCancelled(6, TS, BTC, OrderId(2), BOB, 2, 3, CancelReason.UNFILLED_IOC),
    OrderExpired(7, TS, BTC, OrderId(9), ALICE, 4, 0),
    OrderReduced(8, TS, BTC, OrderId(9), ALICE, 1, 3, CancelReason.SELF_TRADE_PREVENTION),
    OrderAmended(9, TS, BTC, OrderId(9), ALICE, 99_999, 6, 6, True),
    OrderAmended(10, TS, BTC, OrderId(9), ALICE, 99_998, 7, 7, False),
    StopTriggered(11, TS, BTC, OrderId(7), ALICE, 99_500),
    SelfTradePrevented(12, TS, BTC, OrderId(3), OrderId(4), ALICE, StpMode.CANCEL_BOTH, 2),
    BookLevel(13, TS, BTC, Side.SELL, 100_001, 0),
    UserCreated(1, TS, ALICE, None, "hash-alice"),
    UserCreated(2, TS, BOB, "desk \u2603 7", "hash-bob"),
    Deposited(3, TS, ALICE, "AIT", BIG),
    Withdrawn(4, TS, ALICE, "AIT", 1),
    InstrumentListed(5, TS, MARGIN),
    SymbolHalted(6, TS, BTC, "halted by admin: fat finger"),
    SymbolResumed(7, TS, BTC),
]


def _event_classes() -> set[type]:
    return {
        value
        for module in (events, account_events)
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, EventBase) and value is not EventBase
    }


def _same_types(before: Any, after: Any) -> None:
    """Equal is not enough: an enum must come back an enum, a spec a spec."""
    assert type(after) is type(before), (before, after)
    if isinstance(before, EventBase | OrderSpec):
        names = before.FIELDS if isinstance(before, EventBase) else OrderSpec._fields
        for name in names:
            _same_types(getattr(before, name), getattr(after, name))
    elif isinstance(before, Instrument):
        for name in Instrument.__attrs_attrs__:  # type: ignore[attr-defined]
            _same_types(getattr(before, name.name), getattr(after, name.name))


def test_the_samples_cover_every_event_class_and_the_codec_knows_them_all() -> None:
    classes = _event_classes()
    assert {type(event) for event in SAMPLES} == classes
    assert set(codec.EVENT_TYPES.values()) == classes
    assert set(codec.EVENT_TYPES) == {cls.__name__ for cls in classes}


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: f"{type(e).__name__}-{e.seq}")
def test_every_event_round_trips_through_json_text_with_its_types(event: EventBase) -> None:
    name, fields = codec.encode(event)
    assert name == type(event).__name__
    text = codec.dumps(fields)
    # The text is plain JSON that a stranger can read: no floats, no objects.
    assert json.loads(text) == fields
    assert "." not in json.dumps([v for v in fields.values() if isinstance(v, int)])
    decoded = codec.decode(name, codec.loads(text))
    assert decoded == event
    _same_types(event, decoded)


def test_encoded_fields_are_plain_json_values() -> None:
    def plain(value: Any) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        return value is None or type(value) in (int, str, bool)

    for event in SAMPLES:
        _, fields = codec.encode(event)
        assert plain(fields), fields
        assert not any(isinstance(v, Enum) for v in fields.values())


def test_decimals_are_stored_as_exact_strings() -> None:
    _, fields = codec.encode(InstrumentListed(1, TS, MARGIN))
    assert fields["instrument"]["tick_size"] == "0.01"
    assert fields["instrument"]["lot_size"] == "0.001"
    decoded = codec.decode("InstrumentListed", fields)
    assert isinstance(decoded, InstrumentListed)
    assert decoded.instrument.tick_size == Decimal("0.01")


def test_big_integers_stay_exact() -> None:
    name, fields = codec.encode(Deposited(1, TS, ALICE, "AIT", 10**30 + 1))
    decoded = codec.decode(name, codec.loads(codec.dumps(fields)))
    assert isinstance(decoded, Deposited)
    assert decoded.amount == 10**30 + 1


def test_dumps_is_canonical() -> None:
    assert codec.dumps({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_an_unknown_event_type_is_refused_both_ways() -> None:
    class Bogus:
        """Looks like an event to the journal, but the codec has never heard of it."""

        seq, ts = 1, 2

        def to_dict(self) -> dict[str, Any]:
            return {"seq": 1, "ts": 2}

    with pytest.raises(CodecError, match="unknown event type"):
        codec.encode(Bogus())
    with pytest.raises(CodecError, match="unknown event type 'Bogus'"):
        codec.decode("Bogus", {"seq": 1, "ts": 2})


def test_a_float_is_refused_both_ways() -> None:
    # The compiled events refuse a float themselves; a spec is a plain named tuple.
    sloppy = PLAIN._replace(price=1.5)
    with pytest.raises(CodecError, match="float"):
        codec.encode(OrderAccepted(1, TS, BTC, sloppy, OrderStatus.OPEN))
    with pytest.raises(CodecError, match="not exact"):
        codec.loads('{"amount": 1.5}')
    with pytest.raises(CodecError, match="not exact"):
        codec.loads('{"amount": 1e3}')
    with pytest.raises(CodecError, match="not exact"):
        codec.loads('{"amount": NaN}')


@pytest.mark.parametrize(
    ("name", "fields", "message"),
    [
        ("SymbolResumed", {"seq": 1, "ts": 2}, "missing fields"),
        ("SymbolResumed", {"seq": 1, "ts": 2, "symbol": "X_Y", "extra": 0}, "unknown fields"),
        (
            "BookLevel",
            {"seq": 1, "ts": 2, "symbol": "X_Y", "side": "up", "price": 1, "quantity": 1},
            "not a Side",
        ),
        (
            "OrderAccepted",
            {"seq": 1, "ts": 2, "symbol": "X_Y", "spec": [1], "status": "open"},
            "expected an object",
        ),
        (
            "OrderAccepted",
            {"seq": 1, "ts": 2, "symbol": "X_Y", "spec": {"order_id": 1}, "status": "open"},
            "OrderAccepted: ",
        ),
    ],
)
def test_a_payload_that_does_not_fit_is_a_codec_error(
    name: str, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(CodecError, match=message):
        codec.decode(name, fields)


def test_a_nul_character_is_refused_before_it_reaches_the_database() -> None:
    with pytest.raises(CodecError, match="NUL"):
        codec.encode(UserCreated(1, TS, ALICE, "desk\x00", "hash"))


def test_loads_refuses_a_non_object() -> None:
    with pytest.raises(CodecError, match="JSON object"):
        codec.loads("[1, 2]")
    with pytest.raises(CodecError, match="bad JSON"):
        codec.loads("{")
