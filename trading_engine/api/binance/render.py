"""Orders and fills as Binance shows them, from the engine's views."""

from __future__ import annotations

from typing import Any

from trading_engine.api.binance.symbols import Precision, joined, millis
from trading_engine.core.enums import OrderStatus, OrderType, Side, StpMode
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.views import OrderView

__all__ = ["STP_MODES", "binance_type", "fill", "my_trade", "order", "status"]

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
}


_EXPIRED = frozenset({"unfilled_ioc", "no_liquidity", "price_band", "fok_not_fillable"})
"""Reasons of ours for an order Binance shows as EXPIRED (an IOC or FOK, or a market
order, that the book could not fill), not CANCELED or REJECTED."""


def status(view: OrderView) -> str:
    if view.reason in _EXPIRED:
        return "EXPIRED"
    if view.reason == "self_trade_prevention":
        return "EXPIRED_IN_MATCH"
    return _STATUS[view.status]


def binance_type(view: OrderView) -> str:
    if view.type is OrderType.LIMIT and view.post_only:
        return "LIMIT_MAKER"
    return _TYPES[view.type]


def order(view: OrderView, instrument: Instrument, stp: str = "EXPIRE_TAKER") -> dict[str, Any]:
    """An order as ``GET order`` shows it."""
    numbers = Precision(instrument)
    kind = binance_type(view)
    return {
        "symbol": joined(view.symbol),
        "orderId": view.order_id,
        "orderListId": -1,
        "clientOrderId": view.client_order_id or str(view.order_id),
        "price": numbers.price(view.price),
        "origQty": numbers.quantity(view.quantity),
        "executedQty": numbers.quantity(view.filled),
        "cummulativeQuoteQty": numbers.notional(view.notional),
        "status": status(view),
        "timeInForce": "GTC" if kind == "LIMIT_MAKER" else str(view.time_in_force),
        "type": kind,
        "side": view.side.value.upper(),
        "stopPrice": numbers.price(view.stop_price),
        "icebergQty": numbers.quantity(0),
        "time": millis(view.created_ts),
        "updateTime": millis(view.updated_ts),
        "isWorking": view.status is not OrderStatus.PENDING_TRIGGER,
        "workingTime": millis(view.created_ts)
        if view.status is not OrderStatus.PENDING_TRIGGER
        else -1,
        "origQuoteOrderQty": numbers.quote(0),
        "selfTradePreventionMode": stp,
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
    numbers = Precision(instrument)
    maker = _maker(trade, order_id)
    side = trade.aggressor if not maker else trade.aggressor.opposite
    return {
        "symbol": joined(trade.symbol),
        "id": trade.trade_id,
        "orderId": order_id,
        "orderListId": -1,
        "price": numbers.price(trade.price),
        "qty": numbers.quantity(trade.quantity),
        "quoteQty": numbers.notional(trade.price * trade.quantity),
        "commission": numbers.quote(trade.maker_fee if maker else trade.taker_fee),
        "commissionAsset": instrument.quote_asset,
        "time": millis(trade.ts),
        "isBuyer": side is Side.BUY,
        "isMaker": maker,
        "isBestMatch": True,
    }
