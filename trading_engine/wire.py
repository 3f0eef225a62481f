"""How the engine's values look on the wire: one renderer per thing, for REST and the feed.

A trade on the public tape, a candle, a ticker, a book's levels, an order's
event: each is rendered here once, from the engine's units (ticks, lots,
minor units, nanoseconds) to what clients read (decimal strings, seconds as
decimal strings, ids as strings). The REST routes (``api/``) and the
market-data actor, which renders each feed message once for every
subscriber and Redis, both call these, so that one parser reads both.
Imports ``core/`` alone (and the actors' ``Ticker`` type for checking).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

from trading_engine.core.algos import (
    AlgoEvent,
    AlgoSliceDone,
    AlgoStarted,
    AlgoStatusChanged,
    AlgoType,
    AlgoView,
    algo_id_of,
)
from trading_engine.core.candles import Candle
from trading_engine.core.events import (
    IcebergRefilled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderDeferred,
    OrderExpired,
    OrderFilled,
    OrderListPlaced,
    OrderListUpdated,
    OrderRejected,
    StopMoved,
    StopTriggered,
    Trade,
)
from trading_engine.core.instruments import Instrument
from trading_engine.core.numbers import (
    format_decimal,
    format_seconds,
    format_units,
    quantize_ratio,
)

if TYPE_CHECKING:
    from trading_engine.actors.answers import Ticker

__all__ = [
    "ORDER_EVENTS",
    "OrderEvent",
    "algo",
    "algo_event",
    "average_price",
    "candle",
    "level",
    "levels",
    "list_event",
    "order_event",
    "public_trade",
    "ticker",
]


def level(instrument: Instrument, price: int, quantity: int) -> list[str]:
    """A book's level as a ``[price, quantity]`` pair of decimal strings."""
    return [instrument.price_str(price), instrument.quantity_str(quantity)]


def levels(instrument: Instrument, rows: Sequence[tuple[int, int]]) -> list[list[str]]:
    """A book's levels, each as ``level`` renders it."""
    return [level(instrument, price, quantity) for price, quantity in rows]


ORDER_EVENTS: Final = (
    OrderAccepted, OrderRejected, OrderFilled, OrderCancelled, OrderExpired, OrderAmended,
    StopTriggered, StopMoved, IcebergRefilled,
)  # fmt: skip
"""The events an order's owner is told of on the ``orders`` channel."""
OrderEvent = (
    OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCancelled
    | OrderExpired
    | OrderAmended
    | StopTriggered
    | StopMoved
    | IcebergRefilled
)


def public_trade(instrument: Instrument, trade: Trade) -> dict[str, Any]:
    """A trade as anyone may see it (``GET /trades``, the ``trades`` channel): what
    traded, when, and which side took; not who, with which orders, or at what fee."""
    return {
        "trade_id": f"{trade.symbol}:{trade.trade_id}",
        "symbol": trade.symbol,
        "price": instrument.price_str(trade.price),
        "quantity": instrument.quantity_str(trade.quantity),
        "side": str(trade.aggressor),
        "time": format_seconds(trade.ts),
    }


def order_event(instrument: Instrument, event: OrderEvent) -> dict[str, Any]:
    """An order's event for its owner's ``orders`` channel: the order id (accepted or
    rejected, its client order id and ``algo_id`` too) and what changed, with
    ``filled_quantity`` and ``remaining_quantity`` named as REST names them (a fill's
    ``fee`` in the quote asset, as a fill in history; negative for a rebate)."""
    if isinstance(event, OrderAccepted | OrderRejected):
        algo_id = algo_id_of(event.spec.client_order_id)
        list_id = event.spec.list_id
        body: dict[str, Any] = {"order_id": str(event.spec.order_id),
                                "client_order_id": event.spec.client_order_id,
                                "algo_id": None if algo_id is None else str(algo_id),
                                "list_id": str(list_id) if list_id else None}  # fmt: skip
        if isinstance(event, OrderRejected):
            body["reason"] = str(event.reason)
        return body
    body = {"order_id": str(event.order_id)}
    if isinstance(event, OrderFilled):
        body.update(
            trade_id=f"{event.symbol}:{event.trade_id}",
            price=instrument.price_str(event.price),
            quantity=instrument.quantity_str(event.quantity),
            filled_quantity=instrument.quantity_str(event.filled),
            remaining_quantity=instrument.quantity_str(event.remaining),
            liquidity=str(event.liquidity),
            fee=format_units(event.fee, instrument.quote_decimals),
            status=str(event.status),
        )
    elif isinstance(event, OrderCancelled):
        body.update(reason=str(event.reason), status="cancelled")
    elif isinstance(event, OrderExpired):
        body.update(status="expired")
    elif isinstance(event, StopMoved):
        body.update(stop_price=instrument.price_str(event.stop_price))
    elif isinstance(event, IcebergRefilled):
        body.update(
            displayed_quantity=instrument.quantity_str(event.displayed),
            hidden_quantity=instrument.quantity_str(event.hidden),
        )
    return body


