"""Orders of the signed user: new, test, query, cancel, cancel-replace, lists.

A new order's parameters are translated to the body ``POST /api/v1/trading/orders``
takes and checked by the same ``order_request``; the engine then decides as it
does for that route. Its answers are translated back: a rejection to -2010 or
to the filter -1013 names (``_REJECTIONS``), a refused cancel to -2011.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from quart import Response, jsonify

from trading_engine.actors.messages import (
    ClientIdReused,
    OrderRequest,
    OrderResult,
    Refused,
    Rejected,
)
from trading_engine.api.binance.errors import (
    INSUFFICIENT_BALANCE,
    NO_SUCH_ORDER,
    BinanceError,
    unsupported,
)
from trading_engine.api.binance.history import Selection, all_orders, past_order
from trading_engine.api.binance.params import Params
from trading_engine.api.binance.public import ORDER_TYPES
from trading_engine.api.binance.render import STP_MODES, fill, order
from trading_engine.api.binance.signing import signed
from trading_engine.api.binance.symbols import Precision, instrument_for, millis
from trading_engine.api.bodies import OrderBody, convert_body, order_request
from trading_engine.api.context import ctx
from trading_engine.core.enums import RejectReason
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.views import OrderView

__all__ = ["generated_id", "new_order", "register", "rejection"]

_NEW_ORDER = (
    "symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
    "newClientOrderId", "stopPrice", "newOrderRespType", "selfTradePreventionMode",
    "icebergQty", "trailingDelta", "strategyId", "strategyType",
)  # fmt: skip
_TRAILING_LIMIT = "Trailing stop-limit orders are not supported for this symbol."
_STOP_ACTIVATED = (
    "Trailing STOP_LOSS orders with a stopPrice (activated against the order) are not supported "
    "for this symbol."
)
_ICEBERG_STOP = "Iceberg stop-limit orders are not supported for this symbol."
"""What Binance has and the engine has not: Binance's own answer for a symbol without
it, -2010 (see ``new_order``)."""
_ENGINE_TYPES = {
    "LIMIT": "limit", "LIMIT_MAKER": "limit", "MARKET": "market", "STOP_LOSS": "stop",
    "STOP_LOSS_LIMIT": "stop_limit", "TAKE_PROFIT": "take_profit",
    "TAKE_PROFIT_LIMIT": "take_profit_limit",
}  # fmt: skip
_WITH_PRICE = ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
_WITH_TIF = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
_CONTINGENT = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_TIME_IN_FORCE = ("GTC", "IOC", "FOK")
_UNKNOWN_ORDER = "Unknown order sent."
_CANCEL_RESTRICTIONS = ("ONLY_NEW", "ONLY_PARTIALLY_FILLED")

_REJECTIONS: dict[RejectReason, tuple[int, str]] = {
    RejectReason.SYMBOL_HALTED: (-2010, "Market is closed."),
    # Before the filters: a market order with no price to go by (an empty book) has no
    # size or notional either.
    RejectReason.NO_REFERENCE_PRICE: (-1112, "No orders on book for symbol."),
    RejectReason.INSUFFICIENT_FUNDS: (-2010, INSUFFICIENT_BALANCE),
    RejectReason.INSUFFICIENT_MARGIN: (-2010, INSUFFICIENT_BALANCE),
    RejectReason.BELOW_MIN_QUANTITY: (-1013, "Filter failure: LOT_SIZE"),
    RejectReason.ABOVE_MAX_ORDER_SIZE: (-1013, "Filter failure: LOT_SIZE"),
    RejectReason.BELOW_MIN_NOTIONAL: (-1013, "Filter failure: NOTIONAL"),
    RejectReason.OUTSIDE_PRICE_BAND: (-1013, "Filter failure: PERCENT_PRICE_BY_SIDE"),
    RejectReason.TOO_MANY_OPEN_ORDERS: (-1013, "Filter failure: MAX_NUM_ORDERS"),
    RejectReason.ABOVE_MAX_POSITION: (-2010, "Filter failure: MAX_POSITION"),
    RejectReason.POST_ONLY_WOULD_TAKE: (-2010, "Order would immediately match and take."),
    RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY: (-2010, "Order would trigger immediately."),
}
"""A rejection's reason to Binance's code and message; the first reason listed here of a
rejection's reasons decides, the others are -2010 with the reason's name."""


def rejection(reasons: tuple[RejectReason, ...]) -> BinanceError:
    for reason, (code, msg) in _REJECTIONS.items():
        if reason in reasons:
            return BinanceError(400, code, msg)
    names = ", ".join(str(r) for r in reasons)
    return BinanceError(400, -2010, f"Order rejected: {names}.")


def new_order(params: Params, user: UserId) -> tuple[OrderRequest, str, str]:
    """The order the parameters describe, checked as ``/api/v1`` checks one; its
    ``newOrderRespType`` and self-trade prevention mode. Raises the dialect's errors."""
    instrument = instrument_for(ctx().engine.instruments(), params.need("symbol"))
    side = params.choice("side", ("BUY", "SELL"), code=-1117)
    if side is None:
        raise BinanceError(400, -1102, "Mandatory parameter 'side' was not sent, was "
                                       "empty/null, or malformed.")  # fmt: skip
    kind = params.need("type")
    if kind not in ORDER_TYPES:
        raise BinanceError(400, -1116, "Invalid orderType.")
    params.choice("timeInForce", _TIME_IN_FORCE, code=-1115)
    trailing = params.integer("trailingDelta") if kind in _CONTINGENT else None
    needs_stop = kind in _CONTINGENT and trailing is None
    _not_required(params, kind)
    body: dict[str, Any] = {
        "symbol": instrument.symbol,
        "side": side.lower(),
        "type": _ENGINE_TYPES[kind],
        "client_order_id": params.text("newClientOrderId") or generated_id(),
        "stp": str(STP_MODES[params.choice("selfTradePreventionMode", tuple(STP_MODES))
                             or "EXPIRE_TAKER"]),
    }  # fmt: skip
    if kind == "MARKET" and params.has("quoteOrderQty"):
        if params.has("quantity"):
            raise _sent_needlessly("quoteOrderQty")
        body["quote_quantity"] = params.need("quoteOrderQty")
    elif kind == "MARKET" and not params.has("quantity"):
        raise BinanceError(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but "
                                       "both were empty/null!")  # fmt: skip
    else:
        body["quantity"] = params.need("quantity")
    if kind in _WITH_PRICE:
        body["price"] = params.need("price")
    if needs_stop:
        body["stop_price"] = params.need("stopPrice")
    if kind in _WITH_TIF:
        body["time_in_force"] = params.need("timeInForce")
    if params.has("icebergQty"):
        if kind not in ("LIMIT", "LIMIT_MAKER"):
            raise BinanceError(400, -2010, _ICEBERG_STOP)
        body["display_quantity"] = params.need("icebergQty")
    _precise(params, Precision(instrument))
    if kind == "LIMIT_MAKER":
        body["post_only"] = True
    if trailing is not None:
        _trailing(body, params, kind, trailing)
    default = "FULL" if kind in ("LIMIT", "MARKET") else "ACK"
    answer = params.choice("newOrderRespType", ("ACK", "RESULT", "FULL")) or default
    checked = convert_body(body, OrderBody)
    stp_name = params.text("selfTradePreventionMode") or "EXPIRE_TAKER"
    return order_request(checked, ctx().engine.instruments(), user), answer, stp_name


