"""An L2 book kept from ``BookLevel`` events: price to total quantity, per side.

Best prices come from a heap per side with stale keys skipped lazily, as in
``core.book``. ``seq`` is the ``seq`` of the last level applied.
"""

from __future__ import annotations

import heapq

from trading_engine.core.enums import Side

__all__ = ["L2Book"]


class _Side:
    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[int, int] = {}
        self.heap: list[int] = []

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's arguments and then its state (engine snapshots)."""
        return _Side, (self.sign,), self.__getstate__()

    def set(self, price: int, quantity: int) -> None:
        if quantity:
            if price not in self.levels:
                heapq.heappush(self.heap, price * self.sign)
                if len(self.heap) > 2 * len(self.levels) + 64:
                    self.heap = [p * self.sign for p in self.levels]
                    self.heap.append(price * self.sign)
                    heapq.heapify(self.heap)
            self.levels[price] = quantity
        else:
            self.levels.pop(price, None)
        heap = self.heap
        while heap and heap[0] * self.sign not in self.levels:
            heapq.heappop(heap)

    def best(self) -> tuple[int, int] | None:
        if not self.heap:
            return None
        price = self.heap[0] * self.sign
        return price, self.levels[price]

    def top(self, depth: int | None) -> list[tuple[int, int]]:
        keys = (p * self.sign for p in self.levels)
        ordered = sorted(keys) if depth is None else heapq.nsmallest(depth, keys)
        return [(k * self.sign, self.levels[k * self.sign]) for k in ordered]


class L2Book:
    def __init__(self) -> None:
        self._bids = _Side(-1)
        self._asks = _Side(1)
        self.seq = 0

    def set(self, side: Side, price: int, quantity: int, seq: int) -> None:
        """Apply one level's new total (0 removes it)."""
        (self._bids if side is Side.BUY else self._asks).set(price, quantity)
        self.seq = seq

    def reset(self, seq: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        """Replace the whole book with a snapshot."""
        self._bids = _Side(-1)
        self._asks = _Side(1)
        for price, quantity in bids:
            self._bids.set(price, quantity)
        for price, quantity in asks:
            self._asks.set(price, quantity)
        self.seq = seq

    def best_bid(self) -> tuple[int, int] | None:
        """``(price, quantity)`` of the best bid, or None."""
        return self._bids.best()

    def best_ask(self) -> tuple[int, int] | None:
        return self._asks.best()

    def depth(
        self, depth: int | None = None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``(bids, asks)``, best first, at most ``depth`` levels each."""
        return self._bids.top(depth), self._asks.top(depth)
