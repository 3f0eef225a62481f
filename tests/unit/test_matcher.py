"""The matcher: one test per matching rule, reject, cancel and refusal reason, and replay."""

from collections.abc import Sequence
from typing import Any, TypeVar

import pytest

from trading_engine.core.enums import (
    CancelReason,
    Liquidity,
    OrderStatus,
    OrderType,
    RefusalReason,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from trading_engine.core.events import (
    BookLevel,
    Event,
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
from trading_engine.core.ids import ClientOrderId, OrderId, TradeId, UserId
from trading_engine.core.instruments import Instrument, fee_for
from trading_engine.core.matcher import Matcher, Refusal
from trading_engine.core.orders import OrderSpec
from trading_engine.errors import InvariantViolation

BTC = Instrument.create(
    "BTC_AIT",
    "BTC",
    "AIT",
    "0.01",
    "0.0001",
    maker_fee_bps=-2,
    taker_fee_bps=10,
    price_band_pct="5",
)
SYM = BTC.symbol
T = 1_000
ALICE, BOB, CAROL, DAVE = UserId("alice"), UserId("bob"), UserId("carol"), UserId("dave")
BUY, SELL = Side.BUY, Side.SELL
OPEN, PARTIAL, FILLED = OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED
STP = CancelReason.SELF_TRADE_PREVENTION

E = TypeVar("E", bound=EventBase)


# ---------------------------------------------------------------------------- helpers


def limit(
    order_id: int, user: UserId, side: Side, quantity: int, price: int, **options: Any
) -> OrderSpec:
    return OrderSpec.create(
        OrderId(order_id), user, side, OrderType.LIMIT, quantity, price=price, **options
    )


def market(order_id: int, user: UserId, side: Side, quantity: int, **options: Any) -> OrderSpec:
    return OrderSpec.create(OrderId(order_id), user, side, OrderType.MARKET, quantity, **options)


def stop(
    order_id: int, user: UserId, side: Side, quantity: int, stop_price: int, **options: Any
) -> OrderSpec:
    return OrderSpec.create(
        OrderId(order_id), user, side, OrderType.STOP, quantity, stop_price=stop_price, **options
    )


def stop_limit(
    order_id: int,
    user: UserId,
    side: Side,
    quantity: int,
    stop_price: int,
    price: int,
    **options: Any,
) -> OrderSpec:
    return OrderSpec.create(
        OrderId(order_id),
        user,
        side,
        OrderType.STOP_LIMIT,
        quantity,
        price=price,
        stop_price=stop_price,
        **options,
    )


def place(m: Matcher, *specs: OrderSpec, ts: int = T) -> list[Event]:
    """Submit orders that must be accepted; returns their events."""
    events: list[Event] = []
    for spec in specs:
        out = m.submit(spec, ts)
        assert isinstance(out[0], OrderAccepted), out
        events += out
    return events


def print_trade(m: Matcher, price: int, first_id: int) -> None:
    """Make Bob and Carol trade one lot at ``price``: sets the last trade price."""
    place(m, limit(first_id, BOB, SELL, 1, price), limit(first_id + 1, CAROL, BUY, 1, price))
    assert m.last_trade_price == price


def ok(result: list[Event] | Refusal) -> list[Event]:
    assert isinstance(result, list), result
    return result


def of_type(events: Sequence[EventBase], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def names(events: Sequence[EventBase]) -> list[str]:
    return [type(e).__name__ for e in events]


def l3(m: Matcher) -> list[tuple[int, Side, int, int]]:
    """Every resting order as (id, side, price, remaining), bids then asks, best first."""
    return [(o.order_id, o.side, o.price, o.remaining) for o in m.book.orders()]


def fill(
    seq: int,
    order_id: int,
    user: UserId,
    trade_id: int,
    price: int,
    quantity: int,
    liquidity: Liquidity,
    fee: int,
    filled: int,
    remaining: int,
    status: OrderStatus,
) -> OrderFilled:
    return OrderFilled(
        seq, T, SYM, OrderId(order_id), user, TradeId(trade_id), price, quantity, liquidity, fee,
        filled, remaining, status,
    )  # fmt: skip


def replay(events: Sequence[Event]) -> Matcher:
    rebuilt = Matcher(BTC)
    for event in events:
        rebuilt.apply(event)
    return rebuilt


@pytest.fixture
def m() -> Matcher:
    return Matcher(BTC)


# ---------------------------------------------------------------------------- limit orders


def test_limit_order_on_an_empty_book_rests_and_publishes_its_level(m: Matcher) -> None:
    spec = limit(1, ALICE, BUY, 5, 10_000)
    assert m.submit(spec, T) == [
        OrderAccepted(1, T, SYM, spec, OPEN),
        BookLevel(2, T, SYM, BUY, 10_000, 5),
    ]
    assert m.depth() == ([(10_000, 5)], [])
    assert m.orders[OrderId(1)].resting


def test_trade_happens_at_the_makers_price(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 2, 10_000))
    taker = limit(2, ALICE, BUY, 2, 10_100)
    assert m.submit(taker, T) == [
        OrderAccepted(3, T, SYM, taker, OPEN),
        Trade(
            4, T, SYM, TradeId(1), 10_000, 2, BUY, OrderId(1), OrderId(2), BOB, ALICE, -400, 2000
        ),
        fill(5, 1, BOB, 1, 10_000, 2, Liquidity.MAKER, -400, 2, 0, FILLED),
        fill(6, 2, ALICE, 1, 10_000, 2, Liquidity.TAKER, 2000, 2, 0, FILLED),
        BookLevel(7, T, SYM, SELL, 10_000, 0),
    ]
    assert m.orders == {}
    assert m.depth() == ([], [])
    assert (m.last_trade_id, m.last_trade_price) == (1, 10_000)


def test_sell_taker_trades_at_the_resting_bids_price(m: Matcher) -> None:
    place(m, limit(1, BOB, BUY, 1, 10_000))
    trade = of_type(m.submit(limit(2, ALICE, SELL, 1, 9_900), T), Trade)
    assert [(t.price, t.aggressor, t.maker_order_id) for t in trade] == [(10_000, SELL, 1)]


def test_better_price_fills_first_then_the_older_order_at_a_price(m: Matcher) -> None:
    place(
        m,
        limit(1, BOB, SELL, 1, 10_010),
        limit(2, CAROL, SELL, 1, 10_000),
        limit(3, BOB, SELL, 1, 10_000),
    )
    trades = of_type(m.submit(limit(4, ALICE, BUY, 3, 10_010), T), Trade)
    assert [(t.maker_order_id, t.price) for t in trades] == [(2, 10_000), (3, 10_000), (1, 10_010)]


def test_limit_order_that_does_not_cross_does_not_trade(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 1, 10_010))
    events = m.submit(limit(2, ALICE, BUY, 1, 10_000), T)
    assert names(events) == ["OrderAccepted", "BookLevel"]
    assert m.depth() == ([(10_000, 1)], [(10_010, 1)])


def test_partially_filled_limit_order_rests_its_remainder(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 2, 10_000))
    events = m.submit(limit(2, ALICE, BUY, 5, 10_000), T)
    assert events[-3:] == [
        fill(6, 2, ALICE, 1, 10_000, 2, Liquidity.TAKER, 2000, 2, 3, PARTIAL),
        BookLevel(7, T, SYM, SELL, 10_000, 0),
        BookLevel(8, T, SYM, BUY, 10_000, 3),
    ]
    order = m.orders[OrderId(2)]
    assert (order.status, order.filled, order.remaining, order.resting) == (PARTIAL, 2, 3, True)
    assert l3(m) == [(2, BUY, 10_000, 3)]


