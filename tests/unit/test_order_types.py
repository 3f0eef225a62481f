"""The matcher's take-profit, trailing-stop, iceberg and quote-sized market orders."""

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_matcher import (
    ALICE,
    BOB,
    BTC,
    BUY,
    CAROL,
    DAVE,
    SELL,
    SYM,
    T,
    limit,
    of_type,
    ok,
    place,
    print_trade,
    replay,
    trace,
)
from trading_engine.core.enums import (
    CancelReason,
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
    IcebergRefilled,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    StopMoved,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument, fee_for, lots_within
from trading_engine.core.matcher import Matcher, Refusal
from trading_engine.core.orders import OrderSpec
from trading_engine.errors import InvalidInput


@pytest.fixture
def m() -> Matcher:
    return Matcher(BTC)


def take_profit(
    order_id: int, user: UserId, side: Side, quantity: int, stop_price: int, **options: Any
) -> OrderSpec:
    kind = OrderType.TAKE_PROFIT_LIMIT if options.get("price") else OrderType.TAKE_PROFIT
    return OrderSpec.create(
        OrderId(order_id), user, side, kind, quantity, stop_price=stop_price, **options
    )


# ---------------------------------------------------------------------------- take-profit


@pytest.mark.parametrize("trade_price", [10_100, 10_150])
def test_sell_take_profit_triggers_when_a_trade_prints_at_or_above_its_stop(
    m: Matcher, trade_price: int
) -> None:
    print_trade(m, 10_000, first_id=1)
    place(m, take_profit(3, ALICE, SELL, 1, 10_100), limit(4, DAVE, BUY, 5, 9_900))
    place(m, limit(5, BOB, SELL, 1, trade_price))
    events = m.submit(limit(6, CAROL, BUY, 1, trade_price), T)
    triggered = of_type(events, StopTriggered)
    assert [(s.order_id, s.trigger_price) for s in triggered] == [(3, trade_price)]
    assert [(t.taker_order_id, t.price) for t in of_type(events, Trade)] == [
        (6, trade_price),
        (3, 9_900),
    ]


def test_sell_take_profit_does_not_trigger_below_its_stop(m: Matcher) -> None:
    print_trade(m, 10_000, first_id=1)
    place(m, take_profit(3, ALICE, SELL, 1, 10_100))
    place(m, limit(5, BOB, BUY, 1, 9_000))
    events = m.submit(limit(6, CAROL, SELL, 1, 9_000), T)
    assert of_type(events, StopTriggered) == []
    assert m.orders[OrderId(3)].status is OrderStatus.PENDING_TRIGGER


@pytest.mark.parametrize("trade_price", [9_900, 9_850])
def test_buy_take_profit_limit_triggers_at_or_below_and_rests_at_its_limit(
    m: Matcher, trade_price: int
) -> None:
    journal = place(m, limit(1, BOB, SELL, 1, 10_000), limit(2, CAROL, BUY, 1, 10_000))
    journal += place(m, take_profit(3, ALICE, BUY, 2, 9_900, price=9_800))
    journal += place(m, limit(5, BOB, BUY, 1, trade_price))
    events = m.submit(limit(6, CAROL, SELL, 1, trade_price), T)
    assert [s.order_id for s in of_type(events, StopTriggered)] == [3]
    order = m.orders[OrderId(3)]
    assert (order.status, order.resting, order.price) == (OrderStatus.OPEN, True, 9_800)
    assert replay([*journal, *events]).state_hash() == m.state_hash()


@pytest.mark.parametrize(
    ("side", "stop_price"),
    [(SELL, 10_000), (SELL, 9_999), (BUY, 10_000), (BUY, 10_001)],
)
def test_take_profit_rejected_when_it_would_trigger_immediately(
    m: Matcher, side: Side, stop_price: int
) -> None:
    print_trade(m, 10_000, first_id=1)
    spec = take_profit(3, ALICE, side, 1, stop_price)
    assert m.submit(spec, T) == [
        OrderRejected(8, T, SYM, spec, RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY)
    ]


def test_a_stop_and_a_take_profit_fired_by_one_trade_run_in_that_takers_step(
    m: Matcher,
) -> None:
    """A buy taker's rise fires a buy stop and a sell take-profit in the same command."""
    print_trade(m, 10_000, first_id=1)
    place(
        m,
        limit(3, DAVE, BUY, 5, 9_960),
        limit(4, BOB, SELL, 1, 10_050),
        limit(5, BOB, SELL, 5, 10_200),
        take_profit(6, ALICE, SELL, 1, 10_050),
        take_profit(7, CAROL, BUY, 1, 9_950),  # a buy take-profit waits for a fall
        OrderSpec.create(OrderId(8), ALICE, BUY, OrderType.STOP, 1, stop_price=10_050),
    )
    events = m.submit(limit(9, CAROL, BUY, 1, 10_050), T)
    assert trace(events) == [
        ("trade", 9),
        ("triggered", 6),
        ("trade", 6),
        ("triggered", 8),
        ("trade", 8),
    ]
    assert m.orders[OrderId(7)].status is OrderStatus.PENDING_TRIGGER


def test_take_profit_needs_a_stop_price_and_no_fok() -> None:
    with pytest.raises(InvalidInput, match="stop_price"):
        OrderSpec.create(OrderId(1), ALICE, SELL, OrderType.TAKE_PROFIT, 1)
    with pytest.raises(InvalidInput, match="price"):
        OrderSpec.create(OrderId(1), ALICE, SELL, OrderType.TAKE_PROFIT_LIMIT, 1, stop_price=5)
    with pytest.raises(InvalidInput, match="time_in_force"):
        take_profit(1, ALICE, SELL, 1, 5, time_in_force=TimeInForce.FOK)


def test_accepted_take_profit_waits_outside_the_book(m: Matcher) -> None:
    spec = take_profit(1, ALICE, SELL, 1, 10_100, price=10_050)
    assert m.submit(spec, T) == [OrderAccepted(1, T, SYM, spec, OrderStatus.PENDING_TRIGGER)]
    assert m.depth() == ([], [])


# ---------------------------------------------------------------------------- quote-sized


def quote_market(
    order_id: int, user: UserId, side: Side, quote: int, cap: int = 10**6
) -> OrderSpec:
    """A quote-sized market order with a lot ``cap`` (the risk actor's, here any)."""
    return OrderSpec.create(
        OrderId(order_id), user, side, OrderType.MARKET, cap, quote_quantity=quote
    )


def spent(events: Sequence[Event], instrument: Instrument, taker: int) -> int:
    """What the taker's trades cost it (a buy) or brought it (a sell), fees included."""
    total = 0
    for trade in of_type(events, Trade):
        assert trade.taker_order_id == taker
        money = instrument.notional(trade.price, trade.quantity)
        buys = trade.aggressor is Side.BUY
        total += money + trade.taker_fee if buys else money - trade.taker_fee
    return total


def test_quote_sized_buy_fills_whole_lots_within_its_quote_amount(m: Matcher) -> None:
    """One tick x one lot is 100 minor units; 10 bps taker fee, rounded up per trade."""
    place(m, limit(1, BOB, SELL, 3, 10_000), limit(2, BOB, SELL, 5, 10_010))
    one_lot = BTC.notional(10_000, 1) + fee_for(BTC.notional(10_000, 1), 10)
    budget = 3 * one_lot + BTC.notional(10_010, 1) + fee_for(BTC.notional(10_010, 1), 10) + 99
    events = m.submit(quote_market(3, ALICE, BUY, budget), T)
    assert [(t.price, t.quantity) for t in of_type(events, Trade)] == [(10_000, 3), (10_010, 1)]
    assert spent(events, BTC, 3) == budget - 99
    [cancelled] = of_type(events, OrderCancelled)
    assert cancelled.reason is CancelReason.QUOTE_QUANTITY_REACHED
    assert OrderId(3) not in m.orders


def test_quote_sized_sell_receives_at_most_its_quote_amount(m: Matcher) -> None:
    place(m, limit(1, BOB, BUY, 10, 10_000))
    four = BTC.notional(10_000, 4)
    budget = four - fee_for(four, 10) - 1  # 3 lots' proceeds fit, 4 lots' do not
    events = m.submit(quote_market(2, ALICE, SELL, budget), T)
    assert [(t.price, t.quantity) for t in of_type(events, Trade)] == [(10_000, 3)]
    assert spent(events, BTC, 2) <= budget
    assert m.depth() == ([(10_000, 7)], [])


def test_quote_sized_buy_that_cannot_afford_one_lot_trades_nothing(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 3, 10_000))
    events = m.submit(quote_market(2, ALICE, BUY, BTC.notional(10_000, 1)), T)
    assert of_type(events, Trade) == []
    [cancelled] = of_type(events, OrderCancelled)
    assert cancelled.reason is CancelReason.QUOTE_QUANTITY_REACHED