LIST_EVENTS: Final = (OrderListPlaced, OrderDeferred, OrderListUpdated)
"""An order list's events its owner is told of on the ``orders`` channel (``type`` ``list``)."""
ListEvent = OrderListPlaced | OrderDeferred | OrderListUpdated


def list_event(event: ListEvent) -> dict[str, Any]:
    """An order list's event for its owner's ``orders`` channel: the list's id and what
    changed (placed: its ``list_type`` and ``list_client_id``, the client's id for it or
    None; a member deferred: its ``order_id``; ended: its ``status`` and
    ``list_client_id``)."""
    if isinstance(event, OrderDeferred):
        return {"list_id": str(event.spec.list_id), "order_id": str(event.spec.order_id),
                "client_order_id": event.spec.client_order_id, "status": "pending_new"}  # fmt: skip
    client_id = event.list_client_id or None
    if isinstance(event, OrderListPlaced):
        return {"list_id": str(event.list_id), "list_client_id": client_id,
                "list_type": str(event.kind), "status": "open"}  # fmt: skip
    return {"list_id": str(event.list_id), "list_client_id": client_id,
            "status": str(event.status)}  # fmt: skip


def candle(instrument: Instrument, candle: Candle) -> dict[str, Any]:
    """A candle as the feed and ``GET /candles`` show it: ``start`` in whole seconds,
    ``quote_volume`` the sum of price x quantity of its trades, in the quote asset."""
    return {
        "start": candle.start // 1_000_000_000,
        "open": instrument.price_str(candle.open),
        "high": instrument.price_str(candle.high),
        "low": instrument.price_str(candle.low),
        "close": instrument.price_str(candle.close),
        "volume": instrument.quantity_str(candle.volume),
        "quote_volume": format_units(
            candle.quote_volume * instrument.quote_per_tick_lot, instrument.quote_decimals
        ),
        "trades": candle.trades,
    }


def ticker(instrument: Instrument, ticker: Ticker | None) -> dict[str, Any]:
    """A ticker with prices and quantities as decimal strings (None stays None; no ticker
    yet shows every price as None). ``bid_quantity``, ``ask_quantity`` and
    ``last_quantity`` are the book's top and the last trade as they stood at the
    ticker's ``seq`` ("0" for an empty side or before the first trade)."""

    def price(value: int | None) -> str | None:
        return instrument.price_str(value) if value else None

    def change(value: int | None) -> str | None:
        if value is None:
            return None
        return ("-" if value < 0 else "") + instrument.price_str(abs(value)) if value else "0"

    if ticker is None:
        volume = quote_volume = trades = 0
        quantities = (0, 0, 0)
        prices: list[int | None] = [None] * 11
        moved = None
    else:
        volume, quote_volume = ticker["volume_24h"], ticker["quote_volume_24h"]
        trades = ticker["trades_24h"]
        quantities = (ticker["bid_quantity"], ticker["ask_quantity"], ticker["last_quantity"])
        prices = [ticker["last"], ticker["best_bid"], ticker["best_ask"], ticker["mid"],
                  ticker["micro_price"], ticker["ewma"], ticker["vwap"], ticker["mark"],
                  ticker["open_24h"], ticker["high_24h"], ticker["low_24h"]]  # fmt: skip
        moved = ticker["change_24h"]
    names = ("last", "best_bid", "best_ask", "mid", "micro_price", "ewma", "vwap", "mark",
             "open_24h", "high_24h", "low_24h")  # fmt: skip
    out: dict[str, Any] = {"symbol": instrument.symbol}
    out.update({name: price(value) for name, value in zip(names, prices, strict=True)})
    lots = ("bid_quantity", "ask_quantity", "last_quantity")
    out.update(zip(lots, map(instrument.quantity_str, quantities), strict=True))
    out["change_24h"] = change(moved)
    out["volume_24h"] = instrument.quantity_str(volume)
    out["quote_volume_24h"] = format_units(
        quote_volume * instrument.quote_per_tick_lot, instrument.quote_decimals
    )
    out["trades_24h"] = trades
    return out