def _precise(params: Params, numbers: Precision) -> None:
    """Raise -1111 for a price or quantity with more decimals than the symbol shows (its
    ``baseAssetPrecision`` or ``quotePrecision``), as Binance does before its filters; one
    within them but off the tick or lot is the filter's -1013. Trailing zeros do not
    count, so a value on the grid is never refused here."""
    places = {
        "price": numbers.price_places,
        "stopPrice": numbers.price_places,
        "quantity": numbers.quantity_places,
        "icebergQty": numbers.quantity_places,
    }
    for name, most in places.items():
        # Not a plain decimal (None): the engine's own check names what is wrong.
        if (sent := params.places(name)) is not None and sent > most:
            raise BinanceError(400, -1111, f"Parameter '{name}' has too much precision.")


def _sent_needlessly(name: str) -> BinanceError:
    return BinanceError(400, -1106, f"Parameter '{name}' sent when not required.")


def _not_required(params: Params, kind: str) -> None:
    """Raise -1106 for a parameter ``kind`` does not take (a trailing stop's
    ``stopPrice`` is optional: its activation price)."""
    takes = {
        "price": kind in _WITH_PRICE,
        "stopPrice": kind in _CONTINGENT,
        "timeInForce": kind in _WITH_TIF,
        "trailingDelta": kind in _CONTINGENT,
        "quoteOrderQty": kind == "MARKET",
        "icebergQty": kind not in ("MARKET", "STOP_LOSS", "TAKE_PROFIT"),
    }
    for name, taken in takes.items():
        if not taken and params.has(name):
            raise _sent_needlessly(name)