def test_quote_sized_order_stops_at_its_lot_cap(m: Matcher) -> None:
    place(m, limit(1, BOB, SELL, 10, 10_000))
    events = m.submit(quote_market(2, ALICE, BUY, 10**12, cap=4), T)
    assert [t.quantity for t in of_type(events, Trade)] == [4]
    assert m.depth() == ([], [(10_000, 6)])


def test_quote_quantity_is_for_market_orders_only() -> None:
    with pytest.raises(InvalidInput, match="quote_quantity"):
        OrderSpec.create(OrderId(1), ALICE, BUY, OrderType.LIMIT, 1, price=5, quote_quantity=100)
    with pytest.raises(InvalidInput, match="time_in_force"):
        OrderSpec.create(
            OrderId(1), ALICE, BUY, OrderType.MARKET, 0, quote_quantity=100,
            time_in_force=TimeInForce.FOK,
        )  # fmt: skip


@pytest.mark.parametrize("buying", [True, False])
@given(
    budget=st.integers(1, 10**9),
    per_lot=st.integers(1, 10**6),
    bps=st.integers(0, 9_999),
)
def test_lots_within_is_the_most_lots_inside_the_budget(
    buying: bool, budget: int, per_lot: int, bps: int
) -> None:
    def value(lots: int) -> int:
        notional = lots * per_lot
        return notional + fee_for(notional, bps) if buying else notional - fee_for(notional, bps)

    lots = lots_within(budget, per_lot, bps, buying)
    assert lots >= 0
    assert value(lots) <= budget
    assert value(lots + 1) > budget


