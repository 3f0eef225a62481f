"""Reference prices: rounding, mid, micro-price, EWMA, VWAP, 24-hour statistics, mark."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_engine.core.pricing import (
    DAY_NS,
    EWMA_SCALE,
    MINUTE_NS,
    SECOND_NS,
    PriceState,
    RollingStats,
    Stats,
    mark_of,
    round_half_down,
)
from trading_engine.errors import InvalidInput, InvariantViolation

T0 = 1_700_000_000 * SECOND_NS  # a whole minute since the epoch


def _exact_round_half_down(value: Fraction) -> int:
    below = value.numerator // value.denominator
    return below + 1 if value - below > Fraction(1, 2) else below


# ---- rounding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 2, 2), (7, 2, 3), (8, 3, 3), (7, 3, 2), (-5, 2, -3), (-7, 3, -2), (0, 4, 0), (6, 3, 2)],
)
def test_round_half_down(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_down(numerator, denominator) == expected


@given(st.integers(-(10**30), 10**30), st.integers(1, 10**20))
def test_round_half_down_matches_exact_fractions(numerator: int, denominator: int) -> None:
    expected = _exact_round_half_down(Fraction(numerator, denominator))
    assert round_half_down(numerator, denominator) == expected


def test_round_half_down_needs_a_positive_denominator() -> None:
    with pytest.raises(InvariantViolation):
        round_half_down(1, 0)


# ---- book prices --------------------------------------------------------------------------


def test_nothing_is_known_before_any_data() -> None:
    state = PriceState()
    assert state.last is None
    assert state.last_ts is None
    assert state.best_bid is None
    assert state.best_ask is None
    assert (state.bid_quantity, state.ask_quantity, state.last_quantity) == (0, 0, 0)
    assert state.mid is None
    assert state.micro_price is None
    assert state.ewma is None
    assert state.ewma_fixed is None
    assert state.vwap() is None
    assert state.stats_24h() is None
    assert state.mark is None
    assert state.reference() is None


@pytest.mark.parametrize(
    ("bid", "ask", "mid"), [(100, 102, 101), (100, 101, 100), (99, 100, 99), (100, 100, 100)]
)
def test_mid_rounds_an_exact_half_toward_the_bid(bid: int, ask: int, mid: int) -> None:
    state = PriceState()
    state.on_book(bid, 1, ask, 1)
    assert (state.best_bid, state.best_ask, state.mid) == (bid, ask, mid)


@pytest.mark.parametrize(
    ("bid", "bid_qty", "ask", "ask_qty", "micro"),
    [
        (100, 3, 104, 1, 103),  # (100*1 + 104*3) / 4 = 103: leans to the thin ask
        (100, 1, 104, 3, 101),  # (100*3 + 104*1) / 4 = 101
        (100, 1, 101, 1, 100),  # 100.5: half down
        (100, 2, 101, 1, 101),  # 100.67
        (100, 1, 101, 2, 100),  # 100.33
    ],
)
def test_micro_price(bid: int, bid_qty: int, ask: int, ask_qty: int, micro: int) -> None:
    state = PriceState()
    state.on_book(bid, bid_qty, ask, ask_qty)
    assert state.micro_price == micro


def test_one_sided_book_has_no_mid_or_micro_price() -> None:
    state = PriceState()
    state.on_book(100, 5, None, 0)
    assert (state.best_bid, state.best_ask, state.mid, state.micro_price) == (100, None, None, None)
    state.on_book(None, 0, 101, 5)
    assert (state.best_bid, state.mid) == (None, None)


def test_the_top_quantities_and_the_last_trades_quantity_are_the_latest_seen() -> None:
    state = PriceState()
    state.on_book(100, 3, 104, 1)
    state.on_trade(104, 1, 1)
    state.on_book(100, 3, 105, 7)
    assert (state.bid_quantity, state.ask_quantity, state.last_quantity) == (3, 7, 1)
    state.on_trade(100, 2, 2)
    state.on_book(None, 0, 105, 7)
    assert (state.bid_quantity, state.ask_quantity, state.last_quantity) == (0, 7, 2)
    state.on_trade(99, 5, 1)  # stamped earlier (the clock stepped back): still the latest
    assert (state.last, state.last_quantity) == (99, 5)


@pytest.mark.parametrize(
    ("bid", "bid_qty", "ask", "ask_qty"),
    [(100, 0, 101, 1), (None, 1, 101, 1), (100, 1, None, 2), (0, 1, 101, 1), (100, 1, 101, -1)],
)
def test_on_book_refuses_inconsistent_sides(
    bid: int | None, bid_qty: int, ask: int | None, ask_qty: int
) -> None:
    state = PriceState()
    state.on_book(90, 1, 110, 1)
    with pytest.raises(InvariantViolation):
        state.on_book(bid, bid_qty, ask, ask_qty)
    assert (state.best_bid, state.best_ask) == (90, 110)


# ---- trades -------------------------------------------------------------------------------


@pytest.mark.parametrize(("price", "quantity"), [(0, 1), (1, 0), (-5, 1)])
def test_on_trade_refuses_non_positive_values(price: int, quantity: int) -> None:
    with pytest.raises(InvariantViolation):
        PriceState().on_trade(price, quantity, T0)


@pytest.mark.parametrize(("num", "den"), [(0, 10), (11, 10), (1, 0), (-1, -2)])
def test_ewma_alpha_must_be_a_fraction_in_zero_one(num: int, den: int) -> None:
    with pytest.raises(InvalidInput):
        PriceState(ewma_alpha_num=num, ewma_alpha_den=den)


@pytest.mark.parametrize("field", ["vwap_window_ns", "vwap_bucket_ns", "stats_window_ns"])
def test_windows_must_be_positive(field: str) -> None:
    with pytest.raises(InvalidInput):
        PriceState(**{field: 0})


def test_ewma_half_weight() -> None:
    state = PriceState(ewma_alpha_num=1, ewma_alpha_den=2)
    state.on_trade(100, 1, T0)
    assert state.ewma == 100
    state.on_trade(200, 1, T0 + 1)
    assert state.ewma == 150
    state.on_trade(101, 1, T0 + 2)  # 125.5: half down
    assert state.ewma == 125
    assert state.ewma_fixed == 125 * EWMA_SCALE + EWMA_SCALE // 2
    assert state.last == 101


def test_ewma_keeps_fractions_of_a_tick() -> None:
    state = PriceState(ewma_alpha_num=1, ewma_alpha_den=3)
    state.on_trade(100, 1, T0)
    state.on_trade(200, 1, T0)
    assert state.ewma == 133
    assert state.ewma_fixed == 133 * EWMA_SCALE + EWMA_SCALE // 3
    state.on_trade(200, 1, T0)  # 133.33 + 66.67 / 3 = 155.56
    assert state.ewma == 156


def test_ewma_of_alpha_one_is_the_last_price() -> None:
    state = PriceState(ewma_alpha_num=5, ewma_alpha_den=5)
    for price in (100, 300, 7):
        state.on_trade(price, 1, T0)
    assert state.ewma == 7


@settings(max_examples=150)
@given(
    st.lists(st.integers(1, 10**9), min_size=1, max_size=60),
    st.integers(1, 1000),
    st.integers(1, 1000),
)
def test_ewma_stays_within_a_few_units_of_the_exact_value(
    prices: list[int], a: int, b: int
) -> None:
    num, den = min(a, b), max(a, b)
    state = PriceState(ewma_alpha_num=num, ewma_alpha_den=den)
    exact = Fraction(prices[0])
    state.on_trade(prices[0], 1, T0)
    for price in prices[1:]:
        exact += (price - exact) * Fraction(num, den)
        state.on_trade(price, 1, T0)
    fixed = state.ewma_fixed
    assert fixed is not None
    # Each step rounds by at most half a unit of 10^-18 tick.
    assert abs(fixed - exact * EWMA_SCALE) <= len(prices)
    ewma = state.ewma
    assert ewma is not None
    assert min(prices) <= ewma <= max(prices)


def test_vwap_over_the_window() -> None:
    state = PriceState()
    state.on_trade(100, 1, T0)
    state.on_trade(110, 3, T0 + SECOND_NS)  # (100 + 330) / 4 = 107.5: half down
    assert state.vwap() == 107
    assert state.vwap(window_ns=SECOND_NS) == 110
    state.on_trade(90, 4, T0 + 2 * SECOND_NS)  # (430 + 360) / 8 = 98.75
    assert state.vwap() == 99


def test_vwap_forgets_trades_older_than_the_window() -> None:
    state = PriceState()
    state.on_trade(100, 1, T0 + SECOND_NS // 2)
    state.on_trade(200, 1, T0 + 5 * MINUTE_NS + SECOND_NS // 5)
    # The first trade is 299.7 s old but its bucket started 300.2 s before the second.
    assert state.vwap() == 200
    assert state.vwap(now=T0 + 10 * MINUTE_NS) is None


def test_vwap_window_starts_on_a_bucket_boundary() -> None:
    state = PriceState()
    state.on_trade(100, 1, T0 + SECOND_NS + SECOND_NS // 2)
    state.on_trade(200, 1, T0 + 5 * MINUTE_NS + SECOND_NS // 5)
    assert state.vwap() == 150  # 298.7 s apart: both inside


def test_vwap_with_one_ns_buckets_is_exact_at_the_edge() -> None:
    state = PriceState(vwap_window_ns=1000, vwap_bucket_ns=1)
    state.on_trade(100, 1, 0)
    state.on_trade(200, 1, 1000)
    assert state.vwap() == 200  # the window is (0, 1000]
    state2 = PriceState(vwap_window_ns=1000, vwap_bucket_ns=1)
    state2.on_trade(100, 1, 1)
    state2.on_trade(200, 1, 1000)
    assert state2.vwap() == 150


@pytest.mark.parametrize("window", [0, -1, 5 * MINUTE_NS + 1])
def test_vwap_window_must_fit_the_retention(window: int) -> None:
    state = PriceState()
    state.on_trade(100, 1, T0)
    with pytest.raises(InvalidInput):
        state.vwap(window_ns=window)


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(0, 400)),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 1000),
)
def test_vwap_with_one_ns_buckets_equals_the_brute_force(
    trades: list[tuple[int, int, int]], window: int
) -> None:
    state = PriceState(vwap_window_ns=1000, vwap_bucket_ns=1)
    ts = 0
    seen: list[tuple[int, int, int]] = []
    for price, quantity, gap in trades:
        ts += gap
        state.on_trade(price, quantity, ts)
        seen.append((price, quantity, ts))
    inside = [(p, q) for p, q, t in seen if ts - window < t <= ts]
    expected = _exact_round_half_down(
        Fraction(sum(p * q for p, q in inside), sum(q for _, q in inside))
    )
    assert state.vwap(window_ns=window) == expected


def test_a_late_trade_counts_at_the_latest_time() -> None:
    state = PriceState(vwap_window_ns=1000, vwap_bucket_ns=1)
    state.on_trade(100, 1, 5000)
    state.on_trade(200, 1, 10)  # stamped long ago: counted at 5000
    assert state.last == 200
    assert state.last_ts == 5000
    assert state.vwap() == 150


# ---- 24-hour statistics -------------------------------------------------------------------


def test_stats_24h() -> None:
    state = PriceState()
    for price, quantity, ts in [
        (100, 2, T0),
        (120, 1, T0 + 5 * MINUTE_NS),
        (90, 3, T0 + 7 * MINUTE_NS + 1),
        (105, 1, T0 + 7 * MINUTE_NS + 2),
    ]:
        state.on_trade(price, quantity, ts)
    stats = state.stats_24h()
    assert stats == Stats(
        open=100, high=120, low=90, close=105, volume=7, quote_volume=695, trades=4
    )
    assert stats.change == 5
    assert stats.vwap == 99  # 695 / 7 = 99.29


def test_stats_24h_roll_by_the_minute() -> None:
    state = PriceState()
    state.on_trade(100, 2, T0 + 30 * SECOND_NS)
    state.on_trade(150, 1, T0 + DAY_NS)  # the first minute's bucket is now 24 h old
    stats = state.stats_24h()
    assert stats is not None
    assert (stats.open, stats.low, stats.volume, stats.trades) == (150, 150, 1, 1)
    assert stats.change == 0


def test_stats_24h_keep_the_minute_that_started_less_than_a_day_ago() -> None:
    state = PriceState()
    state.on_trade(100, 2, T0 + MINUTE_NS)
    state.on_trade(150, 1, T0 + DAY_NS + 30 * SECOND_NS)
    stats = state.stats_24h()
    assert stats is not None
    assert (stats.open, stats.high, stats.low, stats.close) == (100, 150, 100, 150)
    assert stats.change == 50
    assert state.stats_24h(now=T0 + DAY_NS + MINUTE_NS) == Stats(150, 150, 150, 150, 1, 150, 1)
    assert state.stats_24h(now=T0 + 3 * DAY_NS) is None
    # A ``now`` before the latest trade is taken as the latest trade.
    assert state.stats_24h(now=0) == stats


def test_rolling_stats_keep_bounded_memory() -> None:
    rolling = RollingStats(retention_ns=10 * MINUTE_NS, bucket_ns=MINUTE_NS)
    for minute in range(1000):
        rolling.add(100 + minute % 7, 1, T0 + minute * MINUTE_NS)
    assert len(rolling._buckets) <= 11
    summary = rolling.summary()
    assert summary is not None
    assert summary.trades == 10
    assert rolling.latest_ts == T0 + 999 * MINUTE_NS


# ---- mark ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mid", "last", "ewma", "mark"),
    [
        (100, 110, 105, 105),
        (110, 100, 120, 110),
        (100, 100, 300, 100),
        (None, 100, 103, 101),  # two: the mean, half down
        (None, 100, 101, 100),
        (107, None, None, 107),
        (None, 99, None, 99),
        (None, None, None, None),
    ],
)
def test_mark_of(mid: int | None, last: int | None, ewma: int | None, mark: int | None) -> None:
    assert mark_of(mid, last, ewma) == mark


def test_mark_follows_the_inputs_available() -> None:
    state = PriceState(ewma_alpha_num=1, ewma_alpha_den=2)
    state.on_book(100, 1, 104, 1)
    assert state.mark == 102  # the mid alone
    state.on_trade(120, 1, T0)
    assert (state.mid, state.last, state.ewma) == (102, 120, 120)
    assert state.mark == 120  # median of 102, 120, 120
    state.on_trade(90, 1, T0)
    assert (state.last, state.ewma) == (90, 105)
    assert state.mark == 102  # median of 102, 90, 105
    state.on_book(None, 0, 104, 1)
    assert state.mark == 97  # mean of 90 and 105 = 97.5, half down
    assert state.reference() == state.mark


@settings(max_examples=200)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("trade"), st.integers(1, 10**6), st.integers(1, 100)),
            st.tuples(
                st.just("book"),
                st.one_of(st.none(), st.integers(1, 10**6)),
                st.one_of(st.none(), st.integers(1, 10**6)),
            ),
        ),
        max_size=30,
    )
)
def test_mark_lies_between_the_inputs(ops: list[tuple[str, int | None, int | None]]) -> None:
    state = PriceState(ewma_alpha_num=1, ewma_alpha_den=3)
    for number, (kind, a, b) in enumerate(ops):
        if kind == "trade":
            assert a is not None
            assert b is not None
            state.on_trade(a, b, T0 + number)
        else:
            state.on_book(a, 0 if a is None else 5, b, 0 if b is None else 7)
        present = [v for v in (state.mid, state.last, state.ewma) if v is not None]
        mark = state.mark
        if present:
            assert mark is not None
            assert min(present) <= mark <= max(present)
        else:
            assert mark is None