def test_ioc_remainder_is_cancelled(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 2, 10_000))
    events = m.submit(limit(2, ALICE, BUY, 5, 10_000, time_in_force=TimeInForce.IOC), T)
    assert names(events) == [
        "OrderAccepted", "Trade", "OrderFilled", "OrderFilled", "OrderCancelled", "BookLevel",
    ]  # fmt: skip
    assert events[4] == OrderCancelled(
        7, T, SYM, OrderId(2), ALICE, 3, 2, CancelReason.UNFILLED_IOC
    )
    assert m.depth() == ([], [])
    assert OrderId(2) not in m.orders


def test_ioc_that_cannot_trade_is_cancelled_in_full(m: Matcher) -> None:
    spec = limit(1, ALICE, BUY, 5, 10_000, time_in_force=TimeInForce.IOC)
    assert m.submit(spec, T) == [
        OrderAccepted(1, T, SYM, spec, OPEN),
        OrderCancelled(2, T, SYM, OrderId(1), ALICE, 5, 0, CancelReason.UNFILLED_IOC),
    ]
    assert m.depth() == ([], [])


def test_fok_that_can_fill_trades_completely(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 2, 10_000), limit(2, CAROL, SELL, 3, 10_010))
    events = m.submit(limit(3, ALICE, BUY, 5, 10_010, time_in_force=TimeInForce.FOK), T)
    taker_fills = [e for e in of_type(events, OrderFilled) if e.order_id == 3]
    assert [(f.price, f.quantity, f.status) for f in taker_fills] == [
        (10_000, 2, PARTIAL),
        (10_010, 3, FILLED),
    ]
    assert m.depth() == ([], [])


@pytest.mark.parametrize(
    ("quantity", "price"),
    [
        pytest.param(6, 10_010, id="more-than-the-book"),
        pytest.param(5, 10_000, id="more-than-within-its-price"),
    ],
)
def test_fok_that_cannot_fill_is_rejected_and_leaves_book_untouched(
    m: Matcher, quantity: int, price: int
) -> None:
    place(m, limit(1, BOB, SELL, 2, 10_000), limit(2, CAROL, SELL, 3, 10_010))
    book_before = l3(m)
    spec = limit(3, ALICE, BUY, quantity, price, time_in_force=TimeInForce.FOK)
    assert m.submit(spec, T) == [OrderRejected(5, T, SYM, spec, RejectReason.FOK_NOT_FILLABLE)]
    assert l3(m) == book_before
    assert m.depth() == ([], [(10_000, 2), (10_010, 3)])
    assert (m.last_trade_id, m.last_trade_price) == (0, None)
    assert OrderId(3) not in m.orders


def test_fok_blocked_by_its_own_users_resting_order_is_rejected(m: Matcher) -> None:
    place(m, limit(1, ALICE, SELL, 2, 10_000), limit(2, BOB, SELL, 5, 10_010))
    spec = limit(3, ALICE, BUY, 3, 10_010, time_in_force=TimeInForce.FOK)
    assert m.submit(spec, T) == [OrderRejected(5, T, SYM, spec, RejectReason.FOK_NOT_FILLABLE)]
    assert m.depth() == ([], [(10_000, 2), (10_010, 5)])


def test_fok_with_cancel_oldest_counts_only_other_users_liquidity(m: Matcher) -> None:
    place(m, limit(1, ALICE, SELL, 2, 10_000), limit(2, BOB, SELL, 2, 10_010))
    too_big = limit(
        3, ALICE, BUY, 3, 10_010, time_in_force=TimeInForce.FOK, stp=StpMode.CANCEL_OLDEST
    )
    assert names(m.submit(too_big, T)) == ["OrderRejected"]
    fits = limit(4, ALICE, BUY, 2, 10_010, time_in_force=TimeInForce.FOK, stp=StpMode.CANCEL_OLDEST)
    events = m.submit(fits, T)
    assert [(t.maker_order_id, t.quantity) for t in of_type(events, Trade)] == [(2, 2)]
    assert m.depth() == ([], [])


def test_post_only_that_would_take_is_rejected(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 2, 10_000))
    spec = limit(2, ALICE, BUY, 1, 10_000, post_only=True)
    assert m.submit(spec, T) == [OrderRejected(3, T, SYM, spec, RejectReason.POST_ONLY_WOULD_TAKE)]
    assert l3(m) == [(1, SELL, 10_000, 2)]


def test_post_only_that_would_not_take_rests(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 2, 10_000))
    spec = limit(2, ALICE, BUY, 1, 9_990, post_only=True)
    assert m.submit(spec, T) == [
        OrderAccepted(3, T, SYM, spec, OPEN),
        BookLevel(4, T, SYM, BUY, 9_990, 1),
    ]


# ---------------------------------------------------------------------------- market orders


def test_market_order_sweeps_levels_until_filled(m: Matcher) -> None:
    place(
        m,
        limit(1, BOB, SELL, 1, 10_000),
        limit(2, BOB, SELL, 2, 10_010),
        limit(3, BOB, SELL, 5, 10_020),
    )
    events = m.submit(market(4, ALICE, BUY, 3), T)
    assert [(t.price, t.quantity) for t in of_type(events, Trade)] == [(10_000, 1), (10_010, 2)]
    assert of_type(events, OrderCancelled) == []
    assert m.depth() == ([], [(10_020, 5)])


def test_market_order_stops_at_price_band_and_cancels_remainder_with_price_band(
    m: Matcher,
) -> None:
    # No reference or last trade: the band (5%) centres on the best ask, 10000 -> at most 10500.
    place(
        m,
        limit(1, BOB, SELL, 1, 10_000),
        limit(2, BOB, SELL, 1, 10_500),
        limit(3, CAROL, SELL, 1, 10_501),
    )
    events = m.submit(market(4, ALICE, BUY, 3), T)
    assert [t.price for t in of_type(events, Trade)] == [10_000, 10_500]
    assert of_type(events, OrderCancelled) == [
        OrderCancelled(14, T, SYM, OrderId(4), ALICE, 1, 2, CancelReason.PRICE_BAND)
    ]
    assert m.depth() == ([], [(10_501, 1)])


def test_market_sell_stops_at_the_lower_edge_of_the_band(m: Matcher) -> None:
    place(
        m,
        limit(1, BOB, BUY, 1, 10_000),
        limit(2, BOB, BUY, 1, 9_500),
        limit(3, CAROL, BUY, 1, 9_499),
    )
    events = m.submit(market(4, ALICE, SELL, 3), T)
    assert [t.price for t in of_type(events, Trade)] == [10_000, 9_500]
    assert [(c.quantity, c.reason) for c in of_type(events, OrderCancelled)] == [
        (1, CancelReason.PRICE_BAND)
    ]
    assert m.depth() == ([(9_499, 1)], [])


def test_market_order_band_centres_on_the_last_trade_before_the_best_price(m: Matcher) -> None:
    print_trade(m, 9_000, first_id=1)  # band 8550..9450
    place(m, limit(3, BOB, SELL, 1, 9_450), limit(4, BOB, SELL, 1, 9_451))
    events = m.submit(market(5, ALICE, BUY, 2), T)
    assert [t.price for t in of_type(events, Trade)] == [9_450]
    assert [c.reason for c in of_type(events, OrderCancelled)] == [CancelReason.PRICE_BAND]


def test_market_order_band_centres_on_the_reference_price_when_set(m: Matcher) -> None:
    print_trade(m, 10_000, first_id=1)
    place(m, limit(3, BOB, SELL, 1, 10_000))
    m.reference_price = 9_000  # band 8550..9450: the ask at 10000 is outside
    spec = market(4, ALICE, BUY, 1)
    assert m.submit(spec, T) == [
        OrderAccepted(10, T, SYM, spec, OPEN),
        OrderCancelled(11, T, SYM, OrderId(4), ALICE, 1, 0, CancelReason.PRICE_BAND),
    ]
    assert m.depth() == ([], [(10_000, 1)])


