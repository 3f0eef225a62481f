"""The order book: price levels in price-time priority, one ``BookSide`` per side.

Each side keeps a dict of price to ``Level`` and a heap of level keys
(``price`` for asks, ``-price`` for bids), so the best price is ``heap[0]``
in O(1). A level holds its orders in a deque in arrival order with its total
quantity. Removing an order from the middle of a queue is O(1) amortised: the
order is marked not ``resting`` and left in the deque until it reaches the
front or the deque is compacted (when dead entries outnumber live ones).

Invariants, checked by ``BookSide.check``:
- every key in ``levels`` has a live level (``count > 0``) whose
  ``quantity`` is the sum of its resting orders' shown quantity, ``remaining -
  hidden`` (an iceberg hides part of its remainder; every other order none);
- ``heap[0]`` is the key of a live level whenever ``levels`` is not empty
  (stale keys deeper in the heap are skipped when they surface).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator

from trading_engine.core.enums import Side
from trading_engine.core.orders import Order
from trading_engine.errors import InvariantViolation

__all__ = ["Book", "BookSide", "Level"]

_COMPACT_SLACK = 8


class Level:
    """One price level: orders in time priority and their total open quantity.

    ``count`` is the number of resting orders in ``orders``; the other entries
    are dead ones awaiting removal.
    """

    __slots__ = ("count", "orders", "price", "quantity", "side")

    def __init__(self, side: Side, price: int) -> None:
        self.side = side
        self.price = price
        self.orders: deque[Order] = deque()
        self.quantity = 0
        self.count = 0

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's arguments and then its state (engine snapshots)."""
        return Level, (self.side, self.price), self.__getstate__()

    def live(self) -> Iterator[Order]:
        """The resting orders in priority order."""
        return (o for o in self.orders if o.resting)


class BookSide:
    """One side of the book. ``sign`` is +1 for asks and -1 for bids: key = sign * price."""

    __slots__ = ("heap", "levels", "side", "sign")

    def __init__(self, side: Side, sign: int) -> None:
        self.side = side
        self.sign = sign
        self.levels: dict[int, Level] = {}
        self.heap: list[int] = []

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's arguments and then its state (engine snapshots)."""
        return BookSide, (self.side, self.sign), self.__getstate__()

    def best(self) -> int | None:
        """The best price in ticks, or None when the side is empty."""
        heap = self.heap
        return heap[0] * self.sign if heap else None

    def add(self, order: Order) -> Level:
        """Put ``order`` at the back of its price level."""
        price = order.price
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = Level(self.side, price)
            heapq.heappush(self.heap, price * self.sign)
            if len(self.heap) > 2 * len(self.levels) + 64:
                self._rebuild_heap()
        level.orders.append(order)
        level.quantity += order.remaining - order.hidden
        level.count += 1
        order.resting = True
        return level

    def remove(self, order: Order) -> Level:
        """Take a resting ``order`` out of the book; returns its level."""
        level = self.levels[order.price]
        order.resting = False
        level.quantity -= order.remaining - order.hidden
        level.count -= 1
        if level.count == 0:
            self.drop(level)
        else:
            orders = level.orders
            if orders[0] is order:
                orders.popleft()
            elif len(orders) > 2 * level.count + _COMPACT_SLACK:
                level.orders = deque(o for o in orders if o.resting)
        return level

    def drop(self, level: Level) -> None:
        """Forget an emptied level and keep ``heap[0]`` pointing at a live one."""
        levels = self.levels
        del levels[level.price]
        heap = self.heap
        sign = self.sign
        while heap and heap[0] * sign not in levels:
            heapq.heappop(heap)

    def _rebuild_heap(self) -> None:
        self.heap = [price * self.sign for price in self.levels]
        heapq.heapify(self.heap)

    def prices(self) -> list[int]:
        """Every price with resting orders, best first."""
        return sorted(self.levels, key=self.sign.__mul__)

    def depth(self, limit: int | None = None) -> list[tuple[int, int]]:
        """L2: ``(price, total quantity)`` for the best ``limit`` levels, best first."""
        prices = self.prices() if limit is None else self._best_prices(limit)
        levels = self.levels
        return [(price, levels[price].quantity) for price in prices]

    def _best_prices(self, limit: int) -> list[int]:
        keys = heapq.nsmallest(limit, (price * self.sign for price in self.levels))
        return [key * self.sign for key in keys]

    def check(self) -> None:
        """Raise ``InvariantViolation`` if a documented invariant does not hold."""
        for price, level in self.levels.items():
            live = list(level.live())
            if level.price != price or not live or level.count != len(live):
                raise InvariantViolation(f"{self.side} level {price}: bad count or empty")
            if level.quantity != sum(o.remaining - o.hidden for o in live):
                raise InvariantViolation(f"{self.side} level {price}: quantity out of sync")
            if any(o.price != price or o.remaining - o.hidden <= 0 or o.hidden < 0 for o in live):
                raise InvariantViolation(f"{self.side} level {price}: misplaced order")
        if self.levels and (not self.heap or self.heap[0] * self.sign not in self.levels):
            raise InvariantViolation(f"{self.side}: heap top is not a live level")
        if self.levels and self.heap[0] * self.sign != self.prices()[0]:
            raise InvariantViolation(f"{self.side}: heap top is not the best price")


class Book:
    """Both sides of one symbol's book."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = BookSide(Side.BUY, -1)
        self.asks = BookSide(Side.SELL, 1)

    def side(self, side: Side) -> BookSide:
        return self.bids if side is Side.BUY else self.asks

    def best_bid(self) -> int | None:
        return self.bids.best()

    def best_ask(self) -> int | None:
        return self.asks.best()

    def is_crossed(self) -> bool:
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid >= ask

    def orders(self) -> Iterator[Order]:
        """L3: every resting order, bids best first then asks best first, in queue order."""
        for book_side in (self.bids, self.asks):
            for price in book_side.prices():
                yield from book_side.levels[price].live()

    def check(self) -> None:
        self.bids.check()
        self.asks.check()
