"""The order-entry load generators' pure parts: the orders, the clock, the figures.

No I/O here, so that each piece is tested alone:

- ``OrderFlow``: seeded limit orders on several symbols, both sides, around
  each symbol's mid price; an order crosses the spread about a third of the
  time (the engine benchmark's and ``loadtest``'s mix).
- ``Resting``: one user's orders that rest, oldest first, so that a client
  cancels the oldest once it holds more than its cap, and the book stays
  bounded however long the run.
- ``Schedule``: when an open-loop client sends each order. The times come
  from the clock and the rate alone, never from the answers, so a slow
  answer does not delay the orders after it (no coordinated omission); a
  latency is measured from the order's scheduled time.
- ``latency_ms``: the percentiles every benchmark prints.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

__all__ = ["Market", "OrderFlow", "Resting", "Schedule", "latency_ms", "percentile_ms"]

RESTING_STATUSES = frozenset({"open", "partially_filled"})
"""An order's ``status`` in its answer when some of it rests on the book."""


@attrs.frozen
class Market:
    """A symbol the flow trades: its mid price (whole quote units) and order quantity."""

    symbol: str
    mid: int
    quantity: str


@attrs.define
class OrderFlow:
    """Seeded limit orders across ``markets``: a buy at ``mid - offset`` or a sell at
    ``mid + offset``, ``offset`` drawn from ``-3..6``, so that about a third cross."""

    markets: Sequence[Market]
    rng: random.Random

    @classmethod
    def seeded(cls, markets: Sequence[Market], seed: int) -> OrderFlow:
        if not markets:
            raise ValueError("an order flow needs at least one market")
        return cls(markets, random.Random(seed))  # noqa: S311 - a seeded workload

    def next_order(self) -> dict[str, Any]:
        """The body of ``POST /orders`` (and of ``order.place``'s ``args``)."""
        rng = self.rng
        market = self.markets[rng.randrange(len(self.markets))]
        buy = rng.random() < 0.5
        offset = rng.randint(-3, 6)
        price = market.mid - offset if buy else market.mid + offset
        return {"symbol": market.symbol, "side": "buy" if buy else "sell", "type": "limit",
                "quantity": market.quantity, "price": str(price)}  # fmt: skip

    def batch(self, size: int) -> list[dict[str, Any]]:
        return [self.next_order() for _ in range(size)]


@attrs.define
class Resting:
    """One client's resting orders, oldest first, and the cap beyond which it cancels.

    An order recorded here may since have traded away; its cancel is then
    answered 409 or 404, which the benchmarks count like any answer.
    """

    cap: int
    ids: deque[str] = attrs.field(factory=deque)

    def record(self, order_id: str, status: str) -> None:
        """Note a placed order's answer: it rests if its status says so."""
        if status in RESTING_STATUSES:
            self.ids.append(order_id)

    def over(self) -> bool:
        return len(self.ids) > self.cap

    def oldest(self, count: int = 1) -> list[str]:
        """Take (and forget) up to ``count`` of the oldest, to be cancelled."""
        return [self.ids.popleft() for _ in range(min(count, len(self.ids)))]


@attrs.frozen
class Schedule:
    """Open-loop send times: order ``i`` of all clients at ``start + i / rate``.

    Client ``client`` of ``clients`` sends orders ``client``,
    ``client + clients``, ...: together they offer ``rate`` evenly in time.
    """

    start: float
    rate: float
    clients: int = 1

    def __attrs_post_init__(self) -> None:
        if self.rate <= 0 or self.clients < 1:
            raise ValueError("a schedule needs a positive rate and at least one client")

    def at(self, client: int, nth: int) -> float:
        """When ``client`` sends its ``nth`` order (both from 0)."""
        return self.start + (client + nth * self.clients) / self.rate

    def count(self, client: int, seconds: float) -> int:
        """How many orders ``client`` sends in the ``seconds`` after ``start``."""
        total = int(seconds * self.rate)
        return max(0, (total - client + self.clients - 1) // self.clients)


def percentile_ms(sorted_values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank, from below) of seconds, in ms, to 3
    places; 0 for no values. ``sorted_values`` must be sorted."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return round(sorted_values[index] * 1000, 3)


def latency_ms(seconds: Iterable[float], prefix: str = "") -> dict[str, float]:
    """``p50_ms``, ``p99_ms``, ``p999_ms`` and ``max_ms`` of latencies in seconds."""
    values = sorted(seconds)
    return {
        f"{prefix}p50_ms": percentile_ms(values, 0.50),
        f"{prefix}p99_ms": percentile_ms(values, 0.99),
        f"{prefix}p999_ms": percentile_ms(values, 0.999),
        f"{prefix}max_ms": round(values[-1] * 1000, 3) if values else 0.0,
    }
