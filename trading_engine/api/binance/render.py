"""Orders and fills as Binance shows them, from the engine's views."""

from __future__ import annotations

from typing import Any

from trading_engine.api.binance.symbols import Precision, joined, millis
from trading_engine.core.enums import OrderStatus, OrderType, Side, StpMode
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.views import OrderView

__all__ = [
    "EXPIRY_REASONS",
    "QUOTE_REACHED",
    "STP_MODES",
    "binance_type",
    "fill",
    "my_fill",
    "my_trade",
    "order",
    "original_quantity",
    "status",
    "stop_price",
    "trailing_fields",
]

_STATUS = {
    OrderStatus.PENDING_TRIGGER: "NEW",
    OrderStatus.OPEN: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELLED: "CANCELED",
    OrderStatus.REJECTED: "REJECTED",
    OrderStatus.EXPIRED: "EXPIRED",
}
STP_MODES = {
    "NONE": StpMode.NONE,
    "EXPIRE_TAKER": StpMode.CANCEL_NEWEST,
    "EXPIRE_MAKER": StpMode.CANCEL_OLDEST,
    "EXPIRE_BOTH": StpMode.CANCEL_BOTH,
    "DECREMENT": StpMode.DECREMENT,
}
"""Binance's self-trade prevention modes to the engine's."""
_TYPES = {
    OrderType.LIMIT: "LIMIT",
    OrderType.MARKET: "MARKET",
    OrderType.STOP: "STOP_LOSS",
    OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
    OrderType.TAKE_PROFIT: "TAKE_PROFIT",
    OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT_LIMIT",
    OrderType.TRAILING_STOP_LIMIT: "STOP_LOSS_LIMIT",
}


EXPIRY_REASONS = {
    "unfilled_ioc": "UNFILLED_IOC_QUANTITY_EXPIRED",
    "fok_not_fillable": "UNFILLED_FOK_ORDER_EXPIRED",
    "no_liquidity": "INSUFFICIENT_LIQUIDITY",
    "price_band": "EXECUTION_RULE_PRICE_RANGE_EXCEEDED",
    "oco": "OCO_TRIGGER",
}
"""Reasons of ours for an order Binance shows as EXPIRED (an IOC or FOK, or a market
order, that the book could not fill; an OCO leg whose other leg traded or triggered),
not CANCELED or REJECTED, to Binance's expiry reason (an ``executionReport``'s ``eR``)."""
_EXPIRED = frozenset(EXPIRY_REASONS)


QUOTE_REACHED = "quote_quantity_reached"
"""The reason of ours that ends a quote-sized market order (``quoteOrderQty``) when its
amount would not buy the next lot: it filled what it could, FILLED on Binance (whose
``origQty`` is then what it filled: ``original_quantity``), EXPIRED if nothing."""


def status(view: OrderView) -> str:
    if view.reason == QUOTE_REACHED:
        return "FILLED" if view.filled else "EXPIRED"
    if view.reason in _EXPIRED:
        return "EXPIRED"
    if view.reason == "self_trade_prevention":
        return "EXPIRED_IN_MATCH"
    return _STATUS[view.status]


def binance_type(view: OrderView) -> str:
    """A trailing stop is a TAKE_PROFIT when it has an activation price (a
    TAKE_PROFIT's ``stopPrice`` with ``trailingDelta``), else a STOP_LOSS: the two
    behave alike without one (``trading._trailing``)."""
    if view.type is OrderType.LIMIT and view.post_only:
        return "LIMIT_MAKER"
    if view.type is OrderType.TRAILING_STOP:
        return "TAKE_PROFIT" if view.activation_price else "STOP_LOSS"
    return _TYPES[view.type]


def stop_price(view: OrderView) -> int:
    """``stopPrice`` in ticks: a trailing stop's is its activation price, as the client
    gave it (its moving stop price is the engine's own), 0 for none."""
    if view.type in (OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT):
        return view.activation_price
    return view.stop_price


