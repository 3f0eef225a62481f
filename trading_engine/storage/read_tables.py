"""The read tables' port: what the API reads of history, beside the live engine.

The engine keeps every open order but only the newest of what is over; the
read tables (PostgreSQL's ``orders``, ``trades``, ``ledger_entries``,
``balances``), projected from the journal a moment after each commit, keep
all of it. ``PostgresJournal`` is the adapter; with the in-memory journal
there are none, and the API says so (history is 503 ``history_unavailable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol, TypedDict

__all__ = ["ReadTables", "TradeDetails"]


class TradeDetails(TypedDict):
    """A trade as the read tables hold it: price in ticks, quantity in lots, ts in ns."""

    price: int
    quantity: int
    buyer: str
    seller: str
    ts: int


class ReadTables(Protocol):
    projected_id: int
    """The last journal id the tables hold."""
    projection_failures: int
    """Projections that failed and were retried."""

    def read_tables_lag(self) -> float:
        """Seconds since the oldest commit the tables lack was made (0: caught up)."""
        ...

    async def order_history(
        self, user_id: str, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """``user_id``'s orders, newest first, with ids below ``before``."""
        ...

    async def trade_history(
        self, user_id: str, *, before: tuple[Decimal, str, int, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """``user_id``'s fills, newest first, after the cursor ``before``."""
        ...

    async def order_fills(
        self, user_id: str, orders: Sequence[tuple[int, int, int]]
    ) -> list[dict[str, Any]]:
        """The fills of ``user_id``'s ``orders`` (order id, and the times, in ns, of its
        creation and its last change): each trade's symbol, trade_id, price (ticks),
        quantity (lots), aggressor, both sides' orders, users and fees, and ts (ns)."""
        ...

    async def trade(self, symbol: str, trade_id: int) -> TradeDetails | None:
        """One trade, or None if the tables don't have it (yet)."""
        ...
