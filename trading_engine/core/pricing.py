"""Reference prices of one symbol, in integer ticks: last, mid, micro-price, EWMA, VWAP, mark.

Everything is integer arithmetic; nothing here ever holds a ``float``.

Rounding: every average (mid, micro-price, VWAP, EWMA, the mean in the mark
price) is rounded to the nearest tick, and an exact half rounds down, to the
lower price (``round_half_down``). For the mid of an uncrossed book that is
toward the bid.

Time: ``ts`` is nanoseconds since the epoch, as on events. Windows end at
the latest trade's ``ts`` (or at a later ``now`` given to the query). A trade
stamped earlier than the latest one is counted at the latest ``ts``: the
symbol actor stamps trades in order, so this only happens when the clock
steps back, and it keeps the windows append-only.

Memory is bounded: the VWAP window and the 24-hour statistics keep
per-bucket sums (by default one bucket per second for VWAP and per minute
for the statistics), never individual trades. A window therefore starts on
a bucket boundary: its start is rounded up to the next boundary, so it spans
at most ``window_ns`` and at least ``window_ns - bucket_ns`` plus the
current bucket's part (a bucket of 1 ns makes it exact).

Errors: ``InvalidInput`` for a bad configuration or query argument;
``InvariantViolation`` for market data that cannot come from a sound engine
(a non-positive trade price or quantity, a book side with a price but no
quantity or the reverse).
"""

from __future__ import annotations

from collections import deque

import attrs

from trading_engine.errors import InvalidInput, InvariantViolation

__all__ = [
    "DAY_NS",
    "EWMA_SCALE",
    "MINUTE_NS",
    "SECOND_NS",
    "PriceState",
    "RollingStats",
    "Stats",
    "mark_of",
    "round_half_down",
]

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
DAY_NS = 24 * 60 * MINUTE_NS
EWMA_SCALE = 10**18
"""Fixed-point scale of the EWMA: it is kept in units of 10^-18 tick."""


