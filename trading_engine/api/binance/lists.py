"""Order lists of the signed user: ``orderList/oco``, ``/oto``, ``/otoco``, query, cancel.

Each leg's parameters (``abovePrice``, ``workingQuantity``, ...) are read as a
``POST order`` of its own (``trading.new_order``), so a leg is checked as a single
order is, then the legs go to the engine as one list (``ListRequest``), in the
engine's order of members:

- ``oco``: the take-profit leg (``LIMIT_MAKER``, ``TAKE_PROFIT``,
  ``TAKE_PROFIT_LIMIT``), then the stop-loss leg (``STOP_LOSS``,
  ``STOP_LOSS_LIMIT``): above and below for a sell, below and above for a buy;
- ``oto``: the working order, then the pending one;
- ``otoco``: the working order, then the pending pair as an ``oco``'s.

The engine keeps no client id of a list: ``listClientOrderId`` is checked and
then answered as the list's id (``orderListId``) in text, which is what
``listClientOrderId`` and ``origClientOrderId`` find a list by afterwards.
"""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify

from trading_engine.actors.messages import (
    ListRefused,
    ListRequest,
    ListResult,
    OrderRequest,
    Refused,
    Rejected,
)
from trading_engine.api.binance.errors import NO_SUCH_ORDER, BinanceError, binance_error_of
from trading_engine.api.binance.params import Params
from trading_engine.api.binance.public import ORDER_TYPES
from trading_engine.api.binance.render import fill, order
from trading_engine.api.binance.signing import signed
from trading_engine.api.binance.symbols import instrument_for, joined, millis
from trading_engine.api.binance.trading import new_order, rejection
from trading_engine.api.context import ctx
from trading_engine.core.enums import ListStatus, ListType, RejectReason
from trading_engine.core.events import Trade
from trading_engine.core.ids import UserId
from trading_engine.core.list_views import ListView

__all__ = ["list_status", "register"]

_LEG = {
    "Type": "type", "ClientOrderId": "newClientOrderId", "Price": "price",
    "StopPrice": "stopPrice", "TrailingDelta": "trailingDelta", "TimeInForce": "timeInForce",
    "IcebergQty": "icebergQty", "StrategyId": "strategyId", "StrategyType": "strategyType",
}  # fmt: skip
"""A leg's parameters after its prefix (``above``, ``pendingBelow``), as a single order's."""
_SHARED = ("symbol", "newOrderRespType", "selfTradePreventionMode")
_COMMON = ("symbol", "listClientOrderId", "newOrderRespType", "selfTradePreventionMode")

