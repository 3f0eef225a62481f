"""OHLCV candles of one symbol for the intervals in ``INTERVALS``.

The intervals are Binance's: 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w
1M. A candle covers ``[start, end)``: ``start`` is a multiple of the interval
counted from the epoch (``ts - ts % interval``; days are UTC days), except that
a week starts on Monday 00:00 UTC and a month ("1M") is a calendar month of
UTC (``period_start``, ``period_end``). Each interval keeps its own candles,
so every one has ``max_candles`` of history (the 1s ones about 17 minutes of
it), bounded in memory whatever the traffic. Prices are ticks, ``volume``
lots, ``quote_volume`` the sum of ``price * quantity`` in tick-lot units. An
interval with no trade has no candle: consumers fill gaps with the previous
close if they want them.

``open`` and ``close`` are the first and the last trade to *arrive* in a
candle. The symbol actor stamps trades in order, so that is also time order,
unless the clock steps back; then:

Late trades. A trade whose ``ts`` falls before the newest candle of an
interval goes into the candle of its own period (created if that period
had no trade yet), provided that candle is among the ``max_candles`` newest
of the interval, which is all the book keeps. A trade for a period older
than every kept candle when the interval is full is ignored for that
interval: the candle it belongs to was already dropped, and recreating it
from one trade would publish a wrong candle.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Final, NamedTuple

from trading_engine.errors import InvalidInput, InvariantViolation

__all__ = ["INTERVALS", "MONTH", "Candle", "CandleBook", "period_end", "period_start"]

_SECOND: Final = 1_000_000_000
_MINUTE: Final = 60 * _SECOND
_HOUR: Final = 60 * _MINUTE
_DAY: Final = 24 * _HOUR
MONTH: Final = "1M"
INTERVALS: dict[str, int] = {
    "1s": _SECOND,
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1h": _HOUR,
    "2h": 2 * _HOUR,
    "4h": 4 * _HOUR,
    "6h": 6 * _HOUR,
    "8h": 8 * _HOUR,
    "12h": 12 * _HOUR,
    "1d": _DAY,
    "3d": 3 * _DAY,
    "1w": 7 * _DAY,
    MONTH: 31 * _DAY,
}
"""Interval name to its length in nanoseconds; a month's is its longest (each one's own
is ``period_end - period_start``)."""
_OFFSETS: Final = {"1w": 4 * _DAY}
"""Where an interval's periods start counted from the epoch: 1970-01-01 was a Thursday,
so weeks, which start on Monday, are 4 days later."""
_FIXED: Final = tuple(
    (name, length, _OFFSETS.get(name, 0)) for name, length in INTERVALS.items() if name != MONTH
)


def _month_start(ts: int) -> int:
    day = datetime.fromtimestamp(ts // _SECOND, UTC)
    return calendar.timegm((day.year, day.month, 1, 0, 0, 0)) * _SECOND


def _next_month(start: int) -> int:
    day = datetime.fromtimestamp(start // _SECOND, UTC)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0)) * _SECOND


def period_start(interval: str, ts: int) -> int:
    """The start of the period of ``interval`` that holds ``ts`` (nanoseconds, UTC)."""
    if interval == MONTH:
        return _month_start(ts)
    return ts - (ts - _OFFSETS.get(interval, 0)) % INTERVALS[interval]


def period_end(interval: str, start: int) -> int:
    """The first nanosecond after the period of ``interval`` that starts at ``start``."""
    if interval == MONTH:
        return _next_month(start)
    return start + INTERVALS[interval]


class Candle(NamedTuple):
    """One interval's trades; immutable (an update makes a new candle).

    A named tuple: one is made per interval per trade, and compiled code
    builds a tuple several times faster than a frozen attrs instance.
    """

    interval: str
    start: int
    """Nanoseconds since the epoch, a multiple of the interval."""
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int

    @property
    def end(self) -> int:
        """The first nanosecond after the candle."""
        return period_end(self.interval, self.start)

    def with_trade(self, price: int, quantity: int) -> Candle:
        """This candle with one more trade, which becomes the close."""
        return Candle(
            self.interval, self.start, self.open, max(self.high, price), min(self.low, price),
            price, self.volume + quantity, self.quote_volume + price * quantity, self.trades + 1,
        )  # fmt: skip


def _first_candle(interval: str, start: int, price: int, quantity: int) -> Candle:
    return Candle(interval, start, price, price, price, price, quantity, price * quantity, 1)


def _combined(candle: Candle, later: Candle) -> Candle:
    """``candle`` with the trades of ``later`` (which arrived after its own) added."""
    return Candle(
        candle.interval, candle.start, candle.open, max(candle.high, later.high),
        min(candle.low, later.low), later.close, candle.volume + later.volume,
        candle.quote_volume + later.quote_volume, candle.trades + later.trades,
    )  # fmt: skip


def _as(interval: str, start: int, part: Candle) -> Candle:
    """``part``'s trades as the first of a candle of ``interval`` starting at ``start``."""
    return Candle(
        interval, start, part.open, part.high, part.low, part.close, part.volume,
        part.quote_volume, part.trades,
    )  # fmt: skip


_ALL: Final = tuple(INTERVALS)
_SECONDS: Final = "1s"
_WIDER: Final = tuple(entry for entry in _FIXED if entry[0] != _SECONDS)


