"""A deliberately minimal book, the yardstick for the replay benchmark.

A dict of price to deque, a heap of prices per side and an id index; lazy
cancels; no events, fees, statuses or checks. Same replay semantics as the
engine on the workload format, so both produce the same trade digest.
"""

from __future__ import annotations

import heapq
from collections import deque

from trading_engine.benchmarks.workload import Op

__all__ = ["MinimalBook"]


class MinimalBook:
    """Price-time priority with nothing else; trades are ``(maker, taker, price, qty)``."""

    def __init__(self) -> None:
        self.bids: dict[int, deque[list[int]]] = {}
        self.asks: dict[int, deque[list[int]]] = {}
        self.bid_heap: list[int] = []
        self.ask_heap: list[int] = []
        self.index: dict[int, list[int]] = {}
        self.trades: list[tuple[int, int, int, int]] = []

    def run(self, ops: list[Op]) -> None:
        for op in ops:
            if op.kind == "C":
                entry = self.index.pop(op.order_id, None)
                if entry is not None:
                    entry[1] = 0
            else:
                self.new(op.order_id, op.side == "B", op.type, op.price, op.quantity)

    def new(self, oid: int, buy: bool, typ: str, price: int, qty: int) -> None:
        levels, heap, sign = (
            (self.asks, self.ask_heap, 1) if buy else (self.bids, self.bid_heap, -1)
        )
        market = typ == "M"
        trades = self.trades
        index = self.index
        while qty and heap:
            best = heap[0] * sign
            if not market and (best > price if buy else best < price):
                break
            queue = levels.get(best)
            while queue and qty:
                entry = queue[0]
                if entry[1] == 0:
                    queue.popleft()
                    continue
                fill = min(qty, entry[1])
                trades.append((entry[0], oid, best, fill))
                entry[1] -= fill
                qty -= fill
                if entry[1] == 0:
                    queue.popleft()
                    del index[entry[0]]
            if not queue:
                levels.pop(best, None)
                heapq.heappop(heap)
        if qty and typ == "L":
            own, own_heap, own_sign = (
                (self.bids, self.bid_heap, -1) if buy else (self.asks, self.ask_heap, 1)
            )
            queue = own.get(price)
            if queue is None:
                queue = own[price] = deque()
                heapq.heappush(own_heap, price * own_sign)
            entry = [oid, qty]
            queue.append(entry)
            index[oid] = entry

    def resting(self) -> int:
        return len(self.index)