_TAKE_PROFIT = ("LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_STOP_LOSS = ("STOP_LOSS", "STOP_LOSS_LIMIT")
_MISPLACED = {
    ("SELL", "above", "STOP_LOSS"): (-1197, "A stop loss order in a sell OCO must be below."),
    ("SELL", "below", "LIMIT_MAKER"): (-1166, "A limit order in a sell OCO must be above."),
    ("SELL", "below", "TAKE_PROFIT"): (
        -1199, "A take profit order in a sell OCO must be above.",
    ),
    ("BUY", "above", "LIMIT_MAKER"): (-1165, "A limit order in a buy OCO must be below."),
    ("BUY", "above", "TAKE_PROFIT"): (-1198, "A take profit order in a buy OCO must be below."),
    ("BUY", "below", "STOP_LOSS"): (-1196, "A stop loss order in a buy OCO must be above."),
}  # fmt: skip
"""An OCO leg of a kind on the wrong side of the price (a ``_LIMIT`` type as its
kind): Binance's code and message."""
_PRICES_WRONG = "The relationship of the prices for the orders is not correct."
_AT_ONCE = (RejectReason.POST_ONLY_WOULD_TAKE, RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY)

_CONTINGENCY = {ListType.OCO: "OCO", ListType.OTO: "OTO", ListType.OTOCO: "OTO"}
_PENDING_NEW = "PENDING_NEW"
_LIST_ORDER_STATUS = {ListStatus.OPEN: "EXECUTING", ListStatus.REJECTED: "REJECT"}


def _leg_names(prefix: str, **shared: str) -> dict[str, str]:
    names = {f"{prefix}{suffix}": inner for suffix, inner in _LEG.items()}
    names.update({name: name for name in _SHARED})
    names.update(shared)
    return names


def _leg(params: Params, names: dict[str, str], user: UserId) -> tuple[OrderRequest, str, str]:
    """One leg, read as a single order from the parameters ``names`` maps; an error names
    the leg's own parameter (``abovePrice``, not ``price``)."""
    try:
        return new_order(params.part(names), user)
    except Exception as exc:  # turned into the dialect's error, its names renamed
        error = binance_error_of(exc)
        if error.status >= 500:
            raise
        message = error.msg
        for outer, inner in names.items():
            if outer != inner:
                message = message.replace(f"'{inner}'", f"'{outer}'")
                message = message.replace(f"Invalid {inner}.", f"Invalid {outer}.")
        raise BinanceError(error.status, error.code, message) from None


def _oco_types(params: Params, side: str, above: str, below: str) -> tuple[str, str]:
    """The OCO's two types checked: a take-profit kind on the profit side (above for a
    sell, below for a buy) and a stop-loss kind on the other; returns which of ``above``
    and ``below`` is the take-profit leg, then the stop-loss leg."""
    kinds = {}
    for where, name in (("above", above), ("below", below)):
        kind = params.need(f"{name}Type")
        if kind not in ORDER_TYPES:
            raise BinanceError(400, -1116, "Invalid orderType.")
        if kind not in (*_TAKE_PROFIT, *_STOP_LOSS):
            raise BinanceError(400, -1158, "Order type not supported in OCO.")
        kinds[where] = kind
    profit, loss = ("above", "below") if side == "SELL" else ("below", "above")
    wants = {profit: _TAKE_PROFIT, loss: _STOP_LOSS}
    for where, wanted in sorted(wants.items()):  # the above leg first
        if kinds[where] not in wanted:
            code, msg = _MISPLACED[(side, where, kinds[where].removesuffix("_LIMIT"))]
            raise BinanceError(400, code, msg)
    names = {"above": above, "below": below}
    return names[profit], names[loss]


def _side(params: Params, name: str) -> str:
    side = params.choice(name, ("BUY", "SELL"), code=-1117)
    if side is None:
        raise BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was "
                                       "empty/null, or malformed.")  # fmt: skip
    return side


def _working(params: Params) -> dict[str, str]:
    kind = params.need("workingType")
    if kind not in ("LIMIT", "LIMIT_MAKER"):
        raise BinanceError(400, -1116, "Invalid orderType.")
    _side(params, "workingSide")
    return _leg_names("working", workingSide="side", workingQuantity="quantity")


_OCO = (*_COMMON, "side", "quantity", *(f"{p}{s}" for p in ("above", "below") for s in _LEG))
_WORKING = (*_COMMON, "workingSide", "workingQuantity", "pendingSide", "pendingQuantity")
_OTO = (*_WORKING, *(f"{p}{s}" for p in ("working", "pending") for s in _LEG))
_OTOCO = (
    *_WORKING,
    *(f"{p}{s}" for p in ("working", "pendingAbove", "pendingBelow") for s in _LEG),
)


async def post_oco() -> Response:
    user, params = await signed(_OCO)
    side = _side(params, "side")
    profit, loss = _oco_types(params, side, "above", "below")
    legs = [_leg_names(where, side="side", quantity="quantity") for where in (profit, loss)]
    return await _place(params, user, ListType.OCO, legs)


async def post_oto() -> Response:
    user, params = await signed(_OTO)
    working = _working(params)
    _side(params, "pendingSide")
    pending = _leg_names("pending", pendingSide="side", pendingQuantity="quantity")
    return await _place(params, user, ListType.OTO, [working, pending])


