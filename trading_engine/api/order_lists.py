"""Order lists: place one (``POST /order-lists``), read it, cancel it.

The body is a list's ``type`` and its ``orders``, each a complete ``POST
/orders`` body; a member's bad field is a 400 naming it under ``orders``
(``orders.1.price``), and nothing is placed. The engine checks and holds the
list as a whole (``actors/risk/lists.py``) and its symbol's matcher places it
whole or refuses it whole (``core.lists``): an OCO leg that would trade at
once or trigger at once is a 400 naming its ``price`` or ``stop_price``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from trading_engine.actors.mailbox import Reply
from trading_engine.actors.messages import (
    ListCancelled,
    ListOutcome,
    ListRefused,
    ListRequest,
    ListResult,
    OrderRequest,
    Refused,
    Rejected,
)
from trading_engine.api.auth import Principal, authenticate, user_for
from trading_engine.api.bodies import ListBody, decode_body, order_request
from trading_engine.api.context import ctx
from trading_engine.api.errors import ApiError, error_body, error_of, status_of
from trading_engine.api.models import ListLookupQuery, OrderListOut, documented
from trading_engine.api.orders import fields_under, with_fills
from trading_engine.api.schemas import asset_decimals, instrument_of, render_rejections
from trading_engine.core.enums import RejectReason
from trading_engine.core.events import Trade
from trading_engine.core.ids import parse_client_order_id
from trading_engine.core.list_views import ListView
from trading_engine.core.numbers import format_seconds
from trading_engine.core.risk import Rejection
from trading_engine.errors import InvalidInput

__all__ = [
    "answer_list",
    "blueprint",
    "list_cancelled",
    "list_placed",
    "list_request",
    "list_shown",
    "own_list",
    "render_list",
]

P = "/api/v1/trading"

blueprint = Blueprint("order_lists", __name__)

_AT_ONCE = {
    RejectReason.POST_ONLY_WOULD_TAKE: ("price", "would trade at once: an OCO leg must rest"),
    RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY: (
        "stop_price", "the last trade already reached it: the leg would trigger at once",
    ),
}  # fmt: skip
"""The refusals that say a member of an OCO cannot rest: the field at fault, and why."""


def list_request(body: ListBody, user_id: Any) -> ListRequest:
    """The engine's request for a decoded ``ListBody``: each member on its symbol's grids;
    raises ``InvalidInput`` naming the member's field (``orders.1.price``)."""
    instruments = ctx().engine.instruments()
    orders: list[OrderRequest] = []
    for position, member in enumerate(body.orders):
        if member.user_id is not None:
            raise InvalidInput(f"orders.{position}.user_id", "give user_id on the list")
        with fields_under(f"orders.{position}"):
            orders.append(order_request(member, instruments, user_id))
    return ListRequest(user_id, body.type, tuple(orders), body.list_client_id)


async def render_list(view: ListView, known: Sequence[Trade] = ()) -> dict[str, Any]:
    """A list as the API shows it: its orders with their fills, each with ``list_id``; a
    member not placed yet has status ``pending_new``."""
    return list_shown(view, await with_fills(view.orders, known))


def list_shown(view: ListView, orders: list[dict[str, Any]]) -> dict[str, Any]:
    """``render_list``'s answer, given its members rendered (``orders``, in its order)."""
    for order in orders:
        if int(order["order_id"]) in view.pending:
            order["status"] = "pending_new"
    return {
        "list_id": str(view.list_id),
        "type": str(view.kind),
        "status": str(view.status),
        "symbol": view.symbol,
        "user_id": view.user_id,
        "list_client_id": view.list_client_id or None,
        "orders": orders,
        "created_at": format_seconds(view.created_ts),
        "updated_at": format_seconds(view.updated_ts),
    }


async def answer_list(
    request_: ListRequest, outcome: ListOutcome, *, at: str = ""
) -> tuple[int, dict[str, Any]]:
    """The status and body that answer a list the engine took: 201 with the list, 422 for
    a rejection with its figures; raises ``InvalidInput`` for an OCO leg that cannot rest."""
    metrics = current_app.config["METRICS"]
    if isinstance(outcome, ListResult):
        metrics.orders.labels("accepted").inc(len(outcome.order_list.orders))
        metrics.trades.inc(len(outcome.trades))
        return 201, await render_list(outcome.order_list, outcome.trades)
    symbol = request_.orders[0].symbol
    if isinstance(outcome, Refused):  # list_client_id_reused
        return status_of(outcome.code), error_body(
            outcome.code, outcome.message, field=f"{at}.list_client_id" if at else "list_client_id"
        )
    if isinstance(outcome, ListRefused):
        at_once = _AT_ONCE.get(outcome.reason)
        if at_once is not None:
            field = f"orders.{outcome.position}.{at_once[0]}"
            raise InvalidInput(f"{at}.{field}" if at else field, at_once[1])
        outcome = Rejected((Rejection(outcome.reason),))
    metrics.orders.labels("rejected").inc()
    instruments = ctx().engine.instruments()

    def places(asset: str) -> int:
        return asset_decimals(instruments, asset)

    why, figures = render_rejections(outcome.rejections, instrument_of(instruments, symbol), places)
    reasons = [str(r) for r in outcome.reasons]
    return 422, error_body(
        "rejected", f"order list rejected: {why}", reasons=reasons, figures=figures
    )


