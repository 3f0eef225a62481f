"""Execution algorithms: start (``POST /algos``), read, list a user's, stop.

The body is read exactly (``core.numbers``): the quantity on the symbol's lot
grid, ``limit_price`` on its tick grid, ``duration_s`` and ``participation``
as decimal strings or integers, never through float. What the body gets
wrong is a 400 naming the field, and nothing starts. The algorithm then runs
in the engine (``actors/algos/``); its child orders are ordinary orders with
``algo_id`` (``GET /orders/{id}``), and its updates reach the owner's
``orders`` channel on the feed.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request

from trading_engine import wire
from trading_engine.actors.messages import AlgoRequest, Refused
from trading_engine.api.auth import authenticate, known_user
from trading_engine.api.context import ctx
from trading_engine.api.errors import ApiError, error_body, status_of
from trading_engine.api.models import (
    Algo,
    AlgoBody,
    AlgoList,
    LimitQuery,
    documented,
    validate_body,
)
from trading_engine.api.orders import _limit
from trading_engine.api.schemas import instrument_of
from trading_engine.core.algos import (
    DEFAULT_PARTICIPATION,
    AlgoType,
    AlgoView,
    parse_duration_ns,
    parse_participation,
)
from trading_engine.core.enums import Side
from trading_engine.core.ids import Symbol
from trading_engine.core.numbers import format_decimal, from_units
from trading_engine.errors import InvalidInput

__all__ = ["blueprint"]

P = "/api/v1/trading"

blueprint = Blueprint("algos", __name__)


def _render(view: AlgoView) -> dict[str, Any]:
    return wire.algo(instrument_of(ctx().engine.instruments(), view.symbol), view)


def _answer(outcome: AlgoView | Refused, status: int) -> Response:
    """The algorithm with ``status``, or the refusal in the error shape."""
    if isinstance(outcome, Refused):
        response = jsonify(error_body(outcome.code, outcome.message))
        response.status_code = status_of(outcome.code)
    else:
        response = jsonify(_render(outcome))
        response.status_code = status
    return response


def algo_request(body: dict[str, Any], user_id: Any) -> AlgoRequest:
    """The engine's request for a checked ``AlgoBody``; raises ``InvalidInput`` (400) or a
    404 ``symbol_unknown``, naming the field."""
    instrument = instrument_of(ctx().engine.instruments(), body["symbol"], field="symbol")
    kind = AlgoType(body["type"])
    quantity = instrument.quantity_to_lots(body["quantity"])
    duration_ns = parse_duration_ns(body["duration_s"])
    slices: int = body["slices"]
    limit_price = 0
    if body.get("limit_price") is not None:
        limit_price = instrument.price_to_ticks(body["limit_price"], field="limit_price")
    participation = DEFAULT_PARTICIPATION
    if body.get("participation") is not None:
        if kind is not AlgoType.VWAP:
            raise InvalidInput("participation", "is only for vwap")
        participation = parse_participation(body["participation"])
    if kind is AlgoType.TWAP:
        smallest = max(1, instrument.min_quantity)
        if quantity // slices < smallest:
            shown = format_decimal(from_units(smallest, instrument.lot_size))
            raise InvalidInput(
                "slices",
                f"too many: each slice would be below {shown}, the smallest quantity "
                f"{instrument.symbol} takes",
            )
    return AlgoRequest(
        user_id, Symbol(instrument.symbol), kind, Side(body["side"]), quantity, slices,
        duration_ns, limit_price, participation,
    )  # fmt: skip


async def _own_algo(algo_id: str) -> AlgoView:
    """The caller's algorithm ``algo_id`` (any, for an admin); a 404 otherwise."""
    principal = await authenticate(ctx().engine, ctx().admin_key)
    view = None
    if algo_id.isascii() and algo_id.isdigit() and len(algo_id) <= 18:
        view = await ctx().engine.algo(int(algo_id))
    if view is None or (not principal.admin and view.user_id != principal.user_id):
        raise ApiError(404, "unknown_algo", f"no algo {algo_id}")
    return view


@blueprint.post(f"{P}/algos")
@documented(Algo, 403, 404, status=201, body=AlgoBody)
async def start_algo() -> Response:
    """Start a TWAP or VWAP: 201 with the algorithm once its start is durable."""
    body = validate_body(await request.get_data(), AlgoBody)
    user_id = await known_user(ctx().engine, ctx().admin_key, body.get("user_id"))
    outcome = await ctx().engine.start_algo(algo_request(body, user_id))
    return _answer(outcome, 201)


@blueprint.get(f"{P}/algos/<algo_id>")
@documented(Algo, 404)
async def get_algo(algo_id: str) -> Response:
    return jsonify(_render(await _own_algo(algo_id)))


@blueprint.delete(f"{P}/algos/<algo_id>")
@documented(Algo, 404, 409)
async def stop_algo(algo_id: str) -> Response:
    """Stop the algorithm: no slice is sent after the answer, which comes once it is
    journaled ``cancelled`` (409 ``algo_not_running`` once it has ended)."""
    view = await _own_algo(algo_id)
    principal = await authenticate(ctx().engine, ctx().admin_key)
    user = None if principal.admin else principal.user_id
    return _answer(await ctx().engine.stop_algo(view.algo_id, user), 200)


@blueprint.get(f"{P}/users/<user_id>/algos")
@documented(AlgoList, 403, 404, query=LimitQuery)
async def user_algos(user_id: str) -> Response:
    """The user's algorithms, newest first."""
    user = await known_user(ctx().engine, ctx().admin_key, user_id)
    limit = _limit(request.args.get("limit"), 100, 1000)
    return jsonify({"algos": [_render(v) for v in await ctx().engine.user_algos(user, limit)]})