async def post_otoco() -> Response:
    user, params = await signed(_OTOCO)
    working = _working(params)
    side = _side(params, "pendingSide")
    profit, loss = _oco_types(params, side, "pendingAbove", "pendingBelow")
    legs = [
        _leg_names(where, pendingSide="side", pendingQuantity="quantity")
        for where in (profit, loss)
    ]
    return await _place(params, user, ListType.OTOCO, [working, *legs])


async def _place(
    params: Params, user: UserId, kind: ListType, legs: list[dict[str, str]]
) -> Response:
    """Check every leg, then place the list whole; its answer, with each member's report
    as ``newOrderRespType`` asks (FULL by default)."""
    params.text("listClientOrderId")  # checked; the engine keeps none (module docstring)
    answer = params.choice("newOrderRespType", ("ACK", "RESULT", "FULL")) or "FULL"
    placed = [_leg(params, names, user) for names in legs]
    stp = placed[0][2]
    request = ListRequest(user, kind, tuple(leg for leg, _, _ in placed))
    outcome = await ctx().engine.submit_list(request)
    if isinstance(outcome, ListRefused):
        if outcome.reason in _AT_ONCE:
            raise BinanceError(400, -2010, _PRICES_WRONG)
        raise rejection((outcome.reason,))
    if isinstance(outcome, Rejected):
        raise rejection(outcome.reasons)
    assert isinstance(outcome, ListResult)
    return jsonify(_with_reports(outcome.order_list, answer, stp, outcome.trades))


def list_status(view: ListView) -> dict[str, Any]:
    """A list as ``GET orderList`` shows it."""
    ended = view.status is not ListStatus.OPEN
    return {
        "orderListId": view.list_id,
        "contingencyType": _CONTINGENCY[view.kind],
        "listStatusType": "ALL_DONE" if ended else "EXEC_STARTED",
        "listOrderStatus": _LIST_ORDER_STATUS.get(view.status, "ALL_DONE"),
        "listClientOrderId": str(view.list_id),
        "transactionTime": millis(view.updated_ts),
        "symbol": joined(view.symbol),
        "orders": [
            {
                "symbol": joined(view.symbol),
                "orderId": member.order_id,
                "clientOrderId": member.client_order_id or str(member.order_id),
            }
            for member in view.orders
        ],
    }


def _with_reports(
    view: ListView, answer: str, stp: str, trades: tuple[Trade, ...] = (), *, cancel: bool = False
) -> dict[str, Any]:
    """The list with ``orderReports``: each member as a single order's answer of type
    ``answer`` shows it, a member not placed yet as ``PENDING_NEW``."""
    instrument = ctx().engine.instruments()[view.symbol]
    reports = []
    for member in view.orders:
        transact = millis(member.updated_ts)
        if answer == "ACK":
            report: dict[str, Any] = {
                "symbol": joined(view.symbol),
                "orderId": member.order_id,
                "orderListId": view.list_id,
                "clientOrderId": member.client_order_id or str(member.order_id),
                "transactTime": transact,
            }
        else:
            report = order(member, instrument, stp)
            report["transactTime"] = transact
            if member.order_id in view.pending:
                report.update(status=_PENDING_NEW, isWorking=False, workingTime=-1)
            if answer == "FULL" and not cancel:
                report["fills"] = [
                    fill(t, instrument, member.order_id) for t in trades
                    if member.order_id in (t.maker_order_id, t.taker_order_id)
                ]  # fmt: skip
        if cancel:
            report["origClientOrderId"] = report["clientOrderId"]
        reports.append(report)
    return {**list_status(view), "orderReports": reports}