class CandleBook:
    """The newest ``max_candles`` candles of each interval in ``INTERVALS``, oldest first.

    Invariants: per interval, candles are sorted by ``start`` with no two
    alike, and there are at most ``max_candles``. Raises ``InvalidInput``
    unless ``max_candles`` is a positive integer.

    A trade in time order changes one candle, that of its second (``_open``); the
    wider intervals take that second's trades as one when the next second starts
    (``_fold``), so a trade costs one candle, not sixteen, and each second one more
    for each interval. Until then reads fold it in themselves (``latest``,
    ``candles``). A late trade (see the module's docstring) goes into every
    interval's candle at once, after the open second is folded.
    """

    def __init__(self, max_candles: int = 1000) -> None:
        if max_candles <= 0:
            raise InvalidInput("max_candles", "must be a positive integer")
        self.max_candles = max_candles
        self._series: dict[str, list[Candle]] = {name: [] for name in INTERVALS}
        self._open: Candle | None = None
        """The newest 1s candle while the wider intervals do not hold it yet."""
        self._late: dict[str, Candle] | None = None
        """The candles the last trade changed, if it was late; else None (the latest)."""
        self._month = (0, 0)
        """The calendar month of the last second folded: its start and end."""

    def on_trade(self, price: int, quantity: int, ts: int) -> tuple[str, ...]:
        """Add a trade to the candle of each interval; the intervals whose candle it changed.

        Every interval in ``INTERVALS`` order, except those for which the trade was
        too late to keep (see the module docstring); ``changed`` gives each one's
        candle. Raises ``InvariantViolation`` if ``price`` or ``quantity`` is not
        positive.
        """
        if price <= 0 or quantity <= 0:
            raise InvariantViolation(f"a trade of {quantity} at {price}: both must be positive")
        second = ts - ts % _SECOND
        seconds = self._series[_SECONDS]
        current = self._open
        self._late = None
        if current is not None and current.start == second:
            current = current.with_trade(price, quantity)
            seconds[-1] = self._open = current
            return _ALL
        if not seconds or seconds[-1].start < second:
            self._fold()
            current = _first_candle(_SECONDS, second, price, quantity)
            seconds.append(current)
            if len(seconds) > self.max_candles:
                del seconds[0]
            self._open = current
            return _ALL
        self._fold()
        late: dict[str, Candle] = {}
        for name in _ALL:
            start = period_start(name, ts)
            candle = self._put(
                self._series[name], name, start, _first_candle(name, start, price, quantity)
            )
            if candle is not None:
                late[name] = candle
        self._late = late
        return tuple(late)

    def changed(self, interval: str) -> Candle:
        """The candle of ``interval`` that the last trade changed (``on_trade`` named it)."""
        if self._late is not None:
            return self._late[interval]
        candle = self.latest(interval)
        assert candle is not None, "a trade made it"
        return candle

    def _fold(self) -> None:
        """Put the open second's trades into the wider intervals' candles."""
        current = self._open
        if current is None:
            return
        self._open = None
        series = self._series
        for name, length, offset in _WIDER:
            start = current.start - (current.start - offset) % length
            self._put(series[name], name, start, current)
        self._put(series[MONTH], MONTH, self._month_of(current.start), current)

    def _start_of(self, interval: str, ts: int) -> int:
        return self._month_of(ts) if interval == MONTH else period_start(interval, ts)

    def _month_of(self, ts: int) -> int:
        start, end = self._month
        if not start <= ts < end:
            start = _month_start(ts)  # once a month, not once a second
            self._month = (start, _next_month(start))
        return start

    def _put(self, series: list[Candle], name: str, start: int, part: Candle) -> Candle | None:
        """Add ``part``'s trades to the candle of ``series`` at ``start``; the candle, or
        None if that period is older than every kept one and the series is full."""
        # The newest candle takes nearly everything; a late trade walks back to its place.
        position = len(series)
        while position > 0 and series[position - 1].start > start:
            position -= 1
        if position > 0 and series[position - 1].start == start:
            candle = _combined(series[position - 1], part)
            series[position - 1] = candle
            return candle
        if position == 0 and len(series) >= self.max_candles:
            return None
        candle = _as(name, start, part)
        series.insert(position, candle)
        if len(series) > self.max_candles:
            del series[0]
        return candle

    def candles(self, interval: str, limit: int | None = None) -> list[Candle]:
        """The kept candles of ``interval``, newest last; the newest ``limit`` if given.

        Raises ``InvalidInput`` for an interval not in ``INTERVALS`` or a
        ``limit`` that is not a positive integer.
        """
        series = list(self._series_of(interval))
        if limit is not None and limit <= 0:
            raise InvalidInput("limit", "must be a positive integer")
        current = self._open
        if current is not None and interval != _SECONDS:
            start = self._start_of(interval, current.start)
            if series and series[-1].start == start:
                series[-1] = _combined(series[-1], current)
            else:
                series.append(_as(interval, start, current))
                if len(series) > self.max_candles:
                    del series[0]
        return series if limit is None else series[-limit:]

    def latest(self, interval: str) -> Candle | None:
        """The newest candle of ``interval``, or ``None``; ``InvalidInput`` as ``candles``."""
        series = self._series_of(interval)
        current = self._open
        if current is None or interval == _SECONDS:
            return series[-1] if series else None
        start = self._start_of(interval, current.start)
        if series and series[-1].start == start:
            return _combined(series[-1], current)
        return _as(interval, start, current)

    def _series_of(self, interval: str) -> list[Candle]:
        series = self._series.get(interval)
        if series is None:
            raise InvalidInput("interval", f"must be one of {', '.join(INTERVALS)}")
        return series