def round_half_down(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, exact halves down.

    ``denominator`` must be positive (``InvariantViolation`` otherwise).
    """
    if denominator <= 0:
        raise InvariantViolation("round_half_down needs a positive denominator")
    # ceil(n/d - 1/2) == ceil((2n - d) / 2d)
    return -((denominator - 2 * numerator) // (2 * denominator))


def mark_of(mid: int | None, last: int | None, ewma: int | None) -> int | None:
    """The mark price: the median of whichever of ``mid``, ``last``, ``ewma`` exist.

    With all three, the median. With two, their mean rounded half down (so it
    lies between them). With one, that one. With none, ``None``.
    """
    present = sorted(value for value in (mid, last, ewma) if value is not None)
    if not present:
        return None
    if len(present) == 2:
        return round_half_down(present[0] + present[1], 2)
    return present[len(present) // 2]


@attrs.frozen
class Stats:
    """Trades over a window: prices in ticks, ``volume`` in lots.

    ``quote_volume`` is the sum of ``price * quantity`` in tick-lot units
    (times ``Instrument.quote_per_tick_lot`` for quote minor units).
    ``change`` is ``close - open`` in ticks. ``open`` is the first trade to
    arrive in the window's oldest bucket, ``close`` the last trade to arrive.
    """

    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int

    @property
    def change(self) -> int:
        return self.close - self.open

    @property
    def vwap(self) -> int:
        """``quote_volume / volume`` rounded half down."""
        return round_half_down(self.quote_volume, self.volume)


class _Bucket:
    """The trades of one bucket of time; mutable, private to ``RollingStats``."""

    __slots__ = ("close", "high", "index", "low", "open", "quote_volume", "trades", "volume")

    def __init__(self, index: int, price: int, quantity: int) -> None:
        self.index = index
        self.open = price
        self.high = price
        self.low = price
        self.close = price
        self.volume = quantity
        self.quote_volume = price * quantity
        self.trades = 1

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's arguments and then its state (engine snapshots)."""
        return _Bucket, (self.index, self.open, self.volume), self.__getstate__()

    def add(self, price: int, quantity: int) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += quantity
        self.quote_volume += price * quantity
        self.trades += 1


class RollingStats:
    """OHLC, volume and count of trades over a trailing window, kept in time buckets.

    Keeps at most ``retention_ns // bucket_ns + 1`` buckets. A trade older
    than the latest is counted at the latest ``ts`` (see the module docstring).
    Raises ``InvalidInput`` if ``bucket_ns`` or ``retention_ns`` is not positive.
    """

    def __init__(self, retention_ns: int, bucket_ns: int) -> None:
        if bucket_ns <= 0:
            raise InvalidInput("bucket_ns", "must be positive")
        if retention_ns <= 0:
            raise InvalidInput("retention_ns", "must be positive")
        self.retention_ns = retention_ns
        self.bucket_ns = bucket_ns
        self._buckets: deque[_Bucket] = deque()
        self._latest_ts: int | None = None

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's arguments and then its state (engine snapshots)."""
        return RollingStats, (self.retention_ns, self.bucket_ns), self.__getstate__()

    @property
    def latest_ts(self) -> int | None:
        return self._latest_ts

    def add(self, price: int, quantity: int, ts: int) -> None:
        """Count one trade; drops buckets older than the retention."""
        latest = self._latest_ts
        if latest is None or ts > latest:
            latest = ts
            self._latest_ts = ts
        index = latest // self.bucket_ns
        buckets = self._buckets
        if buckets and buckets[-1].index == index:
            buckets[-1].add(price, quantity)
        else:
            buckets.append(_Bucket(index, price, quantity))
        oldest = (latest - self.retention_ns) // self.bucket_ns
        while buckets[0].index <= oldest:
            buckets.popleft()

    def summary(self, window_ns: int | None = None, now: int | None = None) -> Stats | None:
        """Trades in the ``window_ns`` (default: the retention) ending at ``now``.

        ``now`` defaults to the latest trade's ``ts``; an earlier ``now`` is
        taken as the latest ``ts``. ``None`` if no trade is in the window.
        Raises ``InvalidInput`` unless ``0 < window_ns <= retention_ns``.
        """
        if window_ns is None:
            window_ns = self.retention_ns
        elif not 0 < window_ns <= self.retention_ns:
            raise InvalidInput("window_ns", f"must be from 1 to {self.retention_ns}")
        latest = self._latest_ts
        if latest is None:
            return None
        end = latest if now is None else max(now, latest)
        first = (end - window_ns) // self.bucket_ns + 1
        open_ = high = low = close = volume = quote_volume = trades = 0
        for bucket in self._buckets:
            if bucket.index < first:
                continue
            if trades == 0:
                open_, high, low = bucket.open, bucket.high, bucket.low
            else:
                high = max(high, bucket.high)
                low = min(low, bucket.low)
            close = bucket.close
            volume += bucket.volume
            quote_volume += bucket.quote_volume
            trades += bucket.trades
        if not trades:
            return None
        return Stats(
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume,
            quote_volume=quote_volume,
            trades=trades,
        )


class PriceState:
    """One symbol's reference prices, fed by its trades and its top of book.

    ``ewma_alpha_num / ewma_alpha_den`` is the weight of each new trade in
    the EWMA (per trade, not per unit of time); the first trade sets it.
    Raises ``InvalidInput`` unless ``0 < num <= den`` and the windows and
    buckets are positive.
    """

    def __init__(
        self,
        *,
        ewma_alpha_num: int = 1,
        ewma_alpha_den: int = 10,
        vwap_window_ns: int = 5 * MINUTE_NS,
        vwap_bucket_ns: int = SECOND_NS,
        stats_window_ns: int = DAY_NS,
        stats_bucket_ns: int = MINUTE_NS,
    ) -> None:
        if ewma_alpha_den <= 0 or not 0 < ewma_alpha_num <= ewma_alpha_den:
            raise InvalidInput("ewma_alpha", "must be a fraction num/den with 0 < num <= den")
        self.ewma_alpha_num = ewma_alpha_num
        self.ewma_alpha_den = ewma_alpha_den
        self._vwap = RollingStats(vwap_window_ns, vwap_bucket_ns)
        self._stats = RollingStats(stats_window_ns, stats_bucket_ns)
        self._last: int | None = None
        self._last_quantity = 0
        self._last_ts: int | None = None
        self._ewma_fixed: int | None = None
        self._best_bid: int | None = None
        self._bid_quantity = 0
        self._best_ask: int | None = None
        self._ask_quantity = 0

    def on_trade(self, price: int, quantity: int, ts: int) -> None:
        """Record a trade of ``quantity`` lots at ``price`` ticks.

        Raises ``InvariantViolation`` if ``price`` or ``quantity`` is not positive.
        """
        if price <= 0 or quantity <= 0:
            raise InvariantViolation(f"a trade of {quantity} at {price}: both must be positive")
        self._last = price
        self._last_quantity = quantity
        self._last_ts = ts if self._last_ts is None else max(self._last_ts, ts)
        target = price * EWMA_SCALE
        if self._ewma_fixed is None:
            self._ewma_fixed = target
        else:
            step = round_half_down(
                (target - self._ewma_fixed) * self.ewma_alpha_num, self.ewma_alpha_den
            )
            self._ewma_fixed += step
        self._vwap.add(price, quantity, ts)
        self._stats.add(price, quantity, ts)

    def on_book(
        self, best_bid: int | None, bid_quantity: int, best_ask: int | None, ask_quantity: int
    ) -> None:
        """Record the top of the book; ``None`` with quantity 0 for an empty side.

        Raises ``InvariantViolation`` if a side has a price without a positive
        quantity, a quantity without a price, or a non-positive price.
        """
        for name, price, quantity in (
            ("bid", best_bid, bid_quantity),
            ("ask", best_ask, ask_quantity),
        ):
            if price is None:
                if quantity != 0:
                    raise InvariantViolation(f"an empty {name} side with quantity {quantity}")
            elif price <= 0 or quantity <= 0:
                raise InvariantViolation(f"best {name} {price} x {quantity}: must be positive")
        self._best_bid = best_bid
        self._bid_quantity = bid_quantity
        self._best_ask = best_ask
        self._ask_quantity = ask_quantity

    @property
    def last(self) -> int | None:
        """The price of the latest trade to arrive."""
        return self._last

    @property
    def last_quantity(self) -> int:
        """The lots of the latest trade to arrive; 0 before any."""
        return self._last_quantity

    @property
    def last_ts(self) -> int | None:
        """The latest trade ``ts`` seen (the end of the windows)."""
        return self._last_ts

    @property
    def best_bid(self) -> int | None:
        return self._best_bid

    @property
    def best_ask(self) -> int | None:
        return self._best_ask

    @property
    def bid_quantity(self) -> int:
        """The lots at the best bid; 0 for an empty side."""
        return self._bid_quantity

    @property
    def ask_quantity(self) -> int:
        """The lots at the best ask; 0 for an empty side."""
        return self._ask_quantity

    @property
    def mid(self) -> int | None:
        """``(bid + ask) / 2`` rounded half down (toward the bid); ``None`` unless both sides."""
        if self._best_bid is None or self._best_ask is None:
            return None
        return round_half_down(self._best_bid + self._best_ask, 2)

    @property
    def micro_price(self) -> int | None:
        """``(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)`` rounded half down.

        Leans toward the side with less quantity, where the next trade is likely.
        ``None`` unless both sides exist.
        """
        bid, ask = self._best_bid, self._best_ask
        if bid is None or ask is None:
            return None
        return round_half_down(
            bid * self._ask_quantity + ask * self._bid_quantity,
            self._bid_quantity + self._ask_quantity,
        )

    @property
    def ewma_fixed(self) -> int | None:
        """The EWMA in units of ``1 / EWMA_SCALE`` tick, unrounded."""
        return self._ewma_fixed

    @property
    def ewma(self) -> int | None:
        """The EWMA of trade prices rounded half down to a tick; ``None`` before any trade."""
        if self._ewma_fixed is None:
            return None
        return round_half_down(self._ewma_fixed, EWMA_SCALE)

    def vwap(self, window_ns: int | None = None, now: int | None = None) -> int | None:
        """The volume-weighted average price over ``window_ns`` (default 5 minutes).

        Rounded half down; ``None`` with no trade in the window. Raises
        ``InvalidInput`` unless ``0 < window_ns <= vwap_window_ns``.
        """
        stats = self._vwap.summary(window_ns, now)
        return None if stats is None else stats.vwap

    def stats_24h(self, now: int | None = None) -> Stats | None:
        """Open, high, low, close, volumes and count over the last 24 hours (the stats window)."""
        return self._stats.summary(None, now)

    @property
    def mark(self) -> int | None:
        """The mark price: ``mark_of(mid, last, ewma)``."""
        return mark_of(self.mid, self._last, self.ewma)

    def reference(self) -> int | None:
        """The price that price bands are centred on: the mark price."""
        return self.mark
