"""An order's fills, for every answer that shows an order with its ``trades``.

Every view of an order the API gives (``POST /orders``, ``GET``, ``DELETE``
and ``PATCH /orders/{id}``, the user's and the cancelled orders' lists, and
the feed's ``orders`` snapshot) carries ``trades``: the trades that filled
it, oldest first, exactly those its ``filled_quantity`` counts. They come
from the risk actor, which keeps each user's newest 1,000 fills
(``Engine.order_fills``), and, for an order some of whose fills are older
than those, from the read tables (``ReadTables.order_fills``), which
hold every fill older than about a tenth of a second. Without PostgreSQL
(an in-memory journal) such an order shows only the fills still kept.

The view and the fills are read one after the other, so fills that came
after the view are left out: of the fills found, in trade order, those
that add up to the view's filled quantity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from trading_engine.actors.facade import Engine
from trading_engine.core.enums import Side
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, Symbol, TradeId, UserId
from trading_engine.core.views import OrderView
from trading_engine.storage.read_tables import ReadTables

__all__ = ["fills_of"]


async def fills_of(
    engine: Engine,
    tables: ReadTables | None,
    views: Sequence[OrderView],
    known: Iterable[Trade] = (),
) -> dict[OrderId, tuple[Trade, ...]]:
    """The fills of each order in ``views``, oldest first; ``known`` are trades the
    caller already has (a command's own), which need not be kept anywhere yet. Those
    the engine no longer keeps come from ``tables`` (None: the engine's alone)."""
    found: dict[OrderId, dict[int, Trade]] = {view.order_id: {} for view in views if view.filled}
    if not found:
        return {view.order_id: () for view in views}
    for trade in known:
        _add(found, trade)
    for user in {view.user_id for view in views}:
        ids = tuple(view.order_id for view in views if view.user_id == user and view.filled)
        for trades in (await engine.order_fills(user, ids)).values():
            for trade in trades:
                _add(found, trade)
    missing = [view for view in views if view.filled and _total(found[view.order_id]) < view.filled]
    if missing and tables is not None:
        for user in {view.user_id for view in missing}:
            orders = [
                (view.order_id, view.created_ts, view.updated_ts)
                for view in missing
                if view.user_id == user
            ]
            for row in await tables.order_fills(user, orders):
                _add(found, _trade(row))
    return {view.order_id: _up_to(found.get(view.order_id, {}), view.filled) for view in views}


def _add(found: dict[OrderId, dict[int, Trade]], trade: Trade) -> None:
    for order_id in (trade.maker_order_id, trade.taker_order_id):
        fills = found.get(order_id)
        if fills is not None:
            fills.setdefault(trade.trade_id, trade)


def _total(fills: dict[int, Trade]) -> int:
    return sum(trade.quantity for trade in fills.values())


def _up_to(fills: dict[int, Trade], filled: int) -> tuple[Trade, ...]:
    """The fills in trade order (an order trades in one symbol) that make up ``filled``."""
    out: list[Trade] = []
    total = 0
    for trade_id in sorted(fills):
        if total >= filled:
            break
        out.append(fills[trade_id])
        total += fills[trade_id].quantity
    return tuple(out)


def _trade(row: dict[str, object]) -> Trade:
    """A fill as the read tables hold it; ``seq`` (the symbol's, which they don't keep) 0."""
    return Trade(
        0, _int(row["ts"]), Symbol(str(row["symbol"])), TradeId(_int(row["trade_id"])),
        _int(row["price"]), _int(row["quantity"]), Side(str(row["aggressor"])),
        OrderId(_int(row["maker_order_id"])), OrderId(_int(row["taker_order_id"])),
        UserId(str(row["maker_user_id"])), UserId(str(row["taker_user_id"])),
        _int(row["maker_fee"]), _int(row["taker_fee"]),
    )  # fmt: skip


def _int(value: object) -> int:
    """An integer column's value (fees may be ``numeric``: a ``Decimal`` with no fraction)."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    assert isinstance(value, int), value
    return value