def average_price(instrument: Instrument, notional: int, filled: int) -> str | None:
    """The average price of ``filled`` lots worth ``notional`` (ticks x lots), to 8 more
    places than the tick; None before any fill."""
    if not filled:
        return None
    exact = Fraction(notional, filled) * Fraction(instrument.tick_size)
    return format_decimal(quantize_ratio(exact, instrument.tick_size / 10**8))


def _participation(kind: AlgoType, num: int, den: int) -> str | None:
    if kind is not AlgoType.VWAP:
        return None
    return format_decimal(quantize_ratio(Fraction(num, den), _PARTICIPATION_QUANTUM))


_PARTICIPATION_QUANTUM: Final = Decimal(1).scaleb(-18)
"""A participation has at most 18 places (``core.numbers.MAX_FRACTION_DIGITS``)."""


def algo(instrument: Instrument, view: AlgoView) -> dict[str, Any]:
    """An algorithm as ``GET /algos/{id}`` shows it: decimal strings, children's ids."""
    return {
        "algo_id": str(view.algo_id),
        "type": str(view.kind),
        "status": str(view.status),
        "reason": view.reason or None,
        "user_id": view.user_id,
        "symbol": view.symbol,
        "side": str(view.side),
        "quantity": instrument.quantity_str(view.quantity),
        "filled_quantity": instrument.quantity_str(view.filled),
        "remaining_quantity": instrument.quantity_str(view.quantity - view.filled),
        "average_price": average_price(instrument, view.notional, view.filled),
        "limit_price": instrument.price_str(view.limit_price) if view.limit_price else None,
        "duration_s": format_units(view.duration_ns, 9),
        "slices": view.slices,
        "slices_done": view.slices_done,
        "participation": _participation(view.kind, *view.participation),
        "children": [str(order_id) for order_id in view.children],
        "created_at": format_seconds(view.start_ts),
        "updated_at": format_seconds(view.updated_ts),
    }


def algo_event(instrument: Instrument, event: AlgoEvent) -> dict[str, Any]:
    """An algorithm's event for its owner's ``orders`` channel: what changed (the
    algorithm's type as ``algo_type``: the feed's ``type`` is the message's)."""
    body: dict[str, Any] = {"algo_id": str(event.algo_id), "symbol": event.symbol}
    if isinstance(event, AlgoStarted):
        body.update(
            algo_type=str(event.kind),
            status="running",
            side=str(event.side),
            quantity=instrument.quantity_str(event.quantity),
            slices=event.slices,
            duration_s=format_units(event.duration_ns, 9),
            limit_price=instrument.price_str(event.limit_price) if event.limit_price else None,
            participation=_participation(
                event.kind, event.participation_num, event.participation_den
            ),
        )
    elif isinstance(event, AlgoSliceDone):
        body.update(
            slice=event.slice,
            order_id=str(event.order_id) if event.order_id else None,
            child_quantity=instrument.quantity_str(event.quantity),
            child_filled_quantity=instrument.quantity_str(event.filled),
            child_average_price=average_price(instrument, event.notional, event.filled),
        )
    elif isinstance(event, AlgoStatusChanged):
        body.update(status=str(event.status), reason=event.reason or None)
    return body
