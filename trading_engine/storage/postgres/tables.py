"""The read tables: history pages, an order's fills, one trade, the projection and its
backlog, and the sums ``trading-engine audit`` checks; run on the bridge's loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import asyncpg.exceptions

from trading_engine.storage.read_tables import TradeDetails, Window

if TYPE_CHECKING:
    pass

__all__ = []

_MAX_ID: Final = (1 << 63) - 1

_ORDER_HISTORY: Final = """
SELECT order_id, symbol, client_order_id, side, type, time_in_force, price, stop_price,
       protection_price, quantity, quote_quantity, trailing_delta, trailing_bps,
       activation_price, limit_offset, display_quantity,
       CASE WHEN display_quantity IS NOT NULL THEN coalesce(hidden_quantity, 0) END
           AS hidden_quantity,
       list_id, filled, remaining, filled_value,
       status,
       reason, reduce_only, post_only,
       extract(epoch FROM created_at) AS created_at, extract(epoch FROM updated_at) AS updated_at
FROM orders WHERE user_id = $1 AND order_id < $2
    AND ($4::text IS NULL OR symbol = $4) AND order_id >= $5
    AND ($6::bigint IS NULL OR created_at >= journal_time($6))
    AND ($7::bigint IS NULL OR created_at < journal_time($7))
    AND ($8::text IS NULL OR client_order_id = $8)
ORDER BY order_id {direction} LIMIT $3
"""
"""A user's orders in a ``Window``: ``{direction}`` is DESC (newest first) or ASC."""

_TRADE_HISTORY: Final = """
SELECT * FROM (
    SELECT symbol, trade_id, price, quantity, aggressor, 'maker' AS role,
           maker_order_id AS order_id, maker_fee AS fee, settlement_status,
           extract(epoch FROM settled_at) AS settled_at, extract(epoch FROM executed_at) AS time
    FROM trades WHERE maker_user_id = $1
    UNION ALL
    SELECT symbol, trade_id, price, quantity, aggressor, 'taker',
           taker_order_id, taker_fee, settlement_status,
           extract(epoch FROM settled_at), extract(epoch FROM executed_at)
    FROM trades WHERE taker_user_id = $1
) AS fills
WHERE ($2::numeric IS NULL
       OR (time, symbol, trade_id, role) {past} ($2, $3::text, $4::bigint, $5::text))
    AND ($7::text IS NULL OR symbol = $7) AND trade_id >= $8
    AND ($9::bigint IS NULL OR order_id = $9)
    AND ($10::bigint IS NULL OR time >= extract(epoch FROM journal_time($10)))
    AND ($11::bigint IS NULL OR time < extract(epoch FROM journal_time($11)))
ORDER BY time {direction}, symbol {direction}, trade_id {direction}, role {direction}
LIMIT $6
"""
"""A user's fills in a ``Window`` after a cursor: ``{direction}`` is DESC (newest first,
``{past}`` ``<``) or ASC (oldest first, ``{past}`` ``>``)."""


def _sql(template: str, window: Window) -> str:
    """``template`` in ``window``'s direction."""
    if window.oldest_first:
        return template.format(direction="ASC", past=">")
    return template.format(direction="DESC", past="<")


async def _aio_order_history(
    pool: asyncpg.Pool, user_id: str, before: int | None, limit: int, window: Window
) -> list[dict[str, Any]]:
    before_id = _MAX_ID if before is None else before
    rows = await pool.fetch(
        _sql(_ORDER_HISTORY, window), user_id, before_id, limit, window.symbol,
        window.from_id or 0, window.since, window.until, window.client_order_id,
    )  # fmt: skip
    return [dict(row) for row in rows]


async def _aio_trade_history(
    pool: asyncpg.Pool,
    user_id: str,
    before: tuple[Decimal, str, int, str] | None,
    limit: int,
    window: Window,
) -> list[dict[str, Any]]:
    cursor = before or (None, None, None, None)  # no cursor: from the newest (or oldest)
    rows = await pool.fetch(
        _sql(_TRADE_HISTORY, window), user_id, *cursor, limit, window.symbol,
        window.from_id or 0, window.order_id, window.since, window.until,
    )  # fmt: skip
    return [dict(row) for row in rows]