def _trailing(body: dict[str, Any], params: Params, kind: str, bips: int) -> None:
    """A contingent order with ``trailingDelta`` (basis points, Binance's BIPS) as the
    engine's ``trailing_stop``: armed at once, or, with ``stopPrice``, once a trade
    reaches it in the order's favour, which is what a TAKE_PROFIT's ``stopPrice`` means
    (a sell at or above, a buy at or below). A STOP_LOSS's ``stopPrice`` activates it
    the other way, and a trailing stop-limit keeps its limit ``price`` as is; the
    engine has neither (-2010)."""
    if kind in ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
        raise BinanceError(400, -2010, _TRAILING_LIMIT)
    if kind == "STOP_LOSS" and params.has("stopPrice"):
        raise BinanceError(400, -2010, _STOP_ACTIVATED)
    body["type"] = "trailing_stop"
    body["trailing_bps"] = bips
    if params.has("stopPrice"):
        body["activation_price"] = params.need("stopPrice")


def generated_id() -> str:
    return "te" + secrets.token_hex(11)


async def _place(request: OrderRequest, answer: str, stp: str) -> dict[str, Any]:
    """Submit, and the answer ``newOrderRespType`` asks for; raises the rejection."""
    outcome = await ctx().engine.submit(request)
    if isinstance(outcome, ClientIdReused) or (
        isinstance(outcome, OrderResult) and outcome.duplicate
    ):
        raise BinanceError(400, -2010, "Duplicate order sent.")
    trades: tuple[Trade, ...] = ()
    if isinstance(outcome, Rejected):
        if outcome.reasons != (RejectReason.FOK_NOT_FILLABLE,) or outcome.order is None:
            raise rejection(outcome.reasons)
        view = outcome.order  # Binance answers it as an EXPIRED order
    else:
        view, trades = outcome.order, outcome.trades
    instrument = ctx().engine.instruments()[request.symbol]
    transact = millis(view.updated_ts)
    if answer == "ACK":
        return {
            "symbol": order(view, instrument)["symbol"],
            "orderId": view.order_id,
            "orderListId": view.list_id or -1,
            "clientOrderId": view.client_order_id,
            "transactTime": transact,
        }
    body = order(view, instrument, stp)
    body["transactTime"] = transact
    if answer == "FULL":
        body["fills"] = [fill(t, instrument, view.order_id) for t in trades]
    return body


async def post_order() -> Response:
    user, params = await signed(_NEW_ORDER)
    request, answer, stp = new_order(params, user)
    return jsonify(await _place(request, answer, stp))


async def post_order_test() -> Response:
    """The order checked, and the risk check run (nothing placed); with
    ``computeCommissionRates=true``, the symbol's commission rates."""
    user, params = await signed((*_NEW_ORDER, "computeCommissionRates"))
    rates = params.choice("computeCommissionRates", ("true", "false")) == "true"
    request, _, _ = new_order(params, user)
    check = await ctx().engine.check(request)
    if not check.allowed:
        raise rejection(check.reasons)
    if not rates:
        return jsonify({})
    instrument = ctx().engine.instruments()[request.symbol]

    def rate(bps: int) -> str:
        return f"{Decimal(bps) / 10_000:.8f}"

    return jsonify(
        {
            "standardCommissionForOrder": {
                "maker": rate(instrument.maker_fee_bps),
                "taker": rate(instrument.taker_fee_bps),
            },
            "specialCommissionForOrder": {"maker": rate(0), "taker": rate(0)},
            "taxCommissionForOrder": {"maker": rate(0), "taker": rate(0)},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": None,
                "discount": rate(0),
            },
        }
    )