async def _find(params: Params, user: UserId, id_name: str, client_name: str) -> ListView:
    """The user's list named by id or (our) client id; raises -2013."""
    list_id = params.integer(id_name)
    client_id = params.text(client_name)
    if list_id is None and client_id is None:
        raise BinanceError(
            400, -1102,
            f"Param '{id_name}' or '{client_name}' must be sent, but both were empty/null!",
        )  # fmt: skip
    if list_id is None:
        assert client_id is not None
        if not (client_id.isascii() and client_id.isdigit() and len(client_id) <= 18):
            raise BinanceError(400, -2013, NO_SUCH_ORDER)
        list_id = int(client_id)
    view = await ctx().engine.order_list(list_id)
    if view is None or view.user_id != user:
        raise BinanceError(400, -2013, NO_SUCH_ORDER)
    if client_id is not None and client_id != str(view.list_id):
        raise BinanceError(400, -2013, NO_SUCH_ORDER)
    return view


async def get_order_list() -> Response:
    user, params = await signed(("orderListId", "origClientOrderId"))
    return jsonify(list_status(await _find(params, user, "orderListId", "origClientOrderId")))


async def delete_order_list() -> Response:
    """Cancel the list (an ended one's members still open); -2011 if nothing was open."""
    user, params = await signed(("symbol", "orderListId", "listClientOrderId", "newClientOrderId"))
    instrument = instrument_for(ctx().engine.instruments(), params.need("symbol"))
    params.text("newClientOrderId")
    try:
        view = await _find(params, user, "orderListId", "listClientOrderId")
    except BinanceError as exc:
        if exc.code == -2013:
            raise BinanceError(400, -2011, "Unknown order sent.") from None
        raise
    if view.symbol != instrument.symbol:
        raise BinanceError(400, -2011, "Unknown order sent.")
    outcome = await ctx().engine.cancel_list(view.list_id, user)
    if isinstance(outcome, Refused):
        raise BinanceError(400, -2011, "Unknown order sent.")
    return jsonify(_with_reports(outcome, "RESULT", "EXPIRE_TAKER", cancel=True))


async def _user_lists(user: UserId, open_only: bool) -> list[ListView]:
    """The user's lists the engine keeps, by ``orderListId`` ascending: those of the user's
    orders (a list's working order or legs are always orders)."""
    if open_only:
        _, views = await ctx().engine.open_orders(user)
    else:
        views = await ctx().engine.user_orders(user, limit=100_000)
    lists = []
    for list_id in sorted({v.list_id for v in views if v.list_id}):
        view = await ctx().engine.order_list(list_id)
        if view is not None and (not open_only or view.status is ListStatus.OPEN):
            lists.append(view)
    return lists


async def get_all_order_lists() -> Response:
    user, params = await signed(("fromId", "startTime", "endTime", "limit"))
    from_id = params.integer("fromId")
    start, end = params.integer("startTime"), params.integer("endTime")
    if from_id is not None and (start is not None or end is not None):
        raise BinanceError(400, -1106, "Parameter 'startTime' sent when not required.")
    limit = params.limit(500, 1000)
    views = [
        v for v in await _user_lists(user, open_only=False)
        if (from_id is None or v.list_id >= from_id)
        and (start is None or millis(v.created_ts) >= start)
        and (end is None or millis(v.created_ts) <= end)
    ]  # fmt: skip
    views = views[:limit] if from_id is not None or start is not None else views[-limit:]
    return jsonify([list_status(v) for v in views])


async def get_open_order_lists() -> Response:
    user, _ = await signed(())
    return jsonify([list_status(v) for v in await _user_lists(user, open_only=True)])


def register(add: Any) -> None:
    add("POST", "orderList/oco", post_oco)
    add("POST", "orderList/oto", post_oto)
    add("POST", "orderList/otoco", post_otoco)
    add("GET", "orderList", get_order_list)
    add("DELETE", "orderList", delete_order_list)
    add("GET", "allOrderList", get_all_order_lists)
    add("GET", "openOrderList", get_open_order_lists)