def test_market_order_with_a_protection_price_trades_no_worse_than_it(m: Matcher) -> None:
    # The risk actor may set a market order's price: the worst price it may trade at.
    place(m, limit(1, BOB, SELL, 1, 10_000), limit(2, BOB, SELL, 1, 10_010))
    protected = OrderSpec(OrderId(3), ALICE, BUY, OrderType.MARKET, 2, 10_000, 0, TimeInForce.IOC)
    events = m.submit(protected, T)
    assert [t.price for t in of_type(events, Trade)] == [10_000]
    assert [(c.order_id, c.quantity) for c in of_type(events, OrderCancelled)] == [(3, 1)]
    assert m.depth() == ([], [(10_010, 1)])


def test_market_order_on_empty_book_is_cancelled_no_liquidity(m: Matcher) -> None:
    spec = market(1, ALICE, BUY, 5)
    assert m.submit(spec, T) == [
        OrderAccepted(1, T, SYM, spec, OPEN),
        OrderCancelled(2, T, SYM, OrderId(1), ALICE, 5, 0, CancelReason.NO_LIQUIDITY),
    ]


def test_market_order_that_empties_the_book_cancels_remainder_no_liquidity(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 1, 10_000))
    events = m.submit(market(2, ALICE, BUY, 3), T)
    assert of_type(events, OrderCancelled) == [
        OrderCancelled(7, T, SYM, OrderId(2), ALICE, 2, 1, CancelReason.NO_LIQUIDITY)
    ]


def test_market_order_without_a_band_sweeps_every_price() -> None:
    m = Matcher(Instrument.create("BTC_AIT", "BTC", "AIT", "0.01", "0.0001"))
    place(m, limit(1, BOB, SELL, 1, 10_000), limit(2, BOB, SELL, 1, 20_000))
    events = m.submit(market(3, ALICE, BUY, 2), T)
    assert [t.price for t in of_type(events, Trade)] == [10_000, 20_000]
    assert of_type(events, OrderCancelled) == []


# ---------------------------------------------------------------------------- self-trade prevention


def stp_book(m: Matcher) -> None:
    """Alice's own ask at the best price, Bob's behind it."""
    place(m, limit(1, ALICE, SELL, 2, 10_000), limit(2, BOB, SELL, 2, 10_010))


def test_stp_cancel_newest_is_the_default_and_cancels_the_taker(m: Matcher) -> None:
    stp_book(m)
    spec = limit(3, ALICE, BUY, 3, 10_010)
    assert spec.stp is StpMode.CANCEL_NEWEST
    events = m.submit(spec, T)
    assert events[:3] == [
        OrderAccepted(5, T, SYM, spec, OPEN),
        SelfTradePrevented(6, T, SYM, OrderId(3), OrderId(1), ALICE, StpMode.CANCEL_NEWEST, 2),
        OrderCancelled(7, T, SYM, OrderId(3), ALICE, 3, 0, STP),
    ]
    assert of_type(events, Trade) == []
    assert l3(m) == [(1, SELL, 10_000, 2), (2, SELL, 10_010, 2)]


def test_stp_cancel_oldest_cancels_the_maker_and_keeps_matching(m: Matcher) -> None:
    stp_book(m)
    spec = limit(3, ALICE, BUY, 3, 10_010, stp=StpMode.CANCEL_OLDEST)
    events = m.submit(spec, T)
    assert events[1:4] == [
        SelfTradePrevented(6, T, SYM, OrderId(3), OrderId(1), ALICE, StpMode.CANCEL_OLDEST, 2),
        OrderCancelled(7, T, SYM, OrderId(1), ALICE, 2, 0, STP),
        Trade(
            8, T, SYM, TradeId(1), 10_010, 2, BUY, OrderId(2), OrderId(3), BOB, ALICE, -400, 2002
        ),
    ]
    assert l3(m) == [(3, BUY, 10_010, 1)]


def test_stp_cancel_both_cancels_the_maker_and_the_taker(m: Matcher) -> None:
    stp_book(m)
    spec = limit(3, ALICE, BUY, 3, 10_010, stp=StpMode.CANCEL_BOTH)
    assert m.submit(spec, T) == [
        OrderAccepted(5, T, SYM, spec, OPEN),
        SelfTradePrevented(6, T, SYM, OrderId(3), OrderId(1), ALICE, StpMode.CANCEL_BOTH, 2),
        OrderCancelled(7, T, SYM, OrderId(1), ALICE, 2, 0, STP),
        OrderCancelled(8, T, SYM, OrderId(3), ALICE, 3, 0, STP),
        BookLevel(9, T, SYM, SELL, 10_000, 0),
    ]
    assert l3(m) == [(2, SELL, 10_010, 2)]


def test_stp_decrement_with_the_smaller_maker_cancels_it_and_reduces_the_taker(
    m: Matcher,
) -> None:
    stp_book(m)
    spec = limit(3, ALICE, BUY, 3, 10_010, stp=StpMode.DECREMENT)
    assert m.submit(spec, T) == [
        OrderAccepted(5, T, SYM, spec, OPEN),
        SelfTradePrevented(6, T, SYM, OrderId(3), OrderId(1), ALICE, StpMode.DECREMENT, 2),
        OrderCancelled(7, T, SYM, OrderId(1), ALICE, 2, 0, STP),
        OrderReduced(8, T, SYM, OrderId(3), ALICE, 2, 1, STP),
        Trade(
            9, T, SYM, TradeId(1), 10_010, 1, BUY, OrderId(2), OrderId(3), BOB, ALICE, -200, 1001
        ),
        fill(10, 2, BOB, 1, 10_010, 1, Liquidity.MAKER, -200, 1, 1, PARTIAL),
        fill(11, 3, ALICE, 1, 10_010, 1, Liquidity.TAKER, 1001, 1, 0, FILLED),
        BookLevel(12, T, SYM, SELL, 10_000, 0),
        BookLevel(13, T, SYM, SELL, 10_010, 1),
    ]
    assert l3(m) == [(2, SELL, 10_010, 1)]


def test_stp_decrement_with_the_smaller_taker_reduces_the_maker_and_cancels_the_taker(
    m: Matcher,
) -> None:
    place(m, limit(1, ALICE, SELL, 5, 10_000), limit(2, BOB, SELL, 1, 10_000))
    spec = limit(3, ALICE, BUY, 2, 10_000, stp=StpMode.DECREMENT)
    assert m.submit(spec, T) == [
        OrderAccepted(5, T, SYM, spec, OPEN),
        SelfTradePrevented(6, T, SYM, OrderId(3), OrderId(1), ALICE, StpMode.DECREMENT, 2),
        OrderReduced(7, T, SYM, OrderId(1), ALICE, 2, 3, STP),
        OrderCancelled(8, T, SYM, OrderId(3), ALICE, 2, 0, STP),
        BookLevel(9, T, SYM, SELL, 10_000, 4),
    ]
    maker = m.orders[OrderId(1)]
    assert (maker.status, maker.remaining, maker.cancelled, maker.quantity) == (OPEN, 3, 2, 5)
    assert l3(m) == [(1, SELL, 10_000, 3), (2, SELL, 10_000, 1)]  # still first in the queue


def test_stp_decrement_of_equal_quantities_cancels_both(m: Matcher) -> None:
    place(m, limit(1, ALICE, SELL, 2, 10_000))
    events = m.submit(limit(2, ALICE, BUY, 2, 10_000, stp=StpMode.DECREMENT), T)
    assert [(c.order_id, c.quantity) for c in of_type(events, OrderCancelled)] == [(1, 2), (2, 2)]
    assert of_type(events, OrderReduced) == []
    assert m.depth() == ([], [])


def test_stp_none_lets_a_user_trade_with_themselves(m: Matcher) -> None:
    place(m, limit(1, ALICE, SELL, 2, 10_000))
    events = m.submit(limit(2, ALICE, BUY, 2, 10_000, stp=StpMode.NONE), T)
    assert [(t.maker_user_id, t.taker_user_id, t.quantity) for t in of_type(events, Trade)] == [
        (ALICE, ALICE, 2)
    ]
    assert of_type(events, SelfTradePrevented) == []