async def _find(
    user: UserId, instrument: Instrument, params: Params, id_name: str, client_name: str
) -> OrderView:
    """The user's order in ``instrument`` named by id or client order id; raises -2013."""
    order_id = params.integer(id_name)
    client_id = params.text(client_name)
    if order_id is None and client_id is None:
        raise BinanceError(
            400, -1102,
            f"Param '{client_name}' or '{id_name}' must be sent, but both were empty/null!",
        )  # fmt: skip
    view: OrderView | None
    if order_id is not None:
        view = await ctx().engine.order(OrderId(order_id))
        if view is None:
            view = await past_order(user, instrument, order_id)
    else:
        assert client_id is not None
        view = await ctx().engine.open_by_client_id(user, client_id)
        if view is None:
            views = await ctx().engine.user_orders(user, limit=1000)
            view = next((v for v in views if v.client_order_id == client_id), None)
        if view is None:
            view = await past_order(user, instrument, None, client_id)
    if view is None or view.user_id != user or view.symbol != instrument.symbol:
        raise BinanceError(400, -2013, NO_SUCH_ORDER)
    if client_id is not None and view.client_order_id != client_id:
        raise BinanceError(400, -2013, NO_SUCH_ORDER)
    return view


async def get_order() -> Response:
    user, params = await signed(("symbol", "orderId", "origClientOrderId"))
    instrument = instrument_for(ctx().engine.instruments(), params.need("symbol"))
    view = await _find(user, instrument, params, "orderId", "origClientOrderId")
    return jsonify(order(view, instrument))


async def _cancel(
    user: UserId, view: OrderView, instrument: Instrument, cancel_id: str | None
) -> dict[str, Any]:
    """Cancel ``view``; its answer, or raises -2011."""
    result = await ctx().engine.cancel(view.order_id, user)
    if isinstance(result, Refused):
        raise BinanceError(400, -2011, _UNKNOWN_ORDER)
    return _cancelled(result.order, instrument, cancel_id)


def _cancelled(view: OrderView, instrument: Instrument, cancel_id: str | None) -> dict[str, Any]:
    """A cancelled order as Binance answers its cancel: ``origClientOrderId`` is the order's
    client order id, ``clientOrderId`` the cancel's own (``newClientOrderId``, else made
    up), which names the cancel and nothing else here."""
    body = order(view, instrument)
    body["origClientOrderId"] = body["clientOrderId"]
    body["clientOrderId"] = cancel_id or generated_id()
    body["transactTime"] = millis(view.updated_ts)
    return body


def _no_cancel_restrictions(params: Params) -> None:
    """``cancelRestrictions``: another value is -1145, as Binance's; ``ONLY_NEW`` and
    ``ONLY_PARTIALLY_FILLED`` are -1014, as the engine cannot cancel on a condition at
    once (a check, then a cancel, would let a fill come between them)."""
    value = params.choice("cancelRestrictions", _CANCEL_RESTRICTIONS, code=-1145)
    if value is not None:
        raise unsupported()


async def delete_order() -> Response:
    user, params = await signed(
        ("symbol", "orderId", "origClientOrderId", "newClientOrderId", "cancelRestrictions")
    )
    instrument = instrument_for(ctx().engine.instruments(), params.need("symbol"))
    _no_cancel_restrictions(params)
    try:
        view = await _find(user, instrument, params, "orderId", "origClientOrderId")
    except BinanceError as exc:
        if exc.code == -2013:
            raise BinanceError(400, -2011, _UNKNOWN_ORDER) from None
        raise
    return jsonify(await _cancel(user, view, instrument, params.text("newClientOrderId")))


async def get_open_orders() -> Response:
    user, params = await signed(("symbol",))
    instruments = ctx().engine.instruments()
    name = params.text("symbol")
    symbol = instrument_for(instruments, name).symbol if name is not None else None
    _, views = await ctx().engine.open_orders(user)
    return jsonify(
        [order(v, instruments[v.symbol]) for v in views if symbol is None or v.symbol == symbol]
    )