@settings(max_examples=150, deadline=None)
@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    makers=st.lists(
        st.tuples(st.integers(9_990, 10_010), st.integers(1, 20), st.sampled_from([BOB, ALICE])),
        max_size=12,
    ),
    budget=st.integers(1, 10**8),
)
def test_a_quote_sized_market_order_never_passes_its_quote_amount(
    side: Side, makers: list[tuple[int, int, UserId]], budget: int
) -> None:
    """Whatever the book (its own resting orders included: self-trade prevention), the
    taker's trades cost (or bring) at most its quote amount, in whole lots, and replay
    rebuilds the state."""
    m = Matcher(BTC)
    journal: list[Event] = []
    for i, (price, quantity, user) in enumerate(makers, start=1):
        journal += m.submit(limit(i, user, side.opposite, quantity, price), T)
    taker = len(makers) + 1
    events = m.submit(quote_market(taker, ALICE, side, budget), T)
    journal += events
    trades = [t for t in of_type(events, Trade) if t.taker_order_id == taker]
    assert spent(trades, BTC, taker) <= budget
    assert OrderId(taker) not in m.orders
    assert replay(journal).state_hash() == m.state_hash()
    m.book.check()


# ---------------------------------------------------------------------------- trailing


def trailing(order_id: int, user: UserId, side: Side, quantity: int, **options: Any) -> OrderSpec:
    kind = OrderType.TRAILING_STOP_LIMIT if "limit_offset" in options else OrderType.TRAILING_STOP
    return OrderSpec.create(OrderId(order_id), user, side, kind, quantity, **options)


def moves(events: Sequence[Event], order_id: int) -> list[int]:
    return [e.stop_price for e in of_type(events, StopMoved) if e.order_id == order_id]


def prints(m: Matcher, price: int, first_id: int) -> list[Event]:
    """Bob sells one lot to Carol at ``price``; the events of both orders."""
    return place(m, limit(first_id, BOB, SELL, 1, price), limit(first_id + 1, CAROL, BUY, 1, price))


def test_sell_trailing_stop_follows_rises_only_and_triggers_on_the_fall(m: Matcher) -> None:
    journal = prints(m, 10_000, 1)
    accepted = place(m, trailing(3, ALICE, SELL, 2, trailing_delta=100))
    assert moves(accepted, 3) == [9_900]  # armed at once, against the last trade
    journal += accepted
    journal += place(m, limit(4, DAVE, BUY, 5, 9_700))
    journal += (rise := prints(m, 10_200, 10))
    assert moves(rise, 3) == [10_100]
    journal += (dip := prints(m, 10_150, 20))
    assert moves(dip, 3) == []  # a fall never moves it back
    assert m.orders[OrderId(3)].stop_price == 10_100
    assert replay(journal).state_hash() == m.state_hash()
    journal += (fall := prints(m, 10_100, 30))
    assert [s.order_id for s in of_type(fall, StopTriggered)] == [3]
    assert [(t.taker_order_id, t.price, t.quantity) for t in of_type(fall, Trade)][-1] == (
        3,
        9_700,
        2,
    )
    assert replay(journal).state_hash() == m.state_hash()