_ORDER_FILLS: Final = """
WITH o AS (SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS o(id, since, until))
SELECT t.symbol, t.trade_id, (t.price / i.tick_size)::bigint AS price,
       (t.quantity / i.lot_size)::bigint AS quantity, t.aggressor, t.maker_order_id,
       t.taker_order_id, t.maker_user_id, t.taker_user_id, t.maker_fee, t.taker_fee,
       (extract(epoch FROM t.executed_at) * 1000000)::bigint * 1000 AS ts
FROM (
    SELECT t.* FROM o JOIN trades t
        ON t.maker_user_id = $1 AND t.maker_order_id = o.id
       AND t.executed_at BETWEEN journal_time(o.since) AND journal_time(o.until)
    UNION ALL
    SELECT t.* FROM o JOIN trades t
        ON t.taker_user_id = $1 AND t.taker_order_id = o.id
       AND t.executed_at BETWEEN journal_time(o.since) AND journal_time(o.until)
) AS t JOIN instruments i ON i.symbol = t.symbol
ORDER BY t.symbol, t.trade_id
"""


async def _aio_order_fills(
    pool: asyncpg.Pool, user_id: str, orders: Sequence[tuple[int, int, int]]
) -> list[dict[str, Any]]:
    ids, since, until = ([o[n] for o in orders] for n in range(3))
    return [dict(row) for row in await pool.fetch(_ORDER_FILLS, user_id, ids, since, until)]


_TRADE: Final = """
SELECT round(t.price / i.tick_size) AS price, round(t.quantity / i.lot_size) AS quantity,
       CASE WHEN t.aggressor = 'buy' THEN t.taker_user_id ELSE t.maker_user_id END AS buyer,
       CASE WHEN t.aggressor = 'buy' THEN t.maker_user_id ELSE t.taker_user_id END AS seller,
       (extract(epoch FROM t.executed_at) * 1000000)::bigint * 1000 AS ts
FROM trades t JOIN instruments i ON i.symbol = t.symbol
WHERE t.symbol = $1 AND t.trade_id = $2
"""


async def _aio_trade(pool: asyncpg.Pool, symbol: str, trade_id: int) -> TradeDetails | None:
    row = await pool.fetchrow(_TRADE, symbol, trade_id)
    if row is None:
        return None
    # Ticks and lots as numeric: they are unbounded, as the engine's ints are.
    return TradeDetails(
        price=int(row["price"]), quantity=int(row["quantity"]), buyer=row["buyer"],
        seller=row["seller"], ts=row["ts"],
    )  # fmt: skip


async def _aio_ping(pool: asyncpg.Pool) -> None:
    await pool.fetchval("SELECT 1")


async def _aio_project(pool: asyncpg.Pool) -> int:
    last: int = await pool.fetchval("SELECT project_pending()")
    return last


_BACKLOG: Final = """
SELECT p.last_id AS projected,
       (SELECT journal_position(id, last_seq - first_seq + 1) FROM journal_batches
        ORDER BY id DESC LIMIT 1) AS last,
       (SELECT (split_part(b.payloads, E'\\n', CASE WHEN b.id = p.last_id >> 24
                                                    THEN (p.last_id & 16777215)::integer + 1
                                                    ELSE 1 END)::json ->> 'ts')::bigint
        FROM journal_batches b
        WHERE b.id >= p.last_id >> 24
          AND journal_position(b.id, b.last_seq - b.first_seq + 1) > p.last_id
        ORDER BY b.id LIMIT 1) AS oldest
FROM projection p
"""
"""The last id projected, the journal's last id, and the ts of the first event after the
last projected one: in the row that holds the last projected event, or the first after it."""


async def _aio_backlog(pool: asyncpg.Pool) -> tuple[int, int, int | None]:
    row = await pool.fetchrow(_BACKLOG)
    assert row is not None, "projection has its one row from 0002 on"
    return row["projected"], row["last"] or 0, row["oldest"]


async def _aio_read_tables(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        balances = await connection.fetch(
            "SELECT account, asset, amount FROM balances WHERE amount <> 0"
        )
        trades = await connection.fetchrow(
            "SELECT count(*) AS total,"
            " count(*) FILTER (WHERE settlement_status <> 'settled') AS unsettled FROM trades"
        )
        orders = await connection.fetch(
            "SELECT status, count(*), count(*) FILTER (WHERE reduce_only) AS reduce_only"
            " FROM orders GROUP BY status"
        )
    assert trades is not None
    return {
        "balances": {(r["account"], r["asset"]): int(r["amount"]) for r in balances},
        "trades": trades["total"],
        "unsettled": trades["unsettled"],
        "orders": {r["status"]: r["count"] for r in orders},
        "reduce_only_orders": {r["status"]: r["reduce_only"] for r in orders if r["reduce_only"]},
    }