# ---------------------------------------------------------------------------- amend


def test_amend_reducing_quantity_keeps_queue_priority(m: Matcher) -> None:
    place(m, limit(1, ALICE, SELL, 5, 10_000), limit(2, BOB, SELL, 5, 10_000))
    assert ok(m.amend(OrderId(1), T, quantity=3)) == [
        OrderAmended(5, T, SYM, OrderId(1), ALICE, 10_000, 3, 3, True),
        BookLevel(6, T, SYM, SELL, 10_000, 8),
    ]
    assert l3(m) == [(1, SELL, 10_000, 3), (2, SELL, 10_000, 5)]
    trades = of_type(m.submit(limit(3, CAROL, BUY, 1, 10_000), T), Trade)
    assert [t.maker_order_id for t in trades] == [1]


def test_amend_increasing_quantity_loses_priority(m: Matcher) -> None:
    place(m, limit(1, ALICE, SELL, 5, 10_000), limit(2, BOB, SELL, 5, 10_000))
    assert ok(m.amend(OrderId(1), T, quantity=7)) == [
        OrderAmended(5, T, SYM, OrderId(1), ALICE, 10_000, 7, 7, False),
        BookLevel(6, T, SYM, SELL, 10_000, 12),
    ]
    assert l3(m) == [(2, SELL, 10_000, 5), (1, SELL, 10_000, 7)]


def test_amend_price_change_loses_priority(m: Matcher) -> None:
    place(
        m,
        limit(1, ALICE, SELL, 5, 10_000),
        limit(2, BOB, SELL, 5, 10_010),
        limit(3, BOB, SELL, 1, 10_000),
    )
    assert ok(m.amend(OrderId(1), T, price=10_010)) == [
        OrderAmended(7, T, SYM, OrderId(1), ALICE, 10_010, 5, 5, False),
        BookLevel(8, T, SYM, SELL, 10_000, 1),
        BookLevel(9, T, SYM, SELL, 10_010, 10),
    ]
    assert l3(m) == [(3, SELL, 10_000, 1), (2, SELL, 10_010, 5), (1, SELL, 10_010, 5)]


def test_amend_to_a_crossing_price_trades_at_once(m: Matcher) -> None:
    place(m, limit(1, ALICE, BUY, 2, 9_990), limit(2, BOB, SELL, 1, 10_000))
    assert ok(m.amend(OrderId(1), T, price=10_000)) == [
        OrderAmended(5, T, SYM, OrderId(1), ALICE, 10_000, 2, 2, False),
        Trade(
            6, T, SYM, TradeId(1), 10_000, 1, BUY, OrderId(2), OrderId(1), BOB, ALICE, -200, 1000
        ),
        fill(7, 2, BOB, 1, 10_000, 1, Liquidity.MAKER, -200, 1, 0, FILLED),
        fill(8, 1, ALICE, 1, 10_000, 1, Liquidity.TAKER, 1000, 1, 1, PARTIAL),
        BookLevel(9, T, SYM, BUY, 9_990, 0),
        BookLevel(10, T, SYM, SELL, 10_000, 0),
        BookLevel(11, T, SYM, BUY, 10_000, 1),
    ]
    assert l3(m) == [(1, BUY, 10_000, 1)]


def partly_filled_ask(m: Matcher) -> None:
    """Alice's ask of 5 with 2 filled by Bob: filled 2, remaining 3."""
    place(m, limit(1, ALICE, SELL, 5, 10_000), limit(2, BOB, BUY, 2, 10_000))
    assert m.orders[OrderId(1)].filled == 2


def test_amend_quantity_is_the_new_total_including_the_filled_part(m: Matcher) -> None:
    partly_filled_ask(m)
    assert ok(m.amend(OrderId(1), T, quantity=4)) == [
        OrderAmended(8, T, SYM, OrderId(1), ALICE, 10_000, 4, 2, True),
        BookLevel(9, T, SYM, SELL, 10_000, 2),
    ]
    order = m.orders[OrderId(1)]
    assert (order.status, order.quantity, order.filled, order.remaining) == (PARTIAL, 4, 2, 2)


@pytest.mark.parametrize(
    ("order_id", "changes", "reason"),
    [
        pytest.param(99, {"quantity": 4}, RefusalReason.UNKNOWN_ORDER, id="unknown-order"),
        pytest.param(1, {"quantity": 4, "user_id": BOB}, RefusalReason.NOT_OWNER, id="not-owner"),
        pytest.param(1, {"quantity": 2}, RefusalReason.INVALID_AMEND, id="quantity-equals-filled"),
        pytest.param(1, {"quantity": 1}, RefusalReason.INVALID_AMEND, id="quantity-below-filled"),
        pytest.param(1, {"quantity": 5}, RefusalReason.INVALID_AMEND, id="same-quantity"),
        pytest.param(1, {"price": 10_000}, RefusalReason.INVALID_AMEND, id="same-price"),
        pytest.param(1, {}, RefusalReason.INVALID_AMEND, id="no-change"),
        pytest.param(1, {"price": 0}, RefusalReason.INVALID_AMEND, id="zero-price"),
    ],
)
def test_amend_refusal_changes_nothing(
    m: Matcher, order_id: int, changes: dict[str, Any], reason: RefusalReason
) -> None:
    partly_filled_ask(m)
    state, seq = m.state_hash(), m.seq
    assert m.amend(OrderId(order_id), T, **changes) == Refusal(OrderId(order_id), reason)
    assert (m.state_hash(), m.seq) == (state, seq)


def test_amend_of_a_post_only_order_that_would_take_is_refused(m: Matcher) -> None:
    place(m, limit(1, ALICE, BUY, 1, 9_990, post_only=True), limit(2, BOB, SELL, 1, 10_000))
    state = m.state_hash()
    assert m.amend(OrderId(1), T, price=10_000) == Refusal(
        OrderId(1), RefusalReason.POST_ONLY_WOULD_TAKE
    )
    assert m.state_hash() == state


def test_amend_of_a_stop_market_order_price_is_refused(m: Matcher) -> None:
    place(m, stop(1, ALICE, BUY, 1, 10_100))
    assert m.amend(OrderId(1), T, price=10_200) == Refusal(OrderId(1), RefusalReason.INVALID_AMEND)


def test_amend_of_a_pending_stop_limit_keeps_it_pending(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 1, 10_000), stop_limit(2, ALICE, BUY, 2, 10_100, 9_000))
    assert ok(m.amend(OrderId(2), T, price=10_000, quantity=3)) == [
        OrderAmended(4, T, SYM, OrderId(2), ALICE, 10_000, 3, 3, True),
    ]
    order = m.orders[OrderId(2)]
    assert (order.status, order.price, order.resting) == (
        OrderStatus.PENDING_TRIGGER,
        10_000,
        False,
    )
    assert l3(m) == [(1, SELL, 10_000, 1)]


@pytest.mark.parametrize("quantity", [3, 4])
def test_amend_below_the_quantity_already_removed_by_stp_is_refused(
    m: Matcher, quantity: int
) -> None:
    # What STP took off is gone too: a new total at or below filled + cancelled leaves nothing.
    place(m, limit(1, ALICE, SELL, 10, 10_000))
    place(m, limit(2, ALICE, BUY, 4, 10_000, stp=StpMode.DECREMENT))
    maker = m.orders[OrderId(1)]
    assert (maker.remaining, maker.cancelled) == (6, 4)
    assert m.amend(OrderId(1), T, quantity=quantity) == Refusal(
        OrderId(1), RefusalReason.INVALID_AMEND
    )
    m.book.check()


# ---------------------------------------------------------------------------- cancel


