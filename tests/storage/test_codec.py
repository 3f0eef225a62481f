"""The codec: every event type survives encode, JSON text, decode; nothing inexact gets in."""

from __future__ import annotations

import json
import linecache
import re
import traceback
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_engine.core import account_events, algos, events
from trading_engine.core.account_events import (
    AccountEvent,
    CancelAllAfterFired,
    CancelAllAfterSet,
    CredentialSet,
    Deposited,
    InstrumentListed,
    Liquidated,
    MarginSettled,
    Posted,
    SymbolHalted,
    SymbolResumed,
    UserCreated,
    Withdrawn,
)
from trading_engine.core.algos import (
    AlgoEvent,
    AlgoSliceDone,
    AlgoStarted,
    AlgoStatus,
    AlgoStatusChanged,
    AlgoType,
)
from trading_engine.core.enums import (
    CancelReason,
    Liquidity,
    ListStatus,
    ListType,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from trading_engine.core.events import (
    BookLevel,
    Event,
    EventBase,
    IcebergRefilled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderDeferred,
    OrderExpired,
    OrderFilled,
    OrderListPlaced,
    OrderListUpdated,
    OrderReduced,
    OrderRejected,
    SelfTradePrevented,
    StopMoved,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, TradeId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.orders import OrderSpec
from trading_engine.storage import codec
from trading_engine.storage.codec import CodecError, writers
from trading_engine.storage.codec.reference import EVENT_KINDS

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

AnyEvent = Event | AccountEvent | Posted | AlgoEvent

SAMPLES: list[AnyEvent] = [
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
    StopMoved(11, TS, BTC, OrderId(8), ALICE, 99_400),
    IcebergRefilled(11, TS, BTC, OrderId(9), ALICE, 3, 4),
    SelfTradePrevented(12, TS, BTC, OrderId(3), OrderId(4), ALICE, StpMode.CANCEL_BOTH, 2),
    BookLevel(13, TS, BTC, Side.SELL, 100_001, 0),
    OrderListPlaced(14, TS, BTC, 3, ALICE, ListType.OTOCO),
    OrderDeferred(15, TS, BTC, PLAIN._replace(list_id=3)),
    OrderListUpdated(16, TS, BTC, 3, ALICE, ListStatus.CANCELLED),
    UserCreated(1, TS, ALICE, None, "hash-alice"),
    UserCreated(2, TS, BOB, "desk \u2603 7", "hash-bob"),
    CredentialSet(3, TS, BOB, "hmac-sha256", "gAAAAAB-sealed"),
    Deposited(3, TS, ALICE, "AIT", BIG),
    Withdrawn(4, TS, ALICE, "AIT", 1),
    InstrumentListed(5, TS, MARGIN),
    SymbolHalted(6, TS, BTC, "halted by admin: fat finger"),
    SymbolResumed(7, TS, BTC),
    MarginSettled(8, TS, BTC, TradeId(11), ALICE, -1_250, 30, 0),
    Liquidated(9, TS, BOB, BTC, 3, 100_000, -17, 4_500),
    CancelAllAfterSet(10, TS, ALICE, 60_000, TS + 60_000_000_000),
    CancelAllAfterSet(11, TS, ALICE, 0, None),
    CancelAllAfterFired(12, TS, BOB, TS),
    Posted(
        1,
        TS,
        "trade:BTC_AIT:11",
        "trade",
        (("user:alice", "AIT", -BIG), ("user:bob \u2603", "AIT", BIG - 3), ("fees", "AIT", 3)),
    ),
    Posted(2, TS, "deposit:3", "deposit", (("user:alice", "AIT", 5), ("external", "AIT", -5))),
    AlgoStarted(1, TS, 7, ALICE, BTC, AlgoType.TWAP, Side.BUY, 10, 4, 60 * 10**9, 0, 1, 1),
    AlgoStarted(2, TS, 8, BOB, BTC, AlgoType.VWAP, Side.SELL, BIG, 3, 1, 99_999, 1, 20),
    AlgoSliceDone(3, TS, 7, ALICE, BTC, 0, 0, 12, 2, 2, 200_000, -1),
    AlgoSliceDone(4, TS, 8, BOB, BTC, 1, -1, 0, 0, 0, 0, 42),
    AlgoStatusChanged(5, TS, 7, ALICE, BTC, AlgoStatus.FAILED, "insufficient_funds"),
    AlgoStatusChanged(6, TS, 8, BOB, BTC, AlgoStatus.PAUSED, ""),
]


def _event_classes() -> set[type[EventBase]]:
    return {
        value
        for module in (events, account_events, algos)
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
        for attribute in attrs.fields(Instrument):
            _same_types(getattr(before, attribute.name), getattr(after, attribute.name))


def test_the_samples_cover_every_event_class_and_the_codec_knows_them_all() -> None:
    classes = _event_classes()
    assert {type(event) for event in SAMPLES} == classes
    assert set(codec.EVENT_TYPES.values()) == classes
    assert set(codec.EVENT_TYPES) == {cls.__name__ for cls in classes}


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: f"{type(e).__name__}-{e.seq}")
def test_every_event_round_trips_through_json_text_with_its_types(event: AnyEvent) -> None:
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
        if isinstance(value, list):
            return all(plain(v) for v in value)
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


def test_a_reduce_only_spec_round_trips_and_one_written_before_the_field_decodes() -> None:
    event = OrderAccepted(2, TS, BTC, PLAIN._replace(reduce_only=True), OrderStatus.OPEN)
    name, text = codec.encode_text(event)
    assert '"reduce_only":true' in text
    for decoded in (codec.decode_text(name, text), codec.decode(name, codec.loads(text))):
        assert isinstance(decoded, OrderAccepted)
        assert decoded.spec == event.spec
    # A journal written before reduce-only orders existed has no such key.
    fields = codec.loads(codec.encode_text(OrderAccepted(2, TS, BTC, PLAIN, OrderStatus.OPEN))[1])
    del fields["spec"]["reduce_only"]
    old = codec.dumps(fields)
    for decoded in (codec.decode_text(name, old), codec.decode(name, codec.loads(old))):
        assert isinstance(decoded, OrderAccepted)
        assert decoded.spec == PLAIN
        assert decoded.spec.reduce_only is False


_NEW_SPEC_FIELDS = (
    "quote_quantity", "trailing_delta", "trailing_bps", "activation_price", "limit_offset",
    "display_quantity",
)  # fmt: skip


def test_the_order_types_fields_round_trip_and_a_spec_written_before_them_decodes() -> None:
    spec = PLAIN._replace(
        quote_quantity=123, trailing_delta=5, trailing_bps=7, activation_price=9, limit_offset=2,
        display_quantity=3,
    )  # fmt: skip
    event = OrderAccepted(2, TS, BTC, spec, OrderStatus.OPEN)
    name, text = codec.encode_text(event)
    for decoded in (codec.decode_text(name, text), codec.decode(name, codec.loads(text))):
        assert isinstance(decoded, OrderAccepted)
        assert decoded.spec == event.spec
    # A journal written before these order types existed has none of their keys.
    fields = codec.loads(codec.encode_text(OrderAccepted(2, TS, BTC, PLAIN, OrderStatus.OPEN))[1])
    for key in _NEW_SPEC_FIELDS:
        del fields["spec"][key]
    old = codec.dumps(fields)
    for decoded in (codec.decode_text(name, old), codec.decode(name, codec.loads(old))):
        assert isinstance(decoded, OrderAccepted)
        assert decoded.spec == PLAIN


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
    with pytest.raises(CodecError, match="unknown event type"):
        codec.encode_text(Bogus())
    with pytest.raises(CodecError, match="unknown event type 'Bogus'"):
        codec.decode("Bogus", {"seq": 1, "ts": 2})


def _ill_typed(spec: OrderSpec, **fields: Any) -> OrderSpec:
    """``spec`` with ``fields`` of the wrong type, on purpose: a spec is a plain named
    tuple, so nothing at run time stops one, and the codec must cope with it."""
    return spec._replace(**fields)


def test_a_float_is_refused_both_ways() -> None:
    # The compiled events refuse a float themselves; a spec is a plain named tuple.
    sloppy = _ill_typed(PLAIN, price=1.5)
    with pytest.raises(CodecError, match="float"):
        codec.encode(OrderAccepted(1, TS, BTC, sloppy, OrderStatus.OPEN))
    with pytest.raises(CodecError, match="float"):
        codec.encode_text(OrderAccepted(1, TS, BTC, sloppy, OrderStatus.OPEN))
    with pytest.raises(CodecError, match="float"):
        codec.encode_text(
            OrderAccepted(1, TS, BTC, _ill_typed(STOP_GTD, expire_time=1.0), OrderStatus.OPEN)
        )
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
    with pytest.raises(CodecError, match="NUL"):
        codec.encode_text(UserCreated(1, TS, ALICE, "desk\x00", "hash"))
    with pytest.raises(CodecError, match="NUL"):
        codec.encode_text(
            OrderAccepted(1, TS, BTC, PLAIN._replace(user_id=UserId("b\x00b")), OrderStatus.OPEN)
        )


def test_loads_refuses_a_non_object() -> None:
    with pytest.raises(CodecError, match="JSON object"):
        codec.loads("[1, 2]")
    with pytest.raises(CodecError, match="bad JSON"):
        codec.loads("{")


# ---------------------------------------------------------------- the fast path to text
#
# ``encode`` then ``dumps`` is the reference: what the journal has always
# stored, and what its hash chain covers. ``encode_text`` must give the same
# text for every event, and refuse what the reference refuses.

SPOT = Instrument.create("SOL_AIT", "SOL", "AIT", "0.0001", "1", taker_fee_bps=7)
TRICKY_TEXTS = [
    "",
    'a "quote"',
    "back\\slash",
    "\\u0000 spelled out",
    "tab\tnew\nline\r\x1f\x7f",
    "\u2603 \u00e9 \U0001f600 \u2028",
    "desk\x00",
]
TEXTS = st.text() | st.sampled_from(TRICKY_TEXTS)


def _strategy_of(values: list[Any]) -> st.SearchStrategy[Any]:
    """Values of the kinds that ``values`` (a field in the hand-written samples) hold.

    Taken from the samples, not from the codec's own table of kinds, so that
    a wrong entry in that table shows here (the compiled constructors refuse
    a value of the wrong type).
    """
    strategies: list[st.SearchStrategy[Any]] = []
    for kind in dict.fromkeys(type(value) for value in values):
        if kind is int:
            strategies.append(st.integers() | st.integers(-(2**70), 2**70))
        elif kind is str:
            strategies.append(TEXTS)
        elif kind is bool:
            strategies.append(st.booleans())
        elif kind is type(None):
            strategies.append(st.none())
        elif issubclass(kind, Enum):
            strategies.append(st.sampled_from(kind))
        elif kind is OrderSpec:
            strategies.append(SPECS)
        elif kind is Instrument:
            strategies.append(st.sampled_from([MARGIN, SPOT]))
        elif kind is tuple:  # ledger entries
            entry = st.tuples(TEXTS, TEXTS, st.integers() | st.integers(-(2**70), 2**70))
            strategies.append(st.lists(entry, max_size=5).map(tuple))
        else:
            raise AssertionError(f"no strategy for {kind}")
    return st.one_of(strategies)


_SAMPLE_SPECS = [STOP_GTD, PLAIN]
SPECS = st.builds(
    OrderSpec,
    *(_strategy_of([getattr(s, name) for s in _SAMPLE_SPECS]) for name in OrderSpec._fields),
)


def _events_of(cls: type[AnyEvent]) -> st.SearchStrategy[AnyEvent]:
    samples = [event for event in SAMPLES if type(event) is cls]
    return st.builds(
        cls, *(_strategy_of([getattr(e, name) for e in samples]) for name in cls.FIELDS)
    )


def _reference_text(event: AnyEvent) -> tuple[str, str]:
    name, fields = codec.encode(event)
    return name, codec.dumps(fields)


def _assert_same_as_reference(encode_text: Callable[[Any], Any], event: Any) -> None:
    try:
        expected = _reference_text(event)
    except CodecError as exc:
        with pytest.raises(CodecError, match=re.escape(str(exc))):
            encode_text(event)
    else:
        assert encode_text(event) == expected


def _untyped_writer(cls: type[EventBase]) -> Callable[[Any], tuple[str, str]]:
    """The writer that ``encode_text`` uses with the pure-Python core, which checks no types."""
    writer: Callable[[Any], tuple[str, str]] = writers._make_writer(
        cls, cls.FIELDS, EVENT_KINDS[cls], typed=False
    )
    return writer


EVENT_CLASSES = sorted(_event_classes(), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", EVENT_CLASSES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_encode_text_gives_the_reference_text_for_generated_events(
    cls: type[AnyEvent], data: st.DataObject
) -> None:
    event = data.draw(_events_of(cls))
    _assert_same_as_reference(codec.encode_text, event)
    try:
        expected = _reference_text(event)
    except CodecError:
        return  # a NUL: refused above, by the reference path
    if "\\u0000" not in expected[1]:
        # The writers themselves, not the reference path behind them.
        assert writers._WRITERS[cls](event) == expected
        assert _untyped_writer(cls)(event) == expected


def test_the_samples_take_the_fast_path() -> None:
    for event in SAMPLES:
        assert writers._WRITERS[type(event)](event) == _reference_text(event)


@pytest.mark.parametrize(
    "spec",
    [
        _ill_typed(PLAIN, price=True),  # a bool where an int belongs: the reference says true
        _ill_typed(PLAIN, quantity=Side.BUY),  # an enum where an int belongs: its value
        _ill_typed(PLAIN, side="buy"),  # a plain str where an enum belongs
        _ill_typed(PLAIN, side="up"),  # not even a Side
        _ill_typed(PLAIN, post_only=1),  # an int where a bool belongs
        PLAIN._replace(client_order_id=ClientOrderId("\\u0000")),  # no NUL, only its spelling
    ],
    ids=repr,
)
def test_odd_values_in_a_spec_are_stored_as_the_reference_stores_them(spec: Any) -> None:
    # The spec's writer does not expect them and hands the event to the reference path.
    event = OrderAccepted(1, TS, BTC, spec, OrderStatus.OPEN)
    assert codec.encode_text(event) == _reference_text(event)


@pytest.mark.parametrize("value", [1.5, float("nan"), None, "7", True, Decimal(1)], ids=repr)
def test_the_untyped_writers_check_every_int_field(value: object) -> None:
    # What the pure-Python core could hand over: an event whose constructor checked nothing.
    level = SimpleNamespace(seq=1, ts=TS, symbol=BTC, side=Side.BUY, price=value, quantity=1)
    with pytest.raises(TypeError):
        _untyped_writer(BookLevel)(level)


def test_the_writers_trust_int_fields_only_when_the_constructors_check_them() -> None:
    compiled = events.__file__.endswith(".so")
    assert writers._TYPED is compiled


def _jsonb_style(text: str) -> str:
    """The text as PostgreSQL's jsonb gives it back: spaces after separators, keys reordered."""
    fields = json.loads(text)
    return json.dumps(dict(sorted(fields.items(), key=lambda kv: (len(kv[0]), kv[0]))))


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: f"{type(e).__name__}-{e.seq}")
def test_decode_text_gives_what_the_reference_path_gives(event: AnyEvent) -> None:
    name, text = codec.encode_text(event)
    for variant in (text, _jsonb_style(text)):
        decoded = codec.decode_text(name, variant)
        assert decoded == codec.decode(name, codec.loads(variant)) == event
        _same_types(event, decoded)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("BookLevel", '{"seq":1,"ts":2,"symbol":"X_Y","side":"buy","price":1.5,"quantity":1}'),
        ("BookLevel", '{"seq":1,"ts":2,"symbol":"X_Y","side":"up","price":1,"quantity":1}'),
        ("BookLevel", '{"seq":1,"ts":2,"symbol":"X_Y","side":"buy","price":1}'),
        ("BookLevel", '{"seq":1,"ts":2,"symbol":"X_Y","side":"buy","price":1,"quantity":1,"x":0}'),
        ("OrderAmended", (
            '{"seq":1,"ts":2,"symbol":"X_Y","order_id":1,"user_id":"u","price":1,'
            '"quantity":1,"remaining":1,"priority_kept":1}'
        )),
        ("Posted", '{"seq":1,"ts":2,"posting_id":"p","kind":"trade","entries":[["a","B",1.0]]}'),
        ("Nope", "{}"),
        ("BookLevel", "[1, 2]"),
        ("BookLevel", "{not json"),
    ],
)  # fmt: skip
def test_decode_text_refuses_what_the_reference_path_refuses(name: str, text: str) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode_text(name, text)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_decode_text_round_trips_generated_events(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(sorted(codec.EVENT_TYPES.values(), key=lambda c: c.__name__)))
    samples = [e for e in SAMPLES if type(e) is cls]
    values = [data.draw(_strategy_of([getattr(s, f) for s in samples])) for f in cls.FIELDS]
    try:
        event = cls(*values)
        name, text = codec.encode_text(event)
    except (TypeError, codec.CodecError):
        return  # a value the event or the codec refuses: nothing was stored
    assert codec.decode_text(name, text) == codec.decode(name, codec.loads(text))


def test_a_writers_generated_source_shows_in_tracebacks() -> None:
    """Writers are made from source with ``exec``: ``linecache`` holds that source, so a
    traceback through one shows its lines, not blanks."""
    assert linecache.getline("<codec write_BookLevel>", 1).startswith("def write_BookLevel(v, /):")
    with pytest.raises(AttributeError) as info:
        writers._WRITERS[BookLevel](object())  # no fields at all
    frames = traceback.extract_tb(info.tb)
    frame = next(f for f in frames if f.filename == "<codec write_BookLevel>")
    assert frame.line is not None
    assert "v." in frame.line  # the generated line that read a field