def test_buy_trailing_stop_in_basis_points_follows_falls(m: Matcher) -> None:
    prints(m, 10_000, 1)
    accepted = place(m, trailing(3, ALICE, BUY, 1, trailing_bps=50))
    assert moves(accepted, 3) == [10_050]  # 0.5% of 10000
    fall = prints(m, 9_800, 10)
    assert moves(fall, 3) == [9_849]  # 9800 + 49 (0.5% of 9800, rounded down)
    assert of_type(prints(m, 9_840, 20), StopTriggered) == []  # below it: waits, unmoved
    assert m.orders[OrderId(3)].stop_price == 9_849
    assert of_type(prints(m, 9_849, 30), StopTriggered) != []


def test_trailing_stop_arms_only_once_the_activation_price_is_reached(m: Matcher) -> None:
    prints(m, 10_000, 1)
    accepted = place(m, trailing(3, ALICE, SELL, 1, trailing_delta=100, activation_price=10_300))
    assert moves(accepted, 3) == []
    assert of_type(prints(m, 9_000, 10), StopTriggered) == []  # unarmed: nothing triggers
    assert moves(prints(m, 10_250, 20), 3) == []
    assert moves(prints(m, 10_400, 30), 3) == [10_300]
    assert m.orders[OrderId(3)].status is OrderStatus.PENDING_TRIGGER


def test_trailing_stop_limit_rests_its_offset_beyond_the_stop(m: Matcher) -> None:
    journal = prints(m, 10_000, 1)
    journal += place(m, trailing(3, ALICE, SELL, 2, trailing_delta=100, limit_offset=20))
    journal += (fall := prints(m, 9_900, 10))
    assert [s.order_id for s in of_type(fall, StopTriggered)] == [3]
    order = m.orders[OrderId(3)]
    assert (order.status, order.resting, order.price) == (OrderStatus.OPEN, True, 9_880)
    assert replay(journal).state_hash() == m.state_hash()


def test_a_cancelled_trailing_stop_never_moves_or_triggers(m: Matcher) -> None:
    prints(m, 10_000, 1)
    place(m, trailing(3, ALICE, SELL, 1, trailing_delta=100))
    assert isinstance(m.cancel(OrderId(3), T), list)
    events = prints(m, 10_500, 10) + prints(m, 9_000, 20)
    assert moves(events, 3) == []
    assert of_type(events, StopTriggered) == []


def test_trailing_fields_are_checked() -> None:
    with pytest.raises(InvalidInput, match="trailing_delta"):
        trailing(1, ALICE, SELL, 1)
    with pytest.raises(InvalidInput, match="trailing_delta"):
        trailing(1, ALICE, SELL, 1, trailing_delta=1, trailing_bps=1)
    with pytest.raises(InvalidInput, match="trailing_bps"):
        trailing(1, ALICE, SELL, 1, trailing_bps=10_000)
    with pytest.raises(InvalidInput, match="trailing_delta"):
        OrderSpec.create(OrderId(1), ALICE, SELL, OrderType.STOP, 1, stop_price=5, trailing_delta=1)
    with pytest.raises(InvalidInput, match="stop_price"):
        trailing(1, ALICE, SELL, 1, trailing_delta=1, stop_price=5)


@settings(max_examples=100, deadline=None)
@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    delta=st.integers(1, 30),
    activation=st.sampled_from([0, 9_990, 10_010]),
    prices=st.lists(st.integers(9_950, 10_050), min_size=1, max_size=25),
)
def test_a_trailing_stops_stop_price_only_moves_in_its_favour(
    side: Side, delta: int, activation: int, prices: list[int]
) -> None:
    """Over any trade prices: every ``StopMoved`` of a pending trailing stop moves it the
    order's way (up for a sell, down for a buy), it triggers exactly when a trade reaches
    it, and replay rebuilds the state."""
    m = Matcher(BTC)
    journal = prints(m, 10_000, 1)
    spec = trailing(3, ALICE, side, 1, trailing_delta=delta, activation_price=activation)
    journal += place(m, spec)
    stops = moves(journal, 3)
    for i, price in enumerate(prices):
        before = m.orders[OrderId(3)].stop_price if OrderId(3) in m.orders else None
        events = prints(m, price, 10 + 2 * i)
        journal += events
        stops += moves(events, 3)
        if of_type(events, StopTriggered):
            assert before
            assert price <= before if side is Side.SELL else price >= before
            break
    assert stops == sorted(stops, reverse=side is Side.BUY)
    assert len(set(stops)) == len(stops)
    assert replay(journal).state_hash() == m.state_hash()