def test_cancel_removes_a_resting_order_and_publishes_its_level(m: Matcher) -> None:
    place(m, limit(1, ALICE, BUY, 5, 10_000))
    assert ok(m.cancel(OrderId(1), T, user_id=ALICE)) == [
        OrderCancelled(3, T, SYM, OrderId(1), ALICE, 5, 0, CancelReason.USER),
        BookLevel(4, T, SYM, BUY, 10_000, 0),
    ]
    assert m.orders == {}
    assert m.depth() == ([], [])


def test_cancel_of_a_partly_filled_order_reports_the_open_and_filled_quantities(
    m: Matcher,
) -> None:
    partly_filled_ask(m)
    events = ok(m.cancel(OrderId(1), T, reason=CancelReason.ADMIN))
    assert events[0] == OrderCancelled(8, T, SYM, OrderId(1), ALICE, 3, 2, CancelReason.ADMIN)


def test_cancel_of_an_unknown_order_is_refused(m: Matcher) -> None:
    assert m.cancel(OrderId(7), T) == Refusal(OrderId(7), RefusalReason.UNKNOWN_ORDER)
    assert m.seq == 0


def test_cancel_of_a_filled_order_is_refused_as_unknown(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 1, 10_000), limit(2, ALICE, BUY, 1, 10_000))
    assert m.cancel(OrderId(1), T) == Refusal(OrderId(1), RefusalReason.UNKNOWN_ORDER)


def test_cancel_of_another_users_order_is_refused(m: Matcher) -> None:
    place(m, limit(1, ALICE, BUY, 5, 10_000))
    seq = m.seq
    assert m.cancel(OrderId(1), T, user_id=BOB) == Refusal(OrderId(1), RefusalReason.NOT_OWNER)
    assert (m.seq, l3(m)) == (seq, [(1, BUY, 10_000, 5)])


def test_cancel_all_cancels_only_that_users_orders_oldest_first(m: Matcher) -> None:
    place(
        m,
        limit(1, ALICE, BUY, 1, 9_990),
        limit(2, BOB, SELL, 1, 10_100),
        limit(3, ALICE, SELL, 1, 10_200),
        stop(4, ALICE, BUY, 1, 10_500),
        limit(5, ALICE, BUY, 1, 9_980),
        limit(6, BOB, BUY, 1, 9_980),
    )
    events = m.cancel_all(ALICE, T)
    assert [(c.order_id, c.reason) for c in of_type(events, OrderCancelled)] == [
        (1, CancelReason.MASS_CANCEL),
        (3, CancelReason.MASS_CANCEL),
        (4, CancelReason.MASS_CANCEL),
        (5, CancelReason.MASS_CANCEL),
    ]
    assert [(b.side, b.price, b.quantity) for b in of_type(events, BookLevel)] == [
        (BUY, 9_990, 0),
        (SELL, 10_200, 0),
        (BUY, 9_980, 1),
    ]
    assert m.open_orders(ALICE) == []
    assert l3(m) == [(6, BUY, 9_980, 1), (2, SELL, 10_100, 1)]


def test_cancel_all_for_a_user_without_orders_emits_nothing(m: Matcher) -> None:
    place(m, limit(1, BOB, BUY, 1, 9_990))
    assert m.cancel_all(ALICE, T) == []
    assert m.seq == 2


# ---------------------------------------------------------------------------- stops


def stop_market_after_trade(m: Matcher, side: Side, stop_price: int) -> None:
    """Last trade at 10000, Alice's stop pending, liquidity for it on the far side."""
    print_trade(m, 10_000, first_id=1)
    place(m, stop(3, ALICE, side, 1, stop_price))
    assert m.orders[OrderId(3)].status is OrderStatus.PENDING_TRIGGER
    if side is BUY:
        place(m, limit(4, DAVE, SELL, 5, 10_300))
    else:
        place(m, limit(4, DAVE, BUY, 5, 9_700))


@pytest.mark.parametrize("trade_price", [10_100, 10_150])
def test_buy_stop_triggers_when_a_trade_prints_at_or_above_its_stop(
    m: Matcher, trade_price: int
) -> None:
    stop_market_after_trade(m, BUY, 10_100)
    place(m, limit(5, BOB, SELL, 1, trade_price))
    events = m.submit(limit(6, CAROL, BUY, 1, trade_price), T)
    triggered = of_type(events, StopTriggered)
    assert [(s.order_id, s.trigger_price) for s in triggered] == [(3, trade_price)]
    trades = of_type(events, Trade)
    assert [(t.taker_order_id, t.price) for t in trades] == [(6, trade_price), (3, 10_300)]
    assert OrderId(3) not in m.orders


def test_buy_stop_does_not_trigger_below_its_stop(m: Matcher) -> None:
    stop_market_after_trade(m, BUY, 10_100)
    place(m, limit(5, BOB, SELL, 1, 10_099))
    events = m.submit(limit(6, CAROL, BUY, 1, 10_099), T)
    assert of_type(events, StopTriggered) == []
    assert m.orders[OrderId(3)].status is OrderStatus.PENDING_TRIGGER


@pytest.mark.parametrize("trade_price", [9_900, 9_850])
def test_sell_stop_triggers_when_a_trade_prints_at_or_below_its_stop(
    m: Matcher, trade_price: int
) -> None:
    stop_market_after_trade(m, SELL, 9_900)
    place(m, limit(5, BOB, BUY, 1, trade_price))
    events = m.submit(limit(6, CAROL, SELL, 1, trade_price), T)
    triggered = of_type(events, StopTriggered)
    assert [(s.order_id, s.trigger_price) for s in triggered] == [(3, trade_price)]
    trades = of_type(events, Trade)
    assert [(t.taker_order_id, t.price) for t in trades] == [(6, trade_price), (3, 9_700)]


def test_sell_stop_does_not_trigger_above_its_stop(m: Matcher) -> None:
    stop_market_after_trade(m, SELL, 9_900)
    place(m, limit(5, BOB, BUY, 1, 9_901))
    events = m.submit(limit(6, CAROL, SELL, 1, 9_901), T)
    assert of_type(events, StopTriggered) == []
    assert m.orders[OrderId(3)].status is OrderStatus.PENDING_TRIGGER


@pytest.mark.parametrize(
    ("side", "stop_price"),
    [(BUY, 10_000), (BUY, 9_999), (SELL, 10_000), (SELL, 10_001)],
)
@pytest.mark.parametrize("kind", [OrderType.STOP, OrderType.STOP_LIMIT])
def test_stop_rejected_when_it_would_trigger_immediately(
    m: Matcher, side: Side, stop_price: int, kind: OrderType
) -> None:
    print_trade(m, 10_000, first_id=1)
    price = 10_000 if kind is OrderType.STOP_LIMIT else 0
    spec = OrderSpec.create(OrderId(3), ALICE, side, kind, 1, price=price, stop_price=stop_price)
    assert m.submit(spec, T) == [
        OrderRejected(8, T, SYM, spec, RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY)
    ]


def test_stop_before_any_trade_waits_outside_the_book(m: Matcher) -> None:
    spec = stop_limit(1, ALICE, BUY, 1, 10_100, 10_200)
    assert m.submit(spec, T) == [OrderAccepted(1, T, SYM, spec, OrderStatus.PENDING_TRIGGER)]
    assert m.depth() == ([], [])
    assert m.open_orders(ALICE) == [m.orders[OrderId(1)]]


