"""``allOrders`` and ``myTrades`` over the account's whole history, as Binance answers them.

The engine keeps every open order but, of what is over, only the newest (the last
100,000 finished orders, each user's last 1,000 fills); the read tables
(``ReadTables``) keep everything but the last tenth of a second or so. Each answer
is the union of both, the engine's view winning where both have an order (it is
the newer), each order or fill once, by ``orderId`` (or trade ``id``) ascending.
Both sources are asked for the same ``limit`` in the same direction, so the union's
first (or last) ``limit`` are those of the whole history. Without read tables (a
gateway without ``DATABASE_URL``) the answer is the engine's alone.

Binance's selection: with ``orderId``/``fromId`` or ``startTime``, the oldest
``limit`` from there; else the newest ``limit`` (up to ``endTime`` if given).
``startTime`` and ``endTime`` (milliseconds, both inclusive) at most 24 hours apart
(-1127).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

from trading_engine.api.binance.errors import BinanceError
from trading_engine.api.binance.params import Params
from trading_engine.api.binance.render import my_fill, my_trade
from trading_engine.api.binance.symbols import millis
from trading_engine.api.context import ctx
from trading_engine.core.enums import OrderStatus, OrderType, Side, TimeInForce
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.numbers import to_units
from trading_engine.core.views import OrderView
from trading_engine.storage.read_tables import Window

__all__ = ["Selection", "all_orders", "my_trades", "past_order"]

T = TypeVar("T")

_DAY_MS = 86_400_000
_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000


class Selection:
    """Which of a user's orders or fills in one symbol a request asks for."""

    def __init__(self, params: Params, from_id_name: str) -> None:
        self.from_id = params.integer(from_id_name)
        self.start = params.integer("startTime")
        self.end = params.integer("endTime")
        if self.start is not None and self.end is not None and self.end - self.start > _DAY_MS:
            raise BinanceError(400, -1127, "More than 24 hours between startTime and endTime.")
        self.oldest_first = self.from_id is not None or self.start is not None

    def takes(self, item_id: int, ms: int) -> bool:
        """Whether an order or fill with this id, made at ``ms``, is in the selection."""
        return (
            (self.from_id is None or item_id >= self.from_id)
            and (self.start is None or ms >= self.start)
            and (self.end is None or ms <= self.end)
        )

    def window(self, symbol: Symbol, order_id: int | None = None) -> Window:
        return Window(
            symbol=symbol,
            from_id=self.from_id,
            order_id=order_id,
            since=None if self.start is None else self.start * _NS_PER_MS,
            until=None if self.end is None else (self.end + 1) * _NS_PER_MS,
            oldest_first=self.oldest_first,
        )

    def cut(self, items: list[T], limit: int) -> list[T]:
        """The first ``limit`` of ``items`` (in ascending order) or the last."""
        return items[:limit] if self.oldest_first else items[-limit:]


async def all_orders(
    user: UserId, instrument: Instrument, chosen: Selection, limit: int
) -> list[OrderView]:
    """``user``'s orders in ``instrument`` that ``chosen`` asks for, by id ascending."""
    views = {
        v.order_id: v
        for v in await ctx().engine.user_orders(user, limit=100_000)
        if v.symbol == instrument.symbol and chosen.takes(v.order_id, millis(v.created_ts))
    }
    tables = ctx().tables
    if tables is not None:
        window = chosen.window(instrument.symbol)
        for row in await tables.order_history(user, before=None, limit=limit, window=window):
            views.setdefault(OrderId(row["order_id"]), order_view(row, instrument, user))
    return chosen.cut([views[order_id] for order_id in sorted(views)], limit)


async def past_order(
    user: UserId, instrument: Instrument, order_id: int | None, client_id: str | None = None
) -> OrderView | None:
    """``user``'s order in ``instrument`` from the read tables (an order the engine no
    longer keeps), by ``order_id``, else the newest with ``client_id``; or None. ``GET
    order`` reads memory, then the database, as Binance's does."""
    tables = ctx().tables
    if tables is None:
        return None
    if order_id is not None:
        window = Window(symbol=instrument.symbol, from_id=order_id, oldest_first=True)
    else:
        window = Window(symbol=instrument.symbol, client_order_id=client_id)
    rows = await tables.order_history(user, before=None, limit=1, window=window)
    if not rows or (order_id is not None and rows[0]["order_id"] != order_id):
        return None
    return order_view(rows[0], instrument, user)