async def delete_open_orders() -> Response:
    user, params = await signed(("symbol",))
    instrument = instrument_for(ctx().engine.instruments(), params.need("symbol"))
    cancelled = await ctx().engine.cancel_all(user, instrument.symbol)
    if not cancelled:
        raise BinanceError(400, -2011, _UNKNOWN_ORDER)
    return jsonify(
        [_cancelled(v, instrument, None) for v in sorted(cancelled, key=lambda v: v.order_id)]
    )


async def get_all_orders() -> Response:
    """The user's orders in ``symbol``, open and finished, from the whole history
    (``history.all_orders``), by ``orderId`` ascending."""
    user, params = await signed(("symbol", "orderId", "startTime", "endTime", "limit"))
    instrument = instrument_for(ctx().engine.instruments(), params.need("symbol"))
    chosen = Selection(params, "orderId")
    views = await all_orders(user, instrument, chosen, params.limit(500, 1000))
    return jsonify([order(v, instrument) for v in views])


async def post_cancel_replace() -> Response:
    """Cancel an order, then place a new one (``STOP_ON_FAILURE``: only if the cancel
    succeeded; ``ALLOW_FAILURE``: either way). Both are checked before either is done."""
    user, params = await signed(
        (*_NEW_ORDER, "cancelReplaceMode", "cancelOrderId", "cancelOrigClientOrderId",
         "cancelNewClientOrderId", "cancelRestrictions", "orderRateLimitExceededMode")
    )  # fmt: skip
    mode = params.choice("cancelReplaceMode", ("STOP_ON_FAILURE", "ALLOW_FAILURE"))
    if mode is None:
        raise BinanceError(400, -1102, "Mandatory parameter 'cancelReplaceMode' was not sent, "
                                       "was empty/null, or malformed.")  # fmt: skip
    _no_cancel_restrictions(params)
    request, answer, stp = new_order(params, user)
    instrument = ctx().engine.instruments()[request.symbol]
    cancel: dict[str, Any]
    try:
        view = await _find(user, instrument, params, "cancelOrderId", "cancelOrigClientOrderId")
        cancel = await _cancel(user, view, instrument, params.text("cancelNewClientOrderId"))
        cancelled = True
    except BinanceError as exc:
        if exc.code not in (-2011, -2013):
            raise
        cancel, cancelled = {"code": -2011, "msg": _UNKNOWN_ORDER}, False
    if not cancelled and mode == "STOP_ON_FAILURE":
        return _replace_failed(
            400, -2022, "Order cancel-replace failed.", cancel, "NOT_ATTEMPTED", None
        )
    try:
        placed: dict[str, Any] = await _place(request, answer, stp)
    except BinanceError as exc:
        failure = {"code": exc.code, "msg": exc.msg}
        return _replace_failed(
            409 if cancelled else 400,
            -2021 if cancelled else -2022,
            "Order cancel-replace partially failed." if cancelled
            else "Order cancel-replace failed.",
            cancel, "FAILURE", failure,
        )  # fmt: skip
    if not cancelled:
        return _replace_failed(
            409, -2021, "Order cancel-replace partially failed.", cancel, "SUCCESS", placed
        )
    return jsonify(
        {
            "cancelResult": "SUCCESS",
            "newOrderResult": "SUCCESS",
            "cancelResponse": cancel,
            "newOrderResponse": placed,
        }
    )


def _replace_failed(
    status: int,
    code: int,
    msg: str,
    cancel: dict[str, Any],
    placed: str,
    new_order: dict[str, Any] | None,
) -> Response:
    response = jsonify(
        {
            "code": code,
            "msg": msg,
            "data": {
                "cancelResult": "SUCCESS" if "orderId" in cancel else "FAILURE",
                "newOrderResult": placed,
                "cancelResponse": cancel,
                "newOrderResponse": new_order,
            },
        }
    )
    response.status_code = status
    return response


def register(add: Any) -> None:
    add("POST", "order", post_order)
    add("POST", "order/test", post_order_test)
    add("GET", "order", get_order)
    add("DELETE", "order", delete_order)
    add("GET", "openOrders", get_open_orders)
    add("DELETE", "openOrders", delete_open_orders)
    add("GET", "allOrders", get_all_orders)
    add("POST", "order/cancelReplace", post_cancel_replace)
