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

import attrs

__all__ = ["EVERYTHING", "ReadTables", "TradeDetails", "Window"]


@attrs.frozen
class Window:
    """Which of a user's orders or fills a history read returns, besides its cursor: all
    (the default), or those of one ``symbol``, with an id (order id for orders, trade id
    for fills) of at least ``from_id``, of the order ``order_id`` (fills only), with the
    client order id ``client_order_id`` (orders only), made at ``since`` or later and
    before ``until`` (ns since the epoch). ``oldest_first``: the oldest of them first (the
    default is the newest first)."""

    symbol: str | None = None
    from_id: int | None = None
    order_id: int | None = None
    client_order_id: str | None = None
    since: int | None = None
    until: int | None = None
    oldest_first: bool = False


EVERYTHING = Window()
"""Every order or fill, newest first."""


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
        self, user_id: str, *, before: int | None, limit: int, window: Window = EVERYTHING
    ) -> list[dict[str, Any]]:
        """``user_id``'s orders in ``window``, newest first (or oldest, as it says), with
        ids below ``before``."""
        ...

    async def trade_history(
        self,
        user_id: str,
        *,
        before: tuple[Decimal, str, int, str] | None,
        limit: int,
        window: Window = EVERYTHING,
    ) -> list[dict[str, Any]]:
        """``user_id``'s fills in ``window``, newest first (or oldest, as it says), after
        the cursor ``before``."""
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