def test_a_cascade_runs_a_stop_then_the_take_profit_and_trailing_stop_it_fires_in_one_step(
    m: Matcher,
) -> None:
    """Bob's sell at 9,990 fires Alice's sell stop; its market sell prints 9,970, which
    reaches both Carol's buy take-profit and Alice's trailing stop (9,975, 25 below the
    last trade): the take-profit runs first (triggered trailing stops run last), buying
    Bob's ask at 10,050, then the trailing stop sells at 9,970. Replay rebuilds it all."""
    journal = prints(m, 10_000, 1)
    journal += place(
        m,
        limit(3, DAVE, BUY, 2, 9_990),
        limit(4, DAVE, BUY, 5, 9_970),
        limit(5, DAVE, BUY, 5, 9_950),
        limit(6, BOB, SELL, 1, 10_050),
        OrderSpec.create(OrderId(7), ALICE, SELL, OrderType.STOP, 2, stop_price=9_990),
        take_profit(8, CAROL, BUY, 1, 9_970),
        trailing(9, ALICE, SELL, 1, trailing_delta=25),
    )
    events = m.submit(limit(10, BOB, SELL, 2, 9_990), T)
    journal += events
    assert trace(events) == [
        ("trade", 10), ("triggered", 7), ("trade", 7), ("triggered", 8), ("trade", 8),
        ("triggered", 9), ("trade", 9),
    ]  # fmt: skip
    assert [(t.price, t.quantity) for t in of_type(events, Trade)] == [
        (9_990, 2), (9_970, 2), (10_050, 1), (9_970, 1),
    ]  # fmt: skip
    assert replay(journal).state_hash() == m.state_hash()


# ---------------------------------------------------------------------------- iceberg


def iceberg(
    order_id: int, user: UserId, side: Side, quantity: int, price: int, display: int
) -> OrderSpec:
    return limit(order_id, user, side, quantity, price, display_quantity=display)


def test_an_iceberg_shows_only_its_slice_in_the_book_and_its_levels(m: Matcher) -> None:
    events = m.submit(iceberg(1, ALICE, SELL, 10, 10_000, 3), T)
    assert [(e.displayed, e.hidden) for e in of_type(events, IcebergRefilled)] == [(3, 7)]
    assert [(e.price, e.quantity) for e in of_type(events, BookLevel)] == [(10_000, 3)]
    assert m.depth() == ([], [(10_000, 3)])
    order = m.orders[OrderId(1)]
    assert (order.remaining, order.hidden) == (10, 7)


def test_a_refilled_slice_goes_to_the_back_of_its_level(m: Matcher) -> None:
    journal = place(m, iceberg(1, ALICE, SELL, 10, 10_000, 3), limit(2, BOB, SELL, 2, 10_000))
    events = m.submit(limit(3, CAROL, BUY, 6, 10_000), T)
    journal += events
    # Alice's slice (3), Bob behind her (2), then Alice's next slice (1 of 3).
    assert [(t.maker_order_id, t.quantity) for t in of_type(events, Trade)] == [
        (1, 3),
        (2, 2),
        (1, 1),
    ]
    assert [(e.displayed, e.hidden) for e in of_type(events, IcebergRefilled)] == [(3, 4)]
    assert m.depth() == ([], [(10_000, 2)])
    assert (m.orders[OrderId(1)].remaining, m.orders[OrderId(1)].hidden) == (6, 4)
    assert replay(journal).state_hash() == m.state_hash()


def test_an_iceberg_taker_trades_its_whole_quantity_then_rests_a_slice(m: Matcher) -> None:
    journal = place(m, limit(1, BOB, SELL, 4, 10_000))
    journal += (events := m.submit(iceberg(2, ALICE, BUY, 10, 10_000, 3), T))
    assert [t.quantity for t in of_type(events, Trade)] == [4]
    assert m.depth() == ([(10_000, 3)], [])
    assert m.orders[OrderId(2)].hidden == 3
    assert replay(journal).state_hash() == m.state_hash()


