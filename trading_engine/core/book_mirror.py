"""One symbol's L2 book mirrored from the ``book.SYMBOL`` channel's messages.

The channel (``actors/marketdata.py``) sends a ``snapshot`` (every level, and
``seq``), then ``delta``s (each level that changed with its new total quantity,
``"0"`` for a level gone). A gateway keeps a mirror per symbol to answer new
subscribers (``gateway/feed.py``); a Binance-dialect connection keeps one per
symbol for partial depths and ``bookTicker`` (``api/binance/payloads.py``).

Levels stay the decimal strings the channel wrote (the engine writes a price
one way only, ``numbers.format_decimal``), so that applying a delta costs one
decimal parse (is the quantity zero?) and a book rendered from the mirror reads
as the engine's own. They are ordered by value only when asked for. Whether a
delta follows the mirror's ``seq`` is the caller's to check: each answers a gap
in its own way.
"""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any, Final

__all__ = ["BookMirror", "Level"]

Level = tuple[str, str]
"""``(price, quantity)`` as the channel writes them."""

_ZERO: Final = Decimal(0)


class BookMirror:
    """Each side's levels (price to quantity, decimal strings) and the ``seq`` of the
    last message applied."""

    def __init__(self) -> None:
        self._bids = _Side(highest_first=True)
        self._asks = _Side(highest_first=False)
        self.seq = 0

    @property
    def bids(self) -> dict[str, str]:
        """Price to quantity; not to be changed but through ``apply``."""
        return self._bids.levels

    @property
    def asks(self) -> dict[str, str]:
        return self._asks.levels

    def apply(self, message: dict[str, Any]) -> None:
        """Take a ``snapshot`` (the whole book, in place of this one) or a ``delta`` (a
        quantity of 0 removes its level). Raises ``KeyError``, ``TypeError`` or
        ``ValueError`` on a message of another shape, ``decimal.InvalidOperation`` on a
        number that is not one."""
        if message["type"] == "snapshot":
            self._bids.replace(message["bids"])
            self._asks.replace(message["asks"])
        else:
            self._bids.merge(message["bids"])
            self._asks.merge(message["asks"])
        self.seq = int(message["seq"])

    def levels(self, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """``(bids, asks)``, best first (bids highest, asks lowest), at most ``depth``
        levels each (all without)."""
        return self._bids.best(depth), self._asks.best(depth)


class _Side:
    """One side's levels, and each price's value (parsed once, when its level comes)."""

    def __init__(self, highest_first: bool) -> None:
        self.highest_first = highest_first
        self.levels: dict[str, str] = {}
        self.values: dict[str, Decimal] = {}

    def replace(self, levels: list[list[str]]) -> None:
        self.levels = dict(levels)
        self.values = {price: Decimal(price) for price in self.levels}

    def merge(self, levels: list[list[str]]) -> None:
        for price, quantity in levels:
            if Decimal(quantity) == _ZERO:
                self.levels.pop(price, None)
                self.values.pop(price, None)
            else:
                if price not in self.values:
                    self.values[price] = Decimal(price)
                self.levels[price] = quantity

    def best(self, depth: int | None) -> list[Level]:
        value = self.values.__getitem__
        if depth is None:
            prices = sorted(self.levels, key=value, reverse=self.highest_first)
        elif self.highest_first:
            prices = heapq.nlargest(depth, self.levels, key=value)
        else:
            prices = heapq.nsmallest(depth, self.levels, key=value)
        levels = self.levels
        return [(price, levels[price]) for price in prices]
