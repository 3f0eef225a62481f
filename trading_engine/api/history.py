"""A user's full order and trade history, from the read tables in PostgreSQL.

The engine keeps every open order in memory, but of what is over only the
newest: the last 100,000 finished orders and each user's last 1,000 fills
(``GET /users/{id}/orders`` and ``/trades`` answer from there, at once and
exactly as of the last commit). These routes read the read tables instead,
so they reach back to the first order, page by page: ``next`` in each
full page is the ``before`` of the next one (null on the last page). Times
are to the microsecond (the tables' ``timestamptz``). The tables trail the journal by
about a tenth of a second (``te_read_tables_lag_seconds``), so the newest
moments may not be there yet.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from decimal import Decimal
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify, request

from trading_engine.api.auth import known_user
from trading_engine.api.context import ctx
from trading_engine.api.errors import ApiError
from trading_engine.api.models import OrderFields, documented
from trading_engine.api.orders import _limit
from trading_engine.core.enums import Side
from trading_engine.core.numbers import (
    format_decimal,
    format_units,
    parse_decimal,
    quantize_ratio,
)
from trading_engine.errors import InvalidInput
from trading_engine.storage.read_tables import ReadTables

__all__ = ["blueprint"]

P = "/api/v1/trading"
_MAX_LIMIT = 1000
_MAX_ID = (1 << 63) - 1


class HistoryQuery(BaseModel):
    limit: int | None = Field(None, ge=1, description="at most this many (capped at 1000)")
    before: str | None = Field(None, description="the `next` of the previous page")


class HistoryOrder(OrderFields):
    """An order as the read tables hold it."""


class OrderHistory(BaseModel):
    orders: list[HistoryOrder]
    next: str | None = Field(description="pass as `before` for the next page; null if none")


class HistoryFill(BaseModel):
    """One side of a trade: the user's role in it, their fee, and its settlement."""

    trade_id: str
    symbol: str
    order_id: str
    role: str = Field(description="maker or taker")
    side: Side = Field(description="the user's side")
    price: str
    quantity: str
    fee: str = Field(description="in the quote asset; negative: a rebate")
    settlement_status: str
    settled_at: str | None
    time: str


class TradeHistory(BaseModel):
    trades: list[HistoryFill]
    next: str | None = Field(description="pass as `before` for the next page; null if none")


blueprint = Blueprint("history", __name__)


def _read_tables() -> ReadTables:
    tables = ctx().tables
    if tables is None:
        raise ApiError(503, "history_unavailable", "history needs the PostgreSQL journal")
    return tables


async def _page(user_id: str, cursor: Callable[[str | None], Any]) -> tuple[str, Any, int]:
    """The user the caller may read, the cursor, and the page size, from the request."""
    user = await known_user(ctx().engine, ctx().admin_key, user_id)
    return (
        user,
        cursor(request.args.get("before")),
        _limit(request.args.get("limit"), 100, _MAX_LIMIT),
    )


@blueprint.get(f"{P}/users/<user_id>/history/orders")
@documented(OrderHistory, 403, 404, query=HistoryQuery)
async def order_history(user_id: str) -> Response:
    user, before, limit = await _page(user_id, _order_cursor)
    rows = await _read_tables().order_history(user, before=before, limit=limit)
    ticks = {symbol: i.tick_size for symbol, i in ctx().engine.instruments().items()}
    orders = [_order(row, ticks[row["symbol"]]) for row in rows]
    more = len(rows) == limit
    return jsonify({"orders": orders, "next": orders[-1]["order_id"] if more else None})


