"""OHLCV candles: alignment, aggregation, retention, late trades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_engine.core.candles import INTERVALS, Candle, CandleBook, period_end, period_start
from trading_engine.errors import InvalidInput, InvariantViolation

S = 1_000_000_000
M = 60 * S
H = 60 * M
D = 24 * H
T0 = 19_000 * D  # midnight UTC


BINANCE = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d",
           "1w", "1M"]  # fmt: skip


def _trade(book: CandleBook, price: int, quantity: int, ts: int) -> list[Candle]:
    """The candles a trade changed."""
    return [book.changed(name) for name in book.on_trade(price, quantity, ts)]


def _of(changed: list[Candle]) -> dict[str, Candle]:
    return {c.interval: c for c in changed}


def test_intervals_are_binances() -> None:
    assert list(INTERVALS) == BINANCE
    assert (INTERVALS["1s"], INTERVALS["3m"], INTERVALS["12h"], INTERVALS["3d"]) == (
        S, 3 * M, 12 * H, 3 * D,
    )  # fmt: skip


def test_a_trade_opens_one_aligned_candle_per_interval() -> None:
    book = CandleBook()
    ts = T0 + 2 * H + 7 * M + 30 * S
    changed = _trade(book, 100, 3, ts)
    assert [c.interval for c in changed] == BINANCE
    of = _of(changed)
    assert [of[i].start for i in ("1m", "5m", "1h", "1d")] == [
        T0 + 2 * H + 7 * M, T0 + 2 * H + 5 * M, T0 + 2 * H, T0,
    ]  # fmt: skip
    assert of["1m"] == Candle("1m", T0 + 2 * H + 7 * M, 100, 100, 100, 100, 3, 300, 1)
    assert of["1m"].end == T0 + 2 * H + 8 * M
    assert of["1d"].end == T0 + D
    assert book.candles("1d") == [of["1d"]]
    assert book.latest("5m") == of["5m"]


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    ts = int(datetime(2024, 2, 29, 13, 5, tzinfo=UTC).timestamp()) * S  # a Thursday
    monday = int(datetime(2024, 2, 26, tzinfo=UTC).timestamp()) * S
    first, next_first = (int(datetime(2024, m, 1, tzinfo=UTC).timestamp()) * S for m in (2, 3))
    assert (period_start("1w", ts), period_end("1w", monday)) == (monday, monday + 7 * D)
    assert (period_start("1M", ts), period_end("1M", first)) == (first, next_first)
    december = int(datetime(2023, 12, 31, 23, 59, tzinfo=UTC).timestamp()) * S
    new_year = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * S
    assert period_end("1M", period_start("1M", december)) == new_year
    assert period_start("3d", ts) % (3 * D) == 0
    of = _of(_trade(CandleBook(), 5, 1, ts))
    assert (of["1w"].start, of["1M"].start, of["1M"].end) == (monday, first, next_first)


def test_trades_in_one_period_aggregate() -> None:
    book = CandleBook()
    for price, quantity, offset in [
        (100, 1, 0),
        (105, 2, 10 * S),
        (95, 3, 20 * S),
        (99, 4, 59 * S),
    ]:
        changed = _of(_trade(book, price, quantity, T0 + offset))
    assert changed["1m"] == Candle(
        interval="1m",
        start=T0,
        open=100,
        high=105,
        low=95,
        close=99,
        volume=10,
        quote_volume=100 + 210 + 285 + 396,
        trades=4,
    )
    assert book.candles("1m") == [changed["1m"]]


def test_a_new_minute_starts_a_new_1m_candle_only() -> None:
    book = CandleBook()
    book.on_trade(100, 1, T0 + 59 * S)
    changed = _trade(book, 110, 2, T0 + 60 * S)
    assert [(c.interval, c.start, c.trades) for c in changed][:5] == [
        ("1s", T0 + M, 1),
        ("1m", T0 + M, 1),
        ("3m", T0, 2),
        ("5m", T0, 2),
        ("15m", T0, 2),
    ]
    assert all(c.trades == 2 for c in changed[2:])
    assert [c.close for c in book.candles("1m")] == [100, 110]
    five = book.latest("5m")
    assert five is not None
    assert (five.open, five.high, five.low, five.close, five.volume) == (100, 110, 100, 110, 3)


def test_periods_without_trades_have_no_candle() -> None:
    book = CandleBook()
    book.on_trade(100, 1, T0)
    book.on_trade(101, 1, T0 + 10 * M)
    assert [c.start for c in book.candles("1m")] == [T0, T0 + 10 * M]


def test_candles_are_newest_last_and_limited() -> None:
    book = CandleBook()
    for minute in range(5):
        book.on_trade(100 + minute, 1, T0 + minute * M)
    assert [c.open for c in book.candles("1m")] == [100, 101, 102, 103, 104]
    assert [c.open for c in book.candles("1m", limit=2)] == [103, 104]
    assert [c.open for c in book.candles("1m", limit=50)] == [100, 101, 102, 103, 104]


def test_only_max_candles_are_kept() -> None:
    book = CandleBook(max_candles=3)
    for minute in range(7):
        book.on_trade(100 + minute, 1, T0 + minute * M)
    assert [c.open for c in book.candles("1m")] == [104, 105, 106]
    assert len(book.candles("5m")) == 2


@pytest.mark.parametrize("interval", ["2m", "", "1mo", "1W", "1y"])
def test_unknown_interval_is_invalid_input(interval: str) -> None:
    book = CandleBook()
    with pytest.raises(InvalidInput) as info:
        book.candles(interval)
    assert info.value.field == "interval"
    with pytest.raises(InvalidInput):
        book.latest(interval)


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_must_be_positive(limit: int) -> None:
    with pytest.raises(InvalidInput) as info:
        CandleBook().candles("1m", limit=limit)
    assert info.value.field == "limit"


def test_max_candles_must_be_positive() -> None:
    with pytest.raises(InvalidInput):
        CandleBook(max_candles=0)


@pytest.mark.parametrize(("price", "quantity"), [(0, 1), (1, 0), (-1, 1)])
def test_non_positive_trades_are_refused(price: int, quantity: int) -> None:
    book = CandleBook()
    with pytest.raises(InvariantViolation):
        book.on_trade(price, quantity, T0)
    assert book.candles("1m") == []


def test_a_late_trade_joins_its_kept_candle() -> None:
    book = CandleBook()
    book.on_trade(100, 1, T0 + 10 * S)
    book.on_trade(101, 1, T0 + M + 10 * S)
    changed = _of(_trade(book, 90, 5, T0 + 30 * S))
    assert changed["1m"] == Candle("1m", T0, 100, 100, 90, 90, 6, 550, 2)
    # open and close follow arrival: the late trade closes the candle it joined.
    assert [c.close for c in book.candles("1m")] == [90, 101]
    assert book.latest("1m") == Candle("1m", T0 + M, 101, 101, 101, 101, 1, 101, 1)


def test_a_late_trade_fills_a_gap_in_order() -> None:
    book = CandleBook(max_candles=3)
    book.on_trade(100, 1, T0)
    book.on_trade(102, 1, T0 + 2 * M)
    changed = _of(_trade(book, 101, 1, T0 + M + S))
    assert changed["1m"].start == T0 + M
    assert [c.open for c in book.candles("1m")] == [100, 101, 102]


def test_a_late_trade_before_everything_kept_is_ignored_once_full() -> None:
    book = CandleBook(max_candles=2)
    book.on_trade(101, 1, T0 + M)
    book.on_trade(102, 1, T0 + 2 * M)
    changed = _trade(book, 100, 1, T0)
    assert [c.interval for c in changed] == BINANCE[2:]
    assert [c.open for c in book.candles("1m")] == [101, 102]
    five = book.latest("5m")
    assert five is not None
    assert (five.trades, five.low) == (3, 100)


def test_a_late_trade_before_everything_is_kept_while_there_is_room() -> None:
    book = CandleBook(max_candles=3)
    book.on_trade(101, 1, T0 + M)
    changed = _trade(book, 100, 1, T0)
    assert len(changed) == len(BINANCE)
    assert [c.open for c in book.candles("1m")] == [100, 101]


def test_a_late_trade_into_a_gap_of_a_full_book_drops_the_oldest() -> None:
    book = CandleBook(max_candles=2)
    book.on_trade(100, 1, T0)
    book.on_trade(103, 1, T0 + 3 * M)
    book.on_trade(102, 1, T0 + 2 * M)
    assert [c.open for c in book.candles("1m")] == [102, 103]


def _start(ts: int, length: int) -> int:
    """The period's start, by the calendar: weeks from Monday, months from the first."""
    day = datetime.fromtimestamp(ts // S, UTC)
    if length == INTERVALS["1M"]:
        return int(day.replace(day=1, hour=0, minute=0, second=0).timestamp()) * S
    if length == INTERVALS["1w"]:
        monday = day.date() - timedelta(days=day.weekday())
        return int(datetime(monday.year, monday.month, monday.day, tzinfo=UTC).timestamp()) * S
    return ts - ts % length


def _brute_force(
    trades: list[tuple[int, int, int]], length: int
) -> dict[int, tuple[int, int, int, int, int, int, int]]:
    """Per period start: open, high, low, close (in arrival order), volume, quote, count."""
    out: dict[int, tuple[int, int, int, int, int, int, int]] = {}
    for price, quantity, ts in trades:
        start = _start(ts, length)
        if start in out:
            o, h, lo, _, v, q, n = out[start]
            out[start] = (
                o,
                max(h, price),
                min(lo, price),
                price,
                v + quantity,
                q + price * quantity,
                n + 1,
            )
        else:
            out[start] = (price, price, price, price, quantity, price * quantity, 1)
    return out


def _values(candle: Candle) -> tuple[int, int, int, int, int, int, int]:
    c = candle
    return (c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades)


def _trades(span: int) -> st.SearchStrategy[list[tuple[int, int, int]]]:
    return st.lists(
        st.tuples(st.integers(1, 1000), st.integers(1, 100), st.integers(0, span)), max_size=40
    )


# Months apart (every interval's periods) or seconds apart (one second's trades
# arriving with late ones between them).
trade_lists = st.one_of(_trades(70 * D), _trades(4 * S), _trades(3 * M))


@settings(max_examples=200)
@given(trade_lists, st.integers(1, 6))
def test_kept_candles_are_complete_sorted_and_bounded(
    trades: list[tuple[int, int, int]], max_candles: int
) -> None:
    book = CandleBook(max_candles=max_candles)
    for price, quantity, ts in trades:
        book.on_trade(price, quantity, T0 + ts)
    shifted = [(p, q, T0 + t) for p, q, t in trades]
    for name, length in INTERVALS.items():
        expected = _brute_force(shifted, length)
        kept = book.candles(name)
        assert len(kept) <= max_candles
        starts = [c.start for c in kept]
        assert starts == sorted(set(starts))
        # Whatever is kept holds every trade of its period, late ones included.
        for candle in kept:
            assert candle.interval == name
            assert _values(candle) == expected[candle.start]
        # The newest period always has its candle.
        if trades:
            assert starts[-1] == max(expected)
            assert book.latest(name) == kept[-1]


@settings(max_examples=100)
@given(trade_lists, st.integers(1, 6))
def test_in_order_trades_keep_the_newest_periods(
    trades: list[tuple[int, int, int]], max_candles: int
) -> None:
    ordered = sorted(trades, key=lambda trade: trade[2])
    book = CandleBook(max_candles=max_candles)
    for price, quantity, ts in ordered:
        book.on_trade(price, quantity, T0 + ts)
    for name, length in INTERVALS.items():
        expected = _brute_force([(p, q, T0 + t) for p, q, t in ordered], length)
        newest = sorted(expected)[-max_candles:]
        assert [(c.start, _values(c)) for c in book.candles(name)] == [
            (start, expected[start]) for start in newest
        ]