def original_quantity(view: OrderView) -> int:
    """``origQty`` in lots: a quote-sized order's (``quoteOrderQty``) is what it may still
    fill and has filled, so that it equals ``executedQty`` once done, as on Binance; the
    cap the engine set is no quantity the client asked for."""
    if view.quote_quantity:
        return view.quantity - view.cancelled
    return view.quantity


def trailing_fields(view: OrderView) -> dict[str, Any]:
    """``trailingDelta`` (in basis points) of an order placed with one, else nothing."""
    if view.trailing_bps:
        return {"trailingDelta": view.trailing_bps}
    return {}


def order(view: OrderView, instrument: Instrument, stp: str = "EXPIRE_TAKER") -> dict[str, Any]:
    """An order as ``GET order`` shows it."""
    numbers = Precision(instrument)
    kind = binance_type(view)
    return {
        "symbol": joined(view.symbol),
        "orderId": view.order_id,
        "orderListId": view.list_id or -1,
        "clientOrderId": view.client_order_id or str(view.order_id),
        "price": numbers.price(view.price),
        "origQty": numbers.quantity(original_quantity(view)),
        "executedQty": numbers.quantity(view.filled),
        "cummulativeQuoteQty": numbers.notional(view.notional),
        "status": status(view),
        "timeInForce": "GTC" if kind == "LIMIT_MAKER" else str(view.time_in_force),
        "type": kind,
        "side": view.side.value.upper(),
        "stopPrice": numbers.price(stop_price(view)),
        "icebergQty": numbers.quantity(view.display_quantity),
        "time": millis(view.created_ts),
        "updateTime": millis(view.updated_ts),
        "isWorking": view.status is not OrderStatus.PENDING_TRIGGER,
        "workingTime": millis(view.created_ts)
        if view.status is not OrderStatus.PENDING_TRIGGER
        else -1,
        "origQuoteOrderQty": numbers.quote(view.quote_quantity),
        "selfTradePreventionMode": stp,
        **trailing_fields(view),
    }


def _maker(trade: Trade, order_id: OrderId) -> bool:
    return trade.maker_order_id == order_id


def fill(trade: Trade, instrument: Instrument, order_id: OrderId) -> dict[str, Any]:
    """One fill of ``order_id`` as a FULL answer's ``fills`` shows it."""
    numbers = Precision(instrument)
    maker = _maker(trade, order_id)
    return {
        "price": numbers.price(trade.price),
        "qty": numbers.quantity(trade.quantity),
        "commission": numbers.quote(trade.maker_fee if maker else trade.taker_fee),
        "commissionAsset": instrument.quote_asset,
        "tradeId": trade.trade_id,
    }


def my_trade(
    trade: Trade, instrument: Instrument, order_id: OrderId, user: UserId
) -> dict[str, Any]:
    """``user``'s side (that of ``order_id``) of a trade, as ``myTrades`` shows it."""
    maker = _maker(trade, order_id)
    return my_fill(
        instrument,
        trade_id=trade.trade_id,
        order_id=order_id,
        price=trade.price,
        quantity=trade.quantity,
        fee=trade.maker_fee if maker else trade.taker_fee,
        ts=trade.ts,
        side=trade.aggressor if not maker else trade.aggressor.opposite,
        maker=maker,
    )


def my_fill(
    instrument: Instrument, *, trade_id: int, order_id: OrderId, price: int, quantity: int,
    fee: int, ts: int, side: Side, maker: bool,
) -> dict[str, Any]:  # fmt: skip
    """One side of a trade as ``myTrades`` shows it: ``price`` in ticks, ``quantity`` in
    lots, ``fee`` in quote minor units, ``ts`` in ns, ``side`` the fill's own."""
    numbers = Precision(instrument)
    return {
        "symbol": joined(instrument.symbol),
        "id": trade_id,
        "orderId": order_id,
        "orderListId": -1,
        "price": numbers.price(price),
        "qty": numbers.quantity(quantity),
        "quoteQty": numbers.notional(price * quantity),
        "commission": numbers.quote(fee),
        "commissionAsset": instrument.quote_asset,
        "time": millis(ts),
        "isBuyer": side is Side.BUY,
        "isMaker": maker,
        "isBestMatch": True,
    }
