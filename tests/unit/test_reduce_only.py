"""Reduce-only orders in the matcher of a margin symbol: one test per rule, and replay.

The matcher keeps each user's position from the symbol's trades; a reduce-only
order is rejected when there is nothing on the other side to reduce, accepted
for at most the position, and cut (``OrderReduced``) or cancelled whenever the
position shrinks below it, so that none of its fills ever grows or reverses a
position.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence

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
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderReduced,
    OrderRejected,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.matcher import Matcher
from trading_engine.core.orders import OrderSpec

from .test_margin import PERP
from .test_matcher import BUY, SELL, T, limit, of_type, place

SPOT = Instrument.create("BTC_AIT", "BTC", "AIT", "0.01", "0.0001", price_band_pct="10")
ANN, BEN, CAT = UserId("ann"), UserId("ben"), UserId("cat")
REDUCE_ONLY = CancelReason.REDUCE_ONLY


def reducing(order_id: int, user: UserId, side: Side, quantity: int, price: int) -> OrderSpec:
    return limit(order_id, user, side, quantity, price, reduce_only=True)


def stop_loss(order_id: int, user: UserId, quantity: int, stop_price: int) -> OrderSpec:
    """A reduce-only stop sell, with the protection price the risk actor would set."""
    spec = OrderSpec.create(
        OrderId(order_id), user, SELL, OrderType.STOP, quantity, stop_price=stop_price,
        reduce_only=True,
    )  # fmt: skip
    return spec._replace(price=stop_price * 9 // 10)


def cuts(events: Sequence[Event]) -> list[tuple[int, int, int]]:
    """``(order, quantity cut, remaining)`` of each reduce-only cut."""
    return [
        (e.order_id, e.quantity, e.remaining)
        for e in of_type(events, OrderReduced)
        if e.reason is REDUCE_ONLY
    ]


def cancels(events: Sequence[Event]) -> list[tuple[int, int, CancelReason]]:
    return [(e.order_id, e.quantity, e.reason) for e in of_type(events, OrderCancelled)]


def long_ann(m: Matcher, quantity: int, first_id: int = 1) -> list[Event]:
    """Ann buys ``quantity`` lots from Ben at 100,000: Ann long, Ben short."""
    ben = limit(first_id, BEN, SELL, quantity, 100_000)
    return place(m, ben, limit(first_id + 1, ANN, BUY, quantity, 100_000))


def replay(events: Sequence[Event]) -> Matcher:
    rebuilt = Matcher(PERP)
    for event in events:
        rebuilt.apply(event)
    return rebuilt


def test_the_matcher_follows_positions_from_trades_and_a_self_trade_moves_none() -> None:
    m = Matcher(PERP)
    log = long_ann(m, 10)
    assert m.positions == {ANN: 10, BEN: -10}
    log += place(m, limit(3, ANN, SELL, 10, 101_000), limit(4, BEN, BUY, 10, 101_000))
    assert m.positions == {}
    log += place(m, limit(5, CAT, SELL, 3, 99_000), limit(6, CAT, BUY, 3, 99_000, stp=StpMode.NONE))
    assert of_type(log, Trade)[-1].maker_user_id == CAT
    assert m.positions == {}
    assert replay(log).positions == {}
    spot = Matcher(SPOT)
    place(spot, limit(1, BEN, SELL, 1, 100_000), limit(2, ANN, BUY, 1, 100_000))
    assert spot.positions == {}


def test_a_reduce_only_order_when_flat_or_on_the_positions_side_is_rejected() -> None:
    m = Matcher(PERP)
    flat = reducing(1, ANN, SELL, 1, 100_000)
    assert m.submit(flat, T) == [
        OrderRejected(1, T, PERP.symbol, flat, RejectReason.REDUCE_ONLY_WOULD_INCREASE)
    ]
    long_ann(m, 5, first_id=2)
    # Ann is long: a reduce-only buy would grow her long; Ben is short: a sell, his short.
    for spec in (reducing(4, ANN, BUY, 1, 90_000), reducing(5, BEN, SELL, 1, 110_000)):
        [rejected] = m.submit(spec, T)
        assert isinstance(rejected, OrderRejected)
        assert rejected.reason is RejectReason.REDUCE_ONLY_WOULD_INCREASE


def test_a_reduce_only_order_in_a_spot_symbol_is_invalid() -> None:
    [rejected] = Matcher(SPOT).submit(reducing(1, ANN, SELL, 1, 100_000), T)
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason is RejectReason.INVALID_ORDER


def test_a_reduce_only_order_larger_than_the_position_is_accepted_for_the_position() -> None:
    m = Matcher(PERP)
    long_ann(m, 4)
    accepted = m.submit(reducing(3, ANN, SELL, 10, 105_000), T)[0]
    assert isinstance(accepted, OrderAccepted)
    assert accepted.spec.quantity == 4
    assert accepted.spec.reduce_only
    assert m.depth()[1] == [(105_000, 4)]


def test_a_reduce_only_market_order_closes_the_position_and_never_reverses_it() -> None:
    m = Matcher(PERP)
    long_ann(m, 4)
    place(m, limit(3, CAT, BUY, 50, 99_000))
    close = OrderSpec.create(OrderId(4), ANN, SELL, OrderType.MARKET, 10, reduce_only=True)
    out = m.submit(close, T)
    assert [(t.quantity, t.price) for t in of_type(out, Trade)] == [(4, 99_000)]
    assert of_type(out, OrderFilled)[-1].status is OrderStatus.FILLED
    assert m.positions == {BEN: -4, CAT: 4}
    assert m.depth()[0] == [(99_000, 46)]


def test_a_resting_reduce_only_order_is_cancelled_when_another_order_closes_the_position() -> None:
    m = Matcher(PERP)
    log = long_ann(m, 5)
    log += place(m, reducing(3, ANN, SELL, 5, 110_000), limit(4, CAT, BUY, 5, 99_000))
    out = m.submit(limit(5, ANN, SELL, 5, 99_000), T)  # an ordinary order closes it
    assert cancels(out) == [(3, 5, REDUCE_ONLY)]
    assert m.depth() == ([], [])
    assert OrderId(3) not in m.orders
    assert replay(log + out).state_hash() == m.state_hash()


def test_a_resting_reduce_only_order_is_cut_when_the_position_shrinks() -> None:
    m = Matcher(PERP)
    log = long_ann(m, 5)
    log += place(m, reducing(3, ANN, SELL, 5, 110_000), limit(4, CAT, BUY, 3, 99_000))
    out = m.submit(limit(5, ANN, SELL, 3, 99_000), T)
    assert cuts(out) == [(3, 3, 2)]
    assert m.depth()[1] == [(110_000, 2)]
    assert m.orders[OrderId(3)].cancelled == 3
    assert replay(log + out).state_hash() == m.state_hash()


def test_a_reduce_only_order_is_cancelled_when_the_position_turns_to_its_side() -> None:
    m = Matcher(PERP)
    long_ann(m, 5)
    place(m, reducing(3, ANN, SELL, 5, 110_000), limit(4, CAT, BUY, 8, 99_000))
    out = m.submit(limit(5, ANN, SELL, 8, 99_000), T)  # long 5 to short 3
    assert m.positions[ANN] == -3
    assert cancels(out) == [(3, 5, REDUCE_ONLY)]


def test_reduce_only_makers_of_one_user_never_sum_past_the_position() -> None:
    # Two resting reduce-only sells of 5 against a long of 5: one taker meets both.
    m = Matcher(PERP)
    log = long_ann(m, 5)
    log += place(m, reducing(3, ANN, SELL, 5, 101_000), reducing(4, ANN, SELL, 5, 102_000))
    out = m.submit(limit(5, CAT, BUY, 10, 102_000), T)
    assert [(t.maker_order_id, t.quantity) for t in of_type(out, Trade)] == [(3, 5)]
    assert cancels(out) == [(4, 5, REDUCE_ONLY)]
    assert m.positions == {BEN: -5, CAT: 5}
    assert m.depth() == ([(102_000, 5)], [])  # the taker's rest
    assert replay(log + out).state_hash() == m.state_hash()


def test_a_reduce_only_maker_is_cut_just_before_it_trades() -> None:
    # Ann long 5: an ordinary sell of 3 and a reduce-only sell of 5 rest; a taker buying 8
    # fills the 3, which leaves 2 to reduce, so the reduce-only order trades 2 at most.
    m = Matcher(PERP)
    log = long_ann(m, 5)
    log += place(m, limit(3, ANN, SELL, 3, 101_000), reducing(4, ANN, SELL, 5, 102_000))
    out = m.submit(limit(5, CAT, BUY, 8, 102_000), T)
    assert [(t.maker_order_id, t.quantity) for t in of_type(out, Trade)] == [(3, 3), (4, 2)]
    assert cuts(out) == [(4, 3, 2)]
    assert ANN not in m.positions
    assert replay(log + out).state_hash() == m.state_hash()


def test_fok_counts_a_reduce_only_maker_only_up_to_its_users_position() -> None:
    m = Matcher(PERP)
    long_ann(m, 5)
    place(m, limit(3, ANN, SELL, 3, 101_000), reducing(4, ANN, SELL, 5, 102_000))
    [rejected] = m.submit(limit(5, CAT, BUY, 8, 102_000, time_in_force=TimeInForce.FOK), T)
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason is RejectReason.FOK_NOT_FILLABLE
    out = m.submit(limit(6, CAT, BUY, 5, 102_000, time_in_force=TimeInForce.FOK), T)
    assert sum(t.quantity for t in of_type(out, Trade)) == 5


def test_a_pending_reduce_only_stop_is_cancelled_when_the_position_closes() -> None:
    m = Matcher(PERP)
    long_ann(m, 5)
    accepted = m.submit(stop_loss(3, ANN, 5, 95_000), T)[0]
    assert isinstance(accepted, OrderAccepted)
    assert accepted.status is OrderStatus.PENDING_TRIGGER
    place(m, limit(4, CAT, BUY, 5, 99_000))
    assert cancels(m.submit(limit(5, ANN, SELL, 5, 99_000), T)) == [(3, 5, REDUCE_ONLY)]
    # Prices fall through the stop: nothing triggers any more.
    place(m, limit(6, CAT, BUY, 1, 94_000))
    assert not of_type(m.submit(limit(7, BEN, SELL, 1, 94_000), T), StopTriggered)


def test_a_triggered_reduce_only_stop_closes_only_what_is_left() -> None:
    m = Matcher(PERP)
    log = long_ann(m, 5)
    log += place(m, stop_loss(3, ANN, 5, 95_000), limit(4, CAT, BUY, 2, 99_000))
    log += place(m, limit(5, ANN, SELL, 2, 99_000))  # long 3: the stop is cut to 3
    assert m.orders[OrderId(3)].remaining == 3
    log += place(m, limit(6, CAT, BUY, 20, 94_000))
    out = m.submit(limit(7, BEN, SELL, 1, 94_000), T)  # prints 94,000: the stop triggers
    assert of_type(out, StopTriggered)
    assert [(t.taker_order_id, t.quantity) for t in of_type(out, Trade)][-1] == (3, 3)
    assert ANN not in m.positions
    assert replay(log + out).state_hash() == m.state_hash()


def test_an_amend_of_a_reduce_only_order_past_the_position_is_cut_back() -> None:
    m = Matcher(PERP)
    log = long_ann(m, 5)
    log += place(m, reducing(3, ANN, SELL, 2, 110_000))
    out = m.amend(OrderId(3), T, quantity=9)
    assert isinstance(out, list)
    assert cuts(out) == [(3, 4, 5)]
    assert m.depth()[1] == [(110_000, 5)]
    assert replay(log + out).state_hash() == m.state_hash()


def test_a_margin_matcher_with_reduce_only_orders_pickles_and_goes_on_the_same() -> None:
    m = Matcher(PERP)
    long_ann(m, 5)
    place(m, reducing(3, ANN, SELL, 5, 110_000), limit(4, CAT, BUY, 3, 99_000))
    twin = pickle.loads(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL))
    assert twin.positions == m.positions
    assert twin.state_hash() == m.state_hash()
    spec = limit(5, ANN, SELL, 3, 99_000)
    assert twin.submit(spec, T) == m.submit(spec, T)
    assert twin.state_hash() == m.state_hash()