async def list_placed(
    request_: ListRequest, reply: Reply[ListOutcome], *, at: str = ""
) -> tuple[int, dict[str, Any]]:
    """The status and body answering a list handed to the engine (``submit_list_soon``):
    ``answer_list``'s, or the error it met (a field named under ``at`` either way)."""
    try:
        with fields_under(at):
            outcome = await reply.wait()
        return await answer_list(request_, outcome, at=at)
    except Exception as exc:  # noqa: BLE001 - the list's own answer
        return error_of(exc)


async def list_cancelled(
    list_id: int, reply: Reply[ListCancelled | Refused]
) -> tuple[int, dict[str, Any]]:
    """The status and body answering a list's cancel handed to the engine."""
    try:
        outcome = await ctx().engine.list_cancelled(list_id, await reply.wait())
    except Exception as exc:  # noqa: BLE001 - the request's own answer
        return error_of(exc)
    if isinstance(outcome, Refused):
        return status_of(outcome.code), error_body(outcome.code, outcome.message)
    return 200, await render_list(outcome)


async def own_list(principal: Principal, list_id: object) -> ListView:
    """The caller's list ``list_id`` (any, for an admin); a 404 otherwise."""
    view = None
    raw = str(list_id)
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        view = await ctx().engine.order_list(int(raw))
    if view is None or (not principal.admin and view.user_id != principal.user_id):
        raise ApiError(404, "unknown_order_list", f"no order list {list_id}")
    return view


@blueprint.post(f"{P}/order-lists")
@documented(OrderListOut, 403, 404, 409, 422, status=201, body=ListBody)
async def submit_list() -> Response:
    """Place an order list whole: 201 once it is durable, with its orders (each with its
    ``list_id``); a 400 names the member's field at fault, a 409 a ``list_client_id`` that
    an open list of the user has, and nothing is placed."""
    engine = ctx().engine
    principal = await authenticate(engine, ctx().admin_key)
    body = decode_body(await request.get_data(), ListBody)
    user_id = await user_for(engine, principal, body.user_id)
    list_request_ = list_request(body, user_id)
    status, answer = await answer_list(list_request_, await engine.submit_list(list_request_))
    response = jsonify(answer)
    response.status_code = status
    return response


@blueprint.get(f"{P}/order-lists")
@documented(OrderListOut, 400, 403, 404, query=ListLookupQuery)
async def find_list() -> Response:
    """The user's newest list placed with ``list_client_id`` (open, or ended and still
    kept); 404 ``unknown_order_list`` if there is none."""
    engine = ctx().engine
    principal = await authenticate(engine, ctx().admin_key)
    user_id = await user_for(engine, principal, request.args.get("user_id"))
    client_id = parse_client_order_id(request.args.get("list_client_id"), field="list_client_id")
    view = await engine.list_by_client_id(user_id, client_id)
    if view is None:
        raise ApiError(404, "unknown_order_list", f"no order list {client_id!r} of {user_id}")
    return jsonify(await render_list(view))


@blueprint.get(f"{P}/order-lists/<list_id>")
@documented(OrderListOut, 404)
async def get_list(list_id: str) -> Response:
    principal = await authenticate(ctx().engine, ctx().admin_key)
    return jsonify(await render_list(await own_list(principal, list_id)))


@blueprint.delete(f"{P}/order-lists/<list_id>")
@documented(OrderListOut, 404, 409)
async def cancel_list(list_id: str) -> Response:
    """Cancel the list: an open one whole (its members not placed yet never are), an
    ended one's open members; 409 ``order_list_not_open`` if none is open."""
    principal = await authenticate(ctx().engine, ctx().admin_key)
    view = await own_list(principal, list_id)
    user = None if principal.admin else view.user_id
    status, answer = await list_cancelled(
        view.list_id, ctx().engine.cancel_list_soon(view.list_id, user)
    )
    response = jsonify(answer)
    response.status_code = status
    return response