def test_stop_limit_rests_after_trigger_when_it_cannot_fill(m: Matcher) -> None:
    print_trade(m, 10_000, first_id=1)
    place(
        m,
        stop_limit(3, ALICE, BUY, 1, 10_100, 10_150),
        limit(4, BOB, SELL, 1, 10_100),
        limit(5, BOB, SELL, 1, 10_200),
    )
    events = m.submit(limit(6, CAROL, BUY, 1, 10_100), T)
    assert events[-3:] == [
        StopTriggered(17, T, SYM, OrderId(3), ALICE, 10_100),
        BookLevel(18, T, SYM, SELL, 10_100, 0),
        BookLevel(19, T, SYM, BUY, 10_150, 1),
    ]
    order = m.orders[OrderId(3)]
    assert (order.status, order.resting) == (OPEN, True)
    assert l3(m) == [(3, BUY, 10_150, 1), (5, SELL, 10_200, 1)]


def trace(events: Sequence[Event]) -> list[tuple[str, int]]:
    """Triggers and trades in order, each with the order that triggered or took."""
    steps: list[tuple[str, int]] = []
    for e in events:
        if isinstance(e, StopTriggered):
            steps.append(("triggered", e.order_id))
        elif isinstance(e, Trade):
            steps.append(("trade", e.taker_order_id))
    return steps


def test_cascading_stops_run_in_crossing_order_then_the_stops_they_trigger(m: Matcher) -> None:
    print_trade(m, 10_000, first_id=1)
    place(
        m,
        limit(3, BOB, SELL, 1, 10_010),
        limit(4, BOB, SELL, 1, 10_020),
        limit(5, BOB, SELL, 5, 10_030),
        stop(6, ALICE, BUY, 1, 10_020),
        stop(7, ALICE, BUY, 1, 10_010),
        stop(8, ALICE, BUY, 1, 10_030),  # only stop 7's trade at 10030 reaches it
    )
    events = m.submit(limit(9, CAROL, BUY, 2, 10_020), T)
    assert trace(events) == [
        ("trade", 9),
        ("trade", 9),
        ("triggered", 7),
        ("trade", 7),
        ("triggered", 6),
        ("trade", 6),
        ("triggered", 8),
        ("trade", 8),
    ]
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + len(events)))
    assert m.depth() == ([], [(10_030, 2)])


def test_a_buy_takers_triggered_sell_stops_run_before_its_buy_stops(m: Matcher) -> None:
    print_trade(m, 10_000, first_id=1)
    place(
        m,
        stop(3, ALICE, SELL, 1, 9_990),
        stop(4, ALICE, BUY, 1, 10_010),
        limit(5, DAVE, BUY, 1, 9_950),
        limit(6, BOB, SELL, 1, 9_990),
        limit(7, BOB, SELL, 1, 10_010),
        limit(8, BOB, SELL, 1, 10_050),
    )
    events = m.submit(limit(9, CAROL, BUY, 2, 10_010), T)
    assert trace(events) == [
        ("trade", 9),
        ("trade", 9),
        ("triggered", 3),
        ("trade", 3),
        ("triggered", 4),
        ("trade", 4),
    ]


def test_a_sell_takers_triggered_buy_stops_run_before_its_sell_stops(m: Matcher) -> None:
    print_trade(m, 10_000, first_id=1)
    place(
        m,
        stop(3, ALICE, SELL, 1, 9_990),
        stop(4, ALICE, BUY, 1, 10_010),
        limit(5, DAVE, BUY, 1, 10_010),
        limit(6, DAVE, BUY, 1, 9_990),
        limit(7, DAVE, BUY, 1, 9_950),
        limit(8, BOB, SELL, 1, 10_060),
    )
    events = m.submit(limit(9, CAROL, SELL, 2, 9_990), T)
    assert trace(events) == [
        ("trade", 9),
        ("trade", 9),
        ("triggered", 4),
        ("trade", 4),
        ("triggered", 3),
        ("trade", 3),
    ]


def test_cancel_of_a_pending_stop_means_it_never_triggers(m: Matcher) -> None:
    place(m, stop(1, ALICE, BUY, 1, 10_100))
    assert ok(m.cancel(OrderId(1), T)) == [
        OrderCancelled(2, T, SYM, OrderId(1), ALICE, 1, 0, CancelReason.USER)
    ]
    place(m, limit(2, DAVE, SELL, 5, 10_200), limit(3, BOB, SELL, 1, 10_100))
    events = m.submit(limit(4, CAROL, BUY, 1, 10_100), T)
    assert of_type(events, StopTriggered) == []
    assert m.depth() == ([], [(10_200, 5)])


def test_a_stale_stop_entry_never_triggers_an_order_that_reuses_its_id(m: Matcher) -> None:
    place(m, stop(1, ALICE, BUY, 1, 10_100))
    ok(m.cancel(OrderId(1), T))
    place(m, stop(1, ALICE, BUY, 1, 10_300))  # the same id, a higher stop
    place(m, limit(2, DAVE, SELL, 5, 10_200), limit(3, BOB, SELL, 1, 10_100))
    events = m.submit(limit(4, CAROL, BUY, 1, 10_100), T)  # prints at 10_100 only
    assert of_type(events, StopTriggered) == []
    assert m.orders[OrderId(1)].status is OrderStatus.PENDING_TRIGGER


def test_triggered_post_only_stop_limit_never_takes_liquidity(m: Matcher) -> None:
    # Built without create (which refuses post-only stops): the matcher must not let it take.
    print_trade(m, 10_000, first_id=1)
    post_only_stop = OrderSpec(
        OrderId(3), ALICE, BUY, OrderType.STOP_LIMIT, 1, 10_200, 10_100, post_only=True
    )
    m.submit(post_only_stop, T)
    place(m, limit(4, BOB, SELL, 1, 10_100), limit(5, BOB, SELL, 1, 10_150))
    events = m.submit(limit(6, CAROL, BUY, 1, 10_100), T)
    assert [t for t in of_type(events, Trade) if t.taker_order_id == 3] == []
    assert [f for f in of_type(events, OrderFilled) if f.order_id == 3] == []


# ---------------------------------------------------------------------------- GTD expiry


def gtd(
    order_id: int, user: UserId, side: Side, quantity: int, price: int, expire: int
) -> OrderSpec:
    return limit(
        order_id, user, side, quantity, price, time_in_force=TimeInForce.GTD, expire_time=expire
    )


def test_gtd_order_expires_when_expire_runs_at_its_expiry_time(m: Matcher) -> None:
    place(m, gtd(1, ALICE, BUY, 5, 10_000, expire=T + 100))
    assert m.expire(T + 99) == []
    assert m.expire(T + 100) == [
        OrderExpired(3, T + 100, SYM, OrderId(1), ALICE, 5, 0),
        BookLevel(4, T + 100, SYM, BUY, 10_000, 0),
    ]
    assert m.orders == {}
    assert m.expire(T + 200) == []


def test_partly_filled_gtd_order_expires_its_remainder(m: Matcher) -> None:
    place(m, gtd(1, ALICE, SELL, 5, 10_000, expire=T + 100), limit(2, BOB, BUY, 2, 10_000))
    assert m.expire(T + 150)[0] == OrderExpired(8, T + 150, SYM, OrderId(1), ALICE, 3, 2)


def test_pending_gtd_stop_expires(m: Matcher) -> None:
    spec = stop_limit(
        1, ALICE, BUY, 1, 10_100, 10_200, time_in_force=TimeInForce.GTD, expire_time=T + 10
    )
    place(m, spec)
    assert m.expire(T + 10) == [OrderExpired(2, T + 10, SYM, OrderId(1), ALICE, 1, 0)]


def test_cancelled_gtd_order_is_not_expired_again(m: Matcher) -> None:
    place(m, gtd(1, ALICE, BUY, 5, 10_000, expire=T + 100))
    ok(m.cancel(OrderId(1), T))
    assert m.expire(T + 100) == []


@pytest.mark.parametrize("expire", [T, T - 1])
def test_already_expired_gtd_is_rejected(m: Matcher, expire: int) -> None:
    spec = gtd(1, ALICE, BUY, 5, 10_000, expire=expire)
    assert m.submit(spec, T) == [OrderRejected(1, T, SYM, spec, RejectReason.ALREADY_EXPIRED)]
    assert m.depth() == ([], [])


