"""OHLCV candles of one symbol for the intervals in ``INTERVALS``.

A candle covers ``[start, start + interval)`` where ``start`` is a multiple
of the interval counted from the epoch (``ts - ts % interval``; days are UTC
days). Prices are ticks, ``volume`` lots, ``quote_volume`` the sum of
``price * quantity`` in tick-lot units. An interval with no trade has no
candle: consumers fill gaps with the previous close if they want them.

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

from typing import NamedTuple

from trading_engine.errors import InvalidInput, InvariantViolation

__all__ = ["INTERVALS", "Candle", "CandleBook"]

_MINUTE = 60 * 1_000_000_000
INTERVALS: dict[str, int] = {
    "1m": _MINUTE,
    "5m": 5 * _MINUTE,
    "1h": 60 * _MINUTE,
    "1d": 24 * 60 * _MINUTE,
}
"""Interval name to its length in nanoseconds."""


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
        return self.start + INTERVALS[self.interval]

    def with_trade(self, price: int, quantity: int) -> Candle:
        """This candle with one more trade, which becomes the close."""
        return Candle(
            self.interval, self.start, self.open, max(self.high, price), min(self.low, price),
            price, self.volume + quantity, self.quote_volume + price * quantity, self.trades + 1,
        )  # fmt: skip


def _first_candle(interval: str, start: int, price: int, quantity: int) -> Candle:
    return Candle(interval, start, price, price, price, price, quantity, price * quantity, 1)


class CandleBook:
    """The newest ``max_candles`` candles of each interval in ``INTERVALS``, oldest first.

    Invariants: per interval, candles are sorted by ``start`` with no two
    alike, and there are at most ``max_candles``. Raises ``InvalidInput``
    unless ``max_candles`` is a positive integer.
    """

    def __init__(self, max_candles: int = 1000) -> None:
        if max_candles <= 0:
            raise InvalidInput("max_candles", "must be a positive integer")
        self.max_candles = max_candles
        self._series: dict[str, list[Candle]] = {name: [] for name in INTERVALS}

    def on_trade(self, price: int, quantity: int, ts: int) -> list[Candle]:
        """Add a trade to the candle of each interval; return the candles it changed.

        One candle per interval in ``INTERVALS`` order, except intervals for
        which the trade was too late to keep (see the module docstring).
        Raises ``InvariantViolation`` if ``price`` or ``quantity`` is not positive.
        """
        if price <= 0 or quantity <= 0:
            raise InvariantViolation(f"a trade of {quantity} at {price}: both must be positive")
        changed: list[Candle] = []
        for name, length in INTERVALS.items():
            candle = self._add(self._series[name], name, ts - ts % length, price, quantity)
            if candle is not None:
                changed.append(candle)
        return changed

    def _add(
        self, series: list[Candle], name: str, start: int, price: int, quantity: int
    ) -> Candle | None:
        # The newest candle takes nearly every trade; a late one walks back to its place.
        position = len(series)
        while position > 0 and series[position - 1].start > start:
            position -= 1
        if position > 0 and series[position - 1].start == start:
            candle = series[position - 1].with_trade(price, quantity)
            series[position - 1] = candle
            return candle
        if position == 0 and len(series) >= self.max_candles:
            return None
        candle = _first_candle(name, start, price, quantity)
        series.insert(position, candle)
        if len(series) > self.max_candles:
            del series[0]
        return candle

    def candles(self, interval: str, limit: int | None = None) -> list[Candle]:
        """The kept candles of ``interval``, newest last; the newest ``limit`` if given.

        Raises ``InvalidInput`` for an interval not in ``INTERVALS`` or a
        ``limit`` that is not a positive integer.
        """
        series = self._series_of(interval)
        if limit is None:
            return list(series)
        if limit <= 0:
            raise InvalidInput("limit", "must be a positive integer")
        return series[-limit:]

    def latest(self, interval: str) -> Candle | None:
        """The newest candle of ``interval``, or ``None``; ``InvalidInput`` as ``candles``."""
        series = self._series_of(interval)
        return series[-1] if series else None

    def _series_of(self, interval: str) -> list[Candle]:
        series = self._series.get(interval)
        if series is None:
            raise InvalidInput("interval", f"must be one of {', '.join(INTERVALS)}")
        return series