@blueprint.get(f"{P}/users/<user_id>/history/trades")
@documented(TradeHistory, 403, 404, query=HistoryQuery)
async def trade_history(user_id: str) -> Response:
    user, before, limit = await _page(
        user_id, lambda raw: _trade_cursor(raw, ctx().engine.instruments())
    )
    rows = await _read_tables().trade_history(user, before=before, limit=limit)
    decimals = {s: i.quote_decimals for s, i in ctx().engine.instruments().items()}
    fills = [_fill(row, decimals[row["symbol"]]) for row in rows]
    cursor = None
    if len(rows) == limit:
        last = rows[-1]
        cursor = f"{last['time']}:{last['symbol']}:{last['trade_id']}:{last['role']}"
    return jsonify({"trades": fills, "next": cursor})


def _order_cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= _MAX_ID:
        raise InvalidInput("before", "must be an order id (the `next` of the previous page)")
    return int(raw)


def _trade_cursor(raw: str | None, listed: Container[str]) -> tuple[Decimal, str, int, str] | None:
    """``seconds:symbol:trade_id:role``, as ``next`` gives it, of a ``listed`` symbol.

    Every part is checked here, so nothing but what a ``next`` holds reaches SQL
    (a NUL byte in the symbol once reached PostgreSQL and came back as a 500).
    """
    if raw is None:
        return None
    problem = InvalidInput("before", "must be the `next` of the previous page")
    try:
        seconds, symbol, trade_id, role = raw.split(":")
        moment = parse_decimal(seconds, field="before")  # plain digits, of bounded size
    except (ValueError, InvalidInput):
        raise problem from None
    if (
        symbol not in listed
        or not (trade_id.isascii() and trade_id.isdigit() and int(trade_id) <= _MAX_ID)
        or role not in ("maker", "taker")
    ):
        raise problem
    return moment, symbol, int(trade_id), role


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def _order(row: dict[str, Any], tick_size: Decimal) -> dict[str, Any]:
    filled: Decimal = row["filled"]
    average = None
    if filled:  # as the live order shows it (api/schemas.py, render_order)
        exact = Fraction(row["filled_value"]) / Fraction(filled)
        average = format_decimal(quantize_ratio(exact, tick_size / 10**8))
    return {
        "order_id": str(row["order_id"]),
        "client_order_id": row["client_order_id"],
        "symbol": row["symbol"],
        "side": row["side"],
        "type": row["type"],
        "time_in_force": row["time_in_force"],
        "price": _text(row["price"]),
        "stop_price": _text(row["stop_price"]),
        "protection_price": _text(row["protection_price"]),
        "quantity": format_decimal(row["quantity"]),
        "quote_quantity": _text(row["quote_quantity"]),
        "trailing_delta": _text(row["trailing_delta"]),
        "trailing_bps": row["trailing_bps"],
        "activation_price": _text(row["activation_price"]),
        "limit_offset": _text(row["limit_offset"]),
        "display_quantity": _text(row["display_quantity"]),
        "list_id": None if row["list_id"] is None else str(row["list_id"]),
        "filled_quantity": format_decimal(filled),
        "remaining_quantity": format_decimal(row["remaining"]),
        "average_price": average,
        "status": row["status"],
        "reason": row["reason"],
        "reduce_only": row["reduce_only"],
        "post_only": row["post_only"],
        "created_at": format_decimal(row["created_at"]),
        "updated_at": format_decimal(row["updated_at"]),
    }


def _fill(row: dict[str, Any], quote_decimals: int) -> dict[str, Any]:
    maker = row["role"] == "maker"
    aggressor = Side(row["aggressor"])
    side = aggressor if not maker else (Side.SELL if aggressor is Side.BUY else Side.BUY)
    return {
        "trade_id": f"{row['symbol']}:{row['trade_id']}",
        "symbol": row["symbol"],
        "order_id": str(row["order_id"]),
        "role": row["role"],
        "side": str(side),
        "price": format_decimal(row["price"]),
        "quantity": format_decimal(row["quantity"]),
        "fee": format_units(int(row["fee"]), quote_decimals),  # numeric: a Decimal
        "settlement_status": row["settlement_status"],
        "settled_at": _text(row["settled_at"]),
        "time": format_decimal(row["time"]),
    }