# ---------------------------------------------------------------------------- invalid orders


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(OrderSpec(OrderId(1), ALICE, BUY, OrderType.LIMIT, 0, 10_000), id="quantity"),
        pytest.param(OrderSpec(OrderId(1), ALICE, BUY, OrderType.LIMIT, 1, 0), id="limit-price"),
        pytest.param(OrderSpec(OrderId(1), ALICE, BUY, OrderType.STOP, 1), id="stop-price"),
        pytest.param(
            OrderSpec(OrderId(1), ALICE, BUY, OrderType.STOP_LIMIT, 1, 0, 10_100),
            id="stop-limit-price",
        ),
        pytest.param(
            OrderSpec(
                OrderId(1), ALICE, BUY, OrderType.STOP_LIMIT, 1, 10_100, 10_100, post_only=True
            ),
            id="post-only-stop-limit",
        ),
        pytest.param(
            OrderSpec(
                OrderId(1), ALICE, BUY, OrderType.STOP, 1, 0, 10_100, time_in_force=TimeInForce.FOK
            ),
            id="fok-stop",
        ),
    ],
)
def test_order_that_bypassed_create_validation_is_rejected_invalid(
    m: Matcher, spec: OrderSpec
) -> None:
    assert m.submit(spec, T) == [OrderRejected(1, T, SYM, spec, RejectReason.INVALID_ORDER)]
    assert m.orders == {}


# ---------------------------------------------------------------------------- duplicates


def test_duplicate_order_id_is_rejected(m: Matcher) -> None:
    place(m, limit(1, ALICE, BUY, 5, 10_000))
    spec = limit(1, BOB, SELL, 1, 10_100)
    assert m.submit(spec, T) == [OrderRejected(3, T, SYM, spec, RejectReason.DUPLICATE_ORDER_ID)]
    assert l3(m) == [(1, BUY, 10_000, 5)]
    assert m.orders[OrderId(1)].user_id == ALICE


def test_a_client_order_id_is_free_again_once_its_order_ended(m: Matcher) -> None:
    place(m, limit(1, ALICE, BUY, 5, 10_000, client_order_id=ClientOrderId("mine")))
    m.cancel(OrderId(1), T)
    assert m.client_ids == {}
    place(m, limit(2, ALICE, BUY, 1, 9_000, client_order_id=ClientOrderId("mine")))
    assert m.client_ids == {(ALICE, ClientOrderId("mine")): OrderId(2)}


def test_duplicate_client_order_id_of_the_same_user_is_rejected(m: Matcher) -> None:
    place(m, limit(1, ALICE, BUY, 5, 10_000, client_order_id=ClientOrderId("mine")))
    spec = limit(2, ALICE, BUY, 1, 9_000, client_order_id=ClientOrderId("mine"))
    assert m.submit(spec, T) == [
        OrderRejected(3, T, SYM, spec, RejectReason.DUPLICATE_CLIENT_ORDER_ID)
    ]
    assert OrderId(2) not in m.orders


def test_same_client_order_id_of_another_user_is_accepted(m: Matcher) -> None:
    place(m, limit(1, ALICE, BUY, 5, 10_000, client_order_id=ClientOrderId("mine")))
    place(m, limit(2, BOB, BUY, 1, 9_000, client_order_id=ClientOrderId("mine")))
    assert m.client_ids[(BOB, ClientOrderId("mine"))] == 2


# ---------------------------------------------------------------------------- fees


def test_trade_charges_the_taker_fee_and_pays_the_maker_rebate(m: Matcher) -> None:
    # 3 lots at 10000 ticks = 3_000_000 AIT minor units: taker 10 bps, maker -2 bps.
    place(m, limit(1, BOB, SELL, 3, 10_000))
    events = m.submit(limit(2, ALICE, BUY, 3, 10_000), T)
    [trade] = of_type(events, Trade)
    assert (trade.maker_fee, trade.taker_fee) == (-600, 3000)
    assert [(f.order_id, f.liquidity, f.fee) for f in of_type(events, OrderFilled)] == [
        (1, Liquidity.MAKER, -600),
        (2, Liquidity.TAKER, 3000),
    ]
    notional = BTC.notional(10_000, 3)
    assert (trade.maker_fee, trade.taker_fee) == (fee_for(notional, -2), fee_for(notional, 10))


def test_fees_round_in_the_exchanges_favour(m: Matcher) -> None:
    # 1 lot at 10001 ticks = 1_000_100 minor units: the fee is 1000.1, the rebate 200.02.
    place(m, limit(1, BOB, SELL, 1, 10_001))
    [trade] = of_type(m.submit(limit(2, ALICE, BUY, 1, 10_001), T), Trade)
    assert trade.taker_fee == 1001
    assert trade.maker_fee == -200


def test_positive_maker_fee_rounds_up() -> None:
    m = Matcher(
        Instrument.create(
            "BTC_AIT", "BTC", "AIT", "0.01", "0.0001", maker_fee_bps=3, taker_fee_bps=5
        )
    )
    place(m, limit(1, BOB, SELL, 1, 10_001))
    [trade] = of_type(m.submit(limit(2, ALICE, BUY, 1, 10_001), T), Trade)
    assert (trade.maker_fee, trade.taker_fee) == (301, 501)  # 300.03 and 500.05


# ---------------------------------------------------------------------------- market data


def test_book_levels_are_published_once_per_touched_level_at_command_end(m: Matcher) -> None:
    place(
        m,
        limit(1, BOB, SELL, 1, 10_000),
        limit(2, CAROL, SELL, 2, 10_000),
        limit(3, BOB, SELL, 3, 10_010),
    )
    events = m.submit(limit(4, ALICE, BUY, 5, 10_010), T)
    assert names(events)[-2:] == ["BookLevel", "BookLevel"]
    assert of_type(events, BookLevel) == [
        BookLevel(17, T, SYM, SELL, 10_000, 0),
        BookLevel(18, T, SYM, SELL, 10_010, 1),
    ]


def test_book_level_reports_the_levels_new_total(m: Matcher) -> None:
    place(m, limit(1, BOB, BUY, 2, 10_000))
    assert m.submit(limit(2, CAROL, BUY, 3, 10_000), T)[-1] == BookLevel(4, T, SYM, BUY, 10_000, 5)


def test_amend_that_requeues_a_lone_order_publishes_one_level_with_its_new_total(
    m: Matcher,
) -> None:
    # The old level empties and a new one is made at the same price: one change for subscribers.
    place(m, limit(1, ALICE, SELL, 10, 10_000))
    assert ok(m.amend(OrderId(1), T, quantity=20)) == [
        OrderAmended(3, T, SYM, OrderId(1), ALICE, 10_000, 20, 20, False),
        BookLevel(4, T, SYM, SELL, 10_000, 20),
    ]


def test_stop_limit_resting_at_a_level_emptied_in_the_same_command_publishes_one_level(
    m: Matcher,
) -> None:
    print_trade(m, 10_000, first_id=1)
    place(m, limit(3, BOB, SELL, 1, 9_990), stop_limit(4, ALICE, SELL, 1, 9_995, 9_990))
    events = m.submit(limit(5, CAROL, BUY, 1, 9_990), T)
    assert of_type(events, BookLevel) == [BookLevel(16, T, SYM, SELL, 9_990, 1)]
    assert l3(m) == [(4, SELL, 9_990, 1)]


def test_seq_increases_by_exactly_one_per_event(m: Matcher) -> None:
    log = busy_session(m)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert m.seq == len(log)


def test_refusals_use_no_seq(m: Matcher) -> None:
    place(m, limit(1, ALICE, BUY, 5, 10_000))
    m.cancel(OrderId(9), T)
    m.amend(OrderId(1), T, quantity=5)
    assert m.submit(limit(2, BOB, SELL, 1, 10_100), T)[0].seq == 3