async def my_trades(
    user: UserId, instrument: Instrument, order_id: int | None, chosen: Selection, limit: int
) -> list[dict[str, Any]]:
    """``user``'s fills in ``instrument`` (of ``order_id`` only, if given) that ``chosen``
    asks for, as ``myTrades`` shows them, by trade id ascending (a self-trade's maker
    side first)."""
    fills: dict[tuple[int, bool], dict[str, Any]] = {}
    for trade in await ctx().engine.user_trades(user, 1000):
        if trade.symbol != instrument.symbol or not chosen.takes(trade.trade_id, millis(trade.ts)):
            continue
        mine = [trade.maker_order_id] if trade.maker_user_id == user else []
        if trade.taker_user_id == user:
            mine.append(trade.taker_order_id)
        for oid in mine:
            if order_id is None or oid == order_id:
                row = my_trade(trade, instrument, oid, user)
                fills[trade.trade_id, row["isMaker"]] = row
    tables = ctx().tables
    if tables is not None:
        window = chosen.window(instrument.symbol, order_id)
        for found in await tables.trade_history(user, before=None, limit=limit, window=window):
            fill = _fill(found, instrument)
            fills.setdefault((fill["id"], fill["isMaker"]), fill)
    ordered = sorted(fills, key=lambda key: (key[0], not key[1]))
    return chosen.cut([fills[key] for key in ordered], limit)


def _ns(seconds: Decimal) -> int:
    """A time the read tables give in seconds (to the microsecond), in ns."""
    return int(seconds * _NS_PER_S)


def _fill(row: dict[str, Any], instrument: Instrument) -> dict[str, Any]:
    """A fill as ``ReadTables.trade_history`` gives it, as ``myTrades`` shows it."""
    maker = row["role"] == "maker"
    aggressor = Side(row["aggressor"])
    return my_fill(
        instrument,
        trade_id=row["trade_id"],
        order_id=OrderId(row["order_id"]),
        price=to_units(row["price"], instrument.tick_size, field="price"),
        quantity=to_units(row["quantity"], instrument.lot_size, field="quantity"),
        fee=int(row["fee"]),  # numeric: a Decimal with no fraction
        ts=_ns(row["time"]),
        side=aggressor.opposite if maker else aggressor,
        maker=maker,
    )


def order_view(row: dict[str, Any], instrument: Instrument, user: UserId) -> OrderView:
    """An order as ``ReadTables.order_history`` gives it, as the engine's view: prices in
    ticks, quantities in lots, money in minor units, times in ns (to the microsecond)."""

    def ticks(value: Decimal | None) -> int:
        return 0 if value is None else to_units(value, instrument.tick_size, field="price")

    def lots(value: Decimal | None) -> int:
        return 0 if value is None else to_units(value, instrument.lot_size, field="quantity")

    quantity, filled, remaining = lots(row["quantity"]), lots(row["filled"]), lots(row["remaining"])
    quote = row["quote_quantity"]
    return OrderView(
        order_id=OrderId(row["order_id"]),
        client_order_id=None if row["client_order_id"] is None
        else ClientOrderId(row["client_order_id"]),
        user_id=user,
        symbol=Symbol(row["symbol"]),
        side=Side(row["side"]),
        type=OrderType(row["type"]),
        time_in_force=TimeInForce(row["time_in_force"]),
        price=ticks(row["price"]),
        stop_price=ticks(row["stop_price"]),
        quantity=quantity,
        filled=filled,
        remaining=remaining,
        cancelled=quantity - filled - remaining,
        notional=to_units(
            row["filled_value"], instrument.tick_size * instrument.lot_size, field="notional"
        ),
        status=OrderStatus(row["status"]),
        reason=row["reason"],
        post_only=row["post_only"],
        expire_time=None,
        created_ts=_ns(row["created_at"]),
        updated_ts=_ns(row["updated_at"]),
        reduce_only=row["reduce_only"],
        protection_price=ticks(row["protection_price"]),
        quote_quantity=0 if quote is None else int(quote.scaleb(instrument.quote_decimals)),
        trailing_delta=ticks(row["trailing_delta"]),
        trailing_bps=row["trailing_bps"] or 0,
        activation_price=ticks(row["activation_price"]),
        limit_offset=ticks(row["limit_offset"]),
        display_quantity=lots(row["display_quantity"]),
        hidden=0,
        list_id=row["list_id"] or 0,
    )  # fmt: skip