def test_amending_an_iceberg_below_its_slice_shrinks_the_slice(m: Matcher) -> None:
    journal = place(m, iceberg(1, ALICE, SELL, 10, 10_000, 3))
    journal += ok(m.amend(OrderId(1), T, quantity=5))  # hidden 7 -> 2, slice still 3
    assert m.depth() == ([], [(10_000, 3)])
    journal += (events := ok(m.amend(OrderId(1), T, quantity=2)))  # below the slice
    assert m.depth() == ([], [(10_000, 2)])
    assert [(e.price, e.quantity) for e in of_type(events, BookLevel)] == [(10_000, 2)]
    assert m.orders[OrderId(1)].hidden == 0
    assert replay(journal).state_hash() == m.state_hash()


def test_self_trade_prevention_cancels_an_iceberg_maker_whole(m: Matcher) -> None:
    place(m, iceberg(1, ALICE, SELL, 10, 10_000, 3))
    events = m.submit(limit(2, ALICE, BUY, 1, 10_000, stp=StpMode.CANCEL_OLDEST), T)
    [cancelled] = [e for e in of_type(events, OrderCancelled) if e.order_id == 1]
    assert cancelled.quantity == 10
    assert m.depth() == ([(10_000, 1)], [])


def test_fok_counts_an_icebergs_hidden_lots(m: Matcher) -> None:
    place(m, iceberg(1, ALICE, SELL, 10, 10_000, 3))
    events = m.submit(limit(2, BOB, BUY, 8, 10_000, time_in_force=TimeInForce.FOK), T)
    assert sum(t.quantity for t in of_type(events, Trade)) == 8


def test_a_bad_display_quantity_is_refused() -> None:
    for display in (10, 11, -1):
        with pytest.raises(InvalidInput, match="display_quantity"):
            iceberg(1, ALICE, SELL, 10, 10_000, display)
    with pytest.raises(InvalidInput, match="display_quantity"):
        limit(1, ALICE, SELL, 10, 10_000, display_quantity=3, time_in_force=TimeInForce.IOC)
    with pytest.raises(InvalidInput, match="display_quantity"):
        OrderSpec.create(OrderId(1), ALICE, SELL, OrderType.MARKET, 10, display_quantity=3)


def shown_levels_hold_no_hidden_lots(m: Matcher) -> None:
    """Every level's quantity is its orders' shown slices; no slice exceeds its display."""
    m.book.check()
    for order in m.book.orders():
        display = order.spec.display_quantity
        assert 0 < order.remaining - order.hidden <= (display or order.remaining)
    for order in m.orders.values():
        assert order.filled + order.remaining + order.cancelled == order.quantity


@settings(max_examples=120, deadline=None)
@given(
    commands=st.lists(
        st.tuples(
            st.sampled_from(["place", "place", "place", "cancel", "amend"]),
            st.sampled_from([ALICE, BOB, CAROL]),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(9_998, 10_002),
            st.integers(1, 12),
            st.integers(0, 4),
        ),
        max_size=40,
    )
)
def test_icebergs_hide_their_rest_from_the_book_and_replay_rebuilds_them(
    commands: list[tuple[str, UserId, Side, int, int, int]],
) -> None:
    m = Matcher(BTC)
    journal: list[Event] = []
    visible: dict[tuple[Side, int], int] = {}
    for i, (kind, user, side, price, quantity, display) in enumerate(commands, start=1):
        live = sorted(m.orders)
        if kind == "place" or not live:
            shown = display if 0 < display < quantity else 0
            out: list[Event] | Refusal = m.submit(
                limit(i, user, side, quantity, price, display_quantity=shown), T
            )
        elif kind == "cancel":
            out = m.cancel(live[i % len(live)], T)
        else:
            out = m.amend(live[i % len(live)], T, quantity=quantity)
        if isinstance(out, list):
            journal += out
            for level in of_type(out, BookLevel):
                visible[(level.side, level.price)] = level.quantity
        shown_levels_hold_no_hidden_lots(m)
        # What market data was told is what the book shows: slices only.
        bids, asks = m.depth()
        book = {(Side.BUY, p): q for p, q in bids} | {(Side.SELL, p): q for p, q in asks}
        assert {key: q for key, q in visible.items() if q} == book
    assert replay(journal).state_hash() == m.state_hash()