def test_order_notional_sums_price_times_quantity_for_the_average_price(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 1, 10_000), limit(2, BOB, SELL, 2, 10_010))
    place(m, limit(3, ALICE, BUY, 5, 10_010))
    order = m.orders[OrderId(3)]
    assert (order.filled, order.remaining, order.notional) == (3, 2, 10_000 + 2 * 10_010)
    place(m, limit(4, DAVE, SELL, 1, 10_010))  # now Alice is the maker
    assert (order.filled, order.notional) == (4, 10_000 + 3 * 10_010)
    assert order.notional / order.filled == 10_007.5


# ---------------------------------------------------------------------------- replay


def busy_session(m: Matcher) -> list[Event]:
    """A run that produces every event type; returns its events in order."""
    log: list[Event] = []
    log += place(
        m,
        limit(1, BOB, SELL, 5, 10_010),
        limit(2, BOB, SELL, 3, 10_020),
        limit(3, CAROL, SELL, 4, 10_030),
        limit(4, CAROL, BUY, 5, 9_990),
        gtd(5, DAVE, BUY, 2, 9_980, expire=T + 50),
        ts=T + 1,
    )
    log += m.submit(limit(6, ALICE, BUY, 6, 10_020), T + 2)  # sweeps two levels
    log += place(
        m, stop(7, ALICE, BUY, 2, 10_030), stop_limit(8, ALICE, SELL, 2, 9_990, 9_985), ts=T + 3
    )
    log += m.submit(limit(9, BOB, BUY, 1, 10_020, stp=StpMode.DECREMENT), T + 4)
    ioc = limit(10, CAROL, BUY, 6, 10_030, time_in_force=TimeInForce.IOC, stp=StpMode.DECREMENT)
    log += m.submit(ioc, T + 5)
    log += m.submit(limit(11, DAVE, BUY, 5, 10_100, time_in_force=TimeInForce.FOK), T + 6)
    log += place(
        m,
        limit(12, BOB, SELL, 2, 10_030),
        limit(13, BOB, SELL, 3, 10_050),
        limit(14, CAROL, SELL, 1, 10_040),
        ts=T + 7,
    )
    log += m.submit(limit(15, DAVE, BUY, 2, 10_030), T + 8)  # triggers stop 7
    log += ok(m.amend(OrderId(4), T + 9, quantity=3))
    log += ok(m.amend(OrderId(13), T + 9, price=10_060))
    log += place(m, limit(16, ALICE, BUY, 2, 9_970), ts=T + 9)
    log += ok(m.amend(OrderId(16), T + 9, price=10_060))  # crosses and trades
    log += m.submit(market(17, BOB, SELL, 3), T + 10)  # triggers stop-limit 8, which rests
    log += ok(m.cancel(OrderId(8), T + 11, user_id=ALICE))
    log += place(m, stop(18, ALICE, BUY, 1, 10_500), ts=T + 11)
    log += m.cancel_all(ALICE, T + 11)
    log += m.expire(T + 50)
    log += place(m, limit(19, DAVE, BUY, 1, 9_000, client_order_id=ClientOrderId("x")), ts=T + 12)
    log += m.submit(limit(20, DAVE, BUY, 1, 9_001, client_order_id=ClientOrderId("x")), T + 12)
    log += place(
        m,
        limit(21, CAROL, SELL, 1, 10_100),
        limit(22, BOB, SELL, 1, 10_110),
        limit(23, CAROL, BUY, 2, 10_110, stp=StpMode.CANCEL_OLDEST),
        limit(24, ALICE, BUY, 3, 9_900),
        limit(25, BOB, SELL, 2, 9_900),  # takes Carol's remainder, then part of Alice's bid
        gtd(26, CAROL, BUY, 1, 9_800, expire=T + 1_000),
        stop(27, ALICE, BUY, 1, 10_200),
        ts=T + 13,
    )
    return log


def test_busy_session_covers_every_event_type(m: Matcher) -> None:
    covered = set(names(busy_session(m)))
    assert covered == {
        "OrderAccepted", "OrderRejected", "Trade", "OrderFilled", "OrderCancelled",
        "OrderExpired", "OrderReduced", "OrderAmended", "StopTriggered", "SelfTradePrevented",
        "BookLevel",
    }  # fmt: skip


def test_replay_rebuilds_the_same_state_hash(m: Matcher) -> None:
    rebuilt = replay(busy_session(m))
    assert rebuilt.state_hash() == m.state_hash()
    assert l3(rebuilt) == l3(m)
    assert rebuilt.depth() == m.depth()
    assert (rebuilt.last_trade_id, rebuilt.last_trade_price) == (
        m.last_trade_id,
        m.last_trade_price,
    )


def test_replayed_matcher_continues_like_the_original(m: Matcher) -> None:
    rebuilt = replay(busy_session(m))
    for matcher in (m, rebuilt):
        place(matcher, limit(28, BOB, SELL, 1, 10_200), ts=T + 20)
    # The pending stop 27 triggers and the GTD order 26 expires in both.
    after = [
        (matcher.submit(limit(29, DAVE, BUY, 1, 10_200), T + 21), matcher.expire(T + 1_000))
        for matcher in (m, rebuilt)
    ]
    assert after[0] == after[1]
    assert StopTriggered in map(type, after[0][0])
    assert [type(e) for e in after[0][1]] == [OrderExpired, BookLevel]
    assert rebuilt.state_hash() == m.state_hash()


def test_replay_of_an_amend_that_requeues_a_lone_order(m: Matcher) -> None:
    # A stale BookLevel(quantity=0) for the emptied old level would not fit on replay.
    log = place(m, limit(1, ALICE, SELL, 10, 10_000))
    log += ok(m.amend(OrderId(1), T, quantity=20))
    assert replay(log).state_hash() == m.state_hash()


def test_apply_raises_on_a_seq_gap(m: Matcher) -> None:
    events = m.submit(limit(1, ALICE, BUY, 5, 10_000), T)
    rebuilt = Matcher(BTC)
    with pytest.raises(InvariantViolation, match="expected seq 1, got 2"):
        rebuilt.apply(events[1])


def test_apply_raises_on_an_event_applied_twice(m: Matcher) -> None:
    accepted = m.submit(limit(1, ALICE, BUY, 5, 10_000), T)[0]
    rebuilt = Matcher(BTC)
    rebuilt.apply(accepted)
    with pytest.raises(InvariantViolation, match="expected seq 2, got 1"):
        rebuilt.apply(accepted)


@pytest.mark.parametrize(
    "event",
    [
        OrderCancelled(1, T, SYM, OrderId(9), ALICE, 1, 0, CancelReason.USER),
        OrderExpired(1, T, SYM, OrderId(9), ALICE, 1, 0),
        fill(1, 9, ALICE, 1, 10_000, 1, Liquidity.TAKER, 1000, 1, 0, FILLED),
        OrderReduced(1, T, SYM, OrderId(9), ALICE, 1, 0, STP),
        OrderAmended(1, T, SYM, OrderId(9), ALICE, 10_000, 2, 2, False),
        StopTriggered(1, T, SYM, OrderId(9), ALICE, 10_000),
    ],
    ids=lambda event: type(event).__name__,
)
def test_apply_raises_on_an_event_for_an_unknown_order(event: Event) -> None:
    with pytest.raises(InvariantViolation, match="does not fit"):
        Matcher(BTC).apply(event)


def test_apply_raises_when_a_book_level_differs(m: Matcher) -> None:
    accepted = m.submit(limit(1, ALICE, BUY, 5, 10_000), T)[0]
    rebuilt = Matcher(BTC)
    rebuilt.apply(accepted)
    with pytest.raises(InvariantViolation, match="level buy 10000 differs"):
        rebuilt.apply(BookLevel(2, T, SYM, BUY, 10_000, 4))
