"""Orders, risk checks, a user's orders, trades, balances and risk profile."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from quart import Blueprint, Response, current_app, jsonify, request

from trading_engine.actors.answers import Ticker
from trading_engine.actors.facade import Engine
from trading_engine.actors.mailbox import Reply, ReplyTimeout
from trading_engine.actors.messages import (
    ClientIdReused,
    OrderRequest,
    OrderResult,
    Refused,
    Rejected,
    SubmitOutcome,
)
from trading_engine.api.auth import Principal, authenticate, known_user, user_for
from trading_engine.api.bodies import (
    MAX_BATCH,
    AmendBody,
    OrderBatchBody,
    OrderBody,
    RiskCheckBody,
    convert_body,
    decode_body,
    order_request,
)
from trading_engine.api.context import ctx
from trading_engine.api.errors import (
    ApiError,
    error_body,
    error_of,
    outcome_unknown,
    status_of,
)
from trading_engine.api.fills import fills_of
from trading_engine.api.limits import retry_after
from trading_engine.api.margin_view import render_margin
from trading_engine.api.models import (
    Balances,
    BatchResults,
    CancelAllAfter,
    CancelAllAfterBody,
    CancelAllQuery,
    CancelBatchBody,
    CancelledList,
    FillList,
    LimitQuery,
    Order,
    OrderList,
    RiskCheck,
    RiskProfile,
    UserOrdersQuery,
    check_body,
    documented,
    validate_body,
)
from trading_engine.api.schemas import (
    asset_decimals,
    load_json,
    render_fills,
    render_order,
    render_rejections,
    render_sent,
)
from trading_engine.api.schemas import instrument_of as listed
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.numbers import format_seconds, format_units
from trading_engine.core.orders import WITH_LIMIT
from trading_engine.core.views import OrderView
from trading_engine.errors import InvalidInput, TradingEngineError
from trading_engine.storage.limits import Limiter

__all__ = [
    "Batch",
    "amend_of",
    "answer_cancel_all_after",
    "answer_order",
    "answer_result",
    "batch_items",
    "blueprint",
    "done",
    "fields_under",
    "find_order",
    "order_in",
    "parse_order_id",
    "placed",
    "take_tokens",
    "with_fills",
]

P = "/api/v1/trading"


blueprint = Blueprint("orders", __name__)


async def _caller() -> Principal:
    return await authenticate(ctx().engine, ctx().admin_key)


def _instrument_of(symbol: str) -> Instrument:
    return listed(ctx().engine.instruments(), symbol)


def _places(asset: str) -> int:
    """The decimal places of ``asset``'s minor unit."""
    return asset_decimals(ctx().engine.instruments(), asset)


def _render(view: OrderView, trades: tuple[Any, ...] = ()) -> dict[str, Any]:
    return render_order(view, _instrument_of(view.symbol), trades)


async def with_fills(
    views: Sequence[OrderView], known: Iterable[Trade] = ()
) -> list[dict[str, Any]]:
    """``views`` rendered, each with its fills (``api/fills.py``)."""
    fills = await fills_of(ctx().engine, ctx().tables, views, known)
    return [_render(view, fills[view.order_id]) for view in views]


async def _own_order(principal: Principal, order_id: str) -> OrderView:
    view = await ctx().engine.order(parse_order_id(order_id))
    if view is None or (not principal.admin and view.user_id != principal.user_id):
        raise ApiError(404, "unknown_order", f"no order {order_id}")
    return view


async def answer_result(result: OrderResult | Refused) -> tuple[int, dict[str, Any]]:
    """The status and body that answer a cancel or an amend: 200 with the order and its
    fills, or the refusal's error (404 unknown, 409 already final, 503 halted, ...)."""
    if isinstance(result, Refused):
        return status_of(result.code), error_body(result.code, result.message)
    [order] = await with_fills([result.order], result.trades)
    return 200, order


def batch_item(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """One item of a batch's answer: ``data`` on success, else the body's ``error``."""
    return {"status": status, "data": body} if status < 400 else {"status": status, **body}


@blueprint.post(f"{P}/orders")
@documented(Order, 403, 404, 409, 422, status=201, body=OrderBody, also=[(200, Order)])
async def submit() -> Response:
    engine, admin_key = ctx().engine, ctx().admin_key
    principal = await authenticate(engine, admin_key)
    body = decode_body(await request.get_data(), OrderBody)
    user_id = await user_for(engine, principal, body.user_id)
    order = order_request(body, engine.instruments(), user_id)
    with outcome_unknown("the order", find_order(order.client_order_id, user_id)):
        outcome = await engine.submit(order)
    status, answer = await answer_order(order, outcome)
    response = jsonify(answer)
    response.status_code = status
    return response


async def answer_order(order: OrderRequest, outcome: SubmitOutcome) -> tuple[int, dict[str, Any]]:
    """The status and body that answer an order the engine took: 201 with the order and
    its trades, 200 with the original for a resend, 409 for a reused client order id,
    422 for a rejection with its figures; counted in the metrics."""
    metrics = current_app.config["METRICS"]
    if isinstance(outcome, ClientIdReused):
        metrics.orders.labels("client_order_id_reused").inc()
        return 409, _reused(outcome, order, ctx().engine.instruments())
    if isinstance(outcome, Rejected):
        reasons = [str(r) for r in outcome.reasons]
        metrics.orders.labels("rejected").inc()
        for reason in reasons:
            metrics.rejections.labels(reason).inc()
        why, figures = render_rejections(outcome.rejections, _instrument_of(order.symbol), _places)
        extra: dict[str, Any] = {"reasons": reasons, "figures": figures}
        if outcome.order is not None:
            extra["order"] = _render(outcome.order)
        return 422, error_body("rejected", f"order rejected: {why}", **extra)
    if outcome.duplicate:  # the original as it is now, with its fills so far
        metrics.orders.labels("duplicate").inc()
        [original] = await with_fills([outcome.order])
        return 200, original
    metrics.orders.labels("accepted").inc()
    metrics.trades.inc(len(outcome.trades))
    return 201, _render(outcome.order, outcome.trades)


@blueprint.get(f"{P}/orders/<order_id>")
@documented(Order, 404)
async def get_order(order_id: str) -> Response:
    [order] = await with_fills([await _own_order(await _caller(), order_id)])
    return jsonify(order)


@blueprint.delete(f"{P}/orders/<order_id>")
@documented(Order, 404, 409)
async def cancel(order_id: str) -> Response:
    principal = await _caller()
    # The risk actor refuses another user's order as unknown (404): no lookup first.
    user = None if principal.admin else principal.user_id
    with outcome_unknown("the cancel", f"GET {P}/orders/{order_id} shows the order's status"):
        result = await ctx().engine.cancel(parse_order_id(order_id), user)
    status, body = await answer_result(result)
    response = jsonify(body)
    response.status_code = status
    return response


@blueprint.patch(f"{P}/orders/<order_id>")
@documented(Order, 404, 409, 422, body=AmendBody)
async def amend(order_id: str) -> Response:
    principal = await _caller()
    view = await _own_order(principal, order_id)
    price, quantity = amend_of(view, decode_body(await request.get_data(), AmendBody))
    user = None if principal.admin else principal.user_id
    with outcome_unknown("the amend", f"GET {P}/orders/{order_id} shows the order as it is"):
        result = await ctx().engine.amend(view.order_id, user, price=price, quantity=quantity)
    status, body = await answer_result(result)
    response = jsonify(body)
    response.status_code = status
    return response


@blueprint.delete(f"{P}/orders")
@documented(CancelledList, 403, 404, query=CancelAllQuery)
async def cancel_all() -> Response:
    user_id = await known_user(ctx().engine, ctx().admin_key, request.args.get("user_id"))
    symbol = request.args.get("symbol")
    if symbol is not None:
        listed(ctx().engine.instruments(), symbol, field="symbol")
    find_out = f"GET {P}/users/{user_id}/orders?status=open lists what is still open"
    with outcome_unknown("the cancels", find_out):
        views = await ctx().engine.cancel_all(user_id, Symbol(symbol) if symbol else None)
    return jsonify({"cancelled": await with_fills(views)})


@blueprint.post(f"{P}/orders/cancel-all-after")
@documented(CancelAllAfter, 403, 404, body=CancelAllAfterBody)
async def cancel_all_after() -> Response:
    """The dead man's switch: unless called again within ``timeout_ms``, every open order
    of the user is cancelled, in every symbol; ``timeout_ms`` 0 disarms it. The deadline
    is journaled: a restart keeps it, and fires at once a switch whose deadline passed
    meanwhile. Shown in the user's risk profile while armed."""
    principal = await _caller()
    status, body = await answer_cancel_all_after(principal, load_json(await request.get_data()))
    response = jsonify(body)
    response.status_code = status
    return response


async def answer_cancel_all_after(
    principal: Principal, args: object, *, at: str = ""
) -> tuple[int, dict[str, Any]]:
    """The status and body that answer a request to set the dead man's switch, ``args``
    being its fields (``{"timeout_ms": N}``, ``user_id`` for an admin), named under ``at``
    in errors (``args.timeout_ms``): 200 with the switch as set once durable, or the
    error (400 bad input and nothing set, 403, 404 unknown user, 503)."""
    try:
        fields = check_body(args, CancelAllAfterBody, at=at)
        user_id = await user_for(ctx().engine, principal, fields.get("user_id"))
        find_out = f"GET {P}/users/{user_id}/risk-profile shows the switch as it is"
        with outcome_unknown("the switch", find_out):
            switch = await ctx().engine.cancel_all_after(user_id, fields["timeout_ms"])
    except (ApiError, TradingEngineError) as exc:
        return error_of(exc)
    if isinstance(switch, Refused):
        return status_of(switch.code), error_body(switch.code, switch.message)
    cancel_at = None if switch.cancel_at is None else format_seconds(switch.cancel_at)
    return 200, {
        "user_id": user_id,
        "timeout_ms": switch.timeout_ms,
        "now": format_seconds(switch.now),
        "cancel_at": cancel_at,
    }


@blueprint.post(f"{P}/orders/batch")
@documented(BatchResults, 403, 404, 429, body=OrderBatchBody)
async def submit_batch() -> Response:
    """Up to 100 orders of one user, placed in the order given (each reaches its symbol
    before the next); each item answered as ``POST /orders`` would answer it alone."""
    principal = await _caller()
    body = load_json(await request.get_data(), allowed={"orders", "user_id"})
    items = batch_items(body, "orders")
    user_id = await known_user(ctx().engine, ctx().admin_key, body.get("user_id"))
    await take_tokens(principal.bucket, len(items) - 1)  # the request itself took one
    batch = Batch.check(items, "orders", user_id)
    replies = await ctx().engine.submit_many_soon(batch.orders())
    return jsonify({"results": await batch.answers(replies)})


def batch_items(body: Mapping[str, Any], field: str) -> list[Any]:
    """A batch's list of orders, 1 to ``MAX_BATCH`` of them."""
    items = body.get("orders")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise InvalidInput(field, f"must be a list of 1 to {MAX_BATCH} orders")
    return items


@attrs.define
class Batch:
    """A batch's orders, each checked alone: its error, or the order to place."""

    results: list[dict[str, Any] | None]
    placing: list[tuple[int, OrderRequest]]
    at: str
    """Where the items are in the message: an item's field is ``{at}.{i}.{field}``."""

    @classmethod
    def check(cls, items: Sequence[object], at: str, user_id: UserId) -> Batch:
        """Each item checked as ``POST /orders`` checks its body, its fields named
        ``{at}.{i}.{field}``; one bad item does not sink the others."""
        batch = cls([None] * len(items), [], at)
        for i, item in enumerate(items):
            try:
                batch.placing.append((i, order_in(item, f"{at}.{i}", user_id)))
            except (InvalidInput, ApiError) as exc:
                batch.results[i] = _item_error(exc)
        return batch

    def orders(self) -> list[OrderRequest]:
        return [order for _, order in self.placing]

    async def answers(self, replies: Sequence[Reply[SubmitOutcome]]) -> list[dict[str, Any]]:
        """Each item's answer, once every order placed is: ``replies`` are theirs, in order."""
        results = self.results
        for (i, order), reply in zip(self.placing, replies, strict=True):
            results[i] = batch_item(*await placed(order, reply, at=f"{self.at}.{i}"))
        return [result for result in results if result is not None]


async def placed(
    order: OrderRequest, reply: Reply[SubmitOutcome], *, at: str = ""
) -> tuple[int, dict[str, Any]]:
    """The status and body answering an order handed to the engine (``submit_soon``):
    ``answer_order``'s, the error it met (a field the engine refused named under ``at``,
    as ``order_in`` names the fields it checks), or 503 ``outcome_unknown`` if no answer
    came in time."""
    try:
        with fields_under(at):
            outcome = await reply.wait()
    except ReplyTimeout as exc:
        message = f"{exc}: the outcome is unknown, the order may still take effect"
        find_out = find_order(order.client_order_id, order.user_id)
        return 503, error_body("outcome_unknown", f"{message}; {find_out}")
    except Exception as exc:  # noqa: BLE001 - the order's own answer
        return error_of(exc)
    return await answer_order(order, outcome)


async def done(reply: Reply[OrderResult | Refused]) -> tuple[int, dict[str, Any]]:
    """The status and body answering a cancel or an amend handed to the engine."""
    try:
        result = await reply.wait()
    except Exception as exc:  # noqa: BLE001 - the request's own answer
        return error_of(exc)
    return await answer_result(result)


def order_in(item: object, at: str, user_id: UserId) -> OrderRequest:
    """An order within a larger message (a batch's, a WebSocket op's), checked as
    ``POST /orders`` checks its body, for ``user_id``; its fields are named under ``at``.
    Raises ``InvalidInput``, or an ``ApiError`` for an unknown symbol."""
    body = convert_body(item, OrderBody, at=at)
    if body.user_id not in (None, user_id):
        raise InvalidInput(f"{at}.user_id", f"must be the batch's user, {user_id}")
    with fields_under(at):
        return order_request(body, ctx().engine.instruments(), user_id)


@contextlib.contextmanager
def fields_under(at: str) -> Iterator[None]:
    """Name the field of an error raised within as one of the object at ``at`` (``price``
    becomes ``orders.3.price``): for an order within a larger message. With ``at`` empty
    (the object is the whole message), errors pass unchanged."""
    if not at:
        yield
        return
    try:
        yield
    except InvalidInput as exc:  # ``body``, the whole body, is the object itself
        message = exc.message.removeprefix(f"{exc.field}: ")
        raise type(exc)(at if exc.field == "body" else f"{at}.{exc.field}", message) from None
    except ApiError as exc:
        field = f"{at}.{exc.field}" if exc.field else at
        raise ApiError(exc.status, exc.code, exc.message, field=field) from None


@blueprint.delete(f"{P}/orders/batch")
@documented(BatchResults, 403, 404, 429, body=CancelBatchBody)
async def cancel_batch() -> Response:
    """Cancel up to 100 of one user's orders, by ``order_ids`` or ``client_order_ids``;
    each item answered as ``DELETE /orders/{id}`` would answer it alone."""
    principal = await _caller()
    body = validate_body(await request.get_data(), CancelBatchBody)
    user_id = await known_user(ctx().engine, ctx().admin_key, body.get("user_id"))
    by_id: list[str] | None = body.get("order_ids")
    by_client: list[str] | None = body.get("client_order_ids")
    if (by_id is None) == (by_client is None):
        raise InvalidInput("order_ids", "give order_ids or client_order_ids, one of the two")
    names = by_id if by_id is not None else by_client or []
    if not names:
        raise InvalidInput("order_ids" if by_id is not None else "client_order_ids", "is empty")
    await take_tokens(principal.bucket, len(names) - 1)  # the request itself took one
    results: list[dict[str, Any]] = []
    for name in names:
        try:
            results.append(await _cancel_one(name, user_id, by_client=by_client is not None))
        except (ApiError, InvalidInput) as exc:
            results.append(_item_error(exc))
    return jsonify({"results": results})


async def _cancel_one(name: str, user_id: UserId, *, by_client: bool) -> dict[str, Any]:
    """One cancel of a batch, answered as ``DELETE /orders/{id}`` answers it."""
    engine = ctx().engine
    if by_client:
        view = await engine.open_by_client_id(user_id, name)
    else:
        view = await engine.order(parse_order_id(name))
    if view is None or view.user_id != user_id:
        raise ApiError(404, "unknown_order", f"no open order {name} of {user_id}")
    with outcome_unknown("the cancel", f"GET {P}/orders/{view.order_id} shows its status"):
        result = await ctx().engine.cancel(view.order_id, user_id)
    return batch_item(*await answer_result(result))


def _item_error(exc: Exception) -> dict[str, Any]:
    """One batch item's error, as the single route would answer it."""
    return batch_item(*error_of(exc))


async def take_tokens(bucket: str, count: int) -> None:
    """Rate limits count each order of a batch: take ``count`` more tokens from
    ``bucket`` at once, or refuse the whole batch (429, nothing done, none taken)."""
    limiter: Limiter | None = current_app.config.get("LIMITER")
    if limiter is None or count < 1:
        return
    wait = await limiter.take(bucket, count)
    if wait > 0:
        raise ApiError(
            429, "rate_limited",
            f"too many requests: a batch counts each of its items; retry in "
            f"{retry_after(wait)} s",
        )  # fmt: skip


@blueprint.get(f"{P}/users/<user_id>/orders")
@documented(OrderList, 403, 404, query=UserOrdersQuery)
async def user_orders(user_id: str) -> Response:
    user = await known_user(ctx().engine, ctx().admin_key, user_id)
    status = request.args.get("status")
    if status not in (None, "open", "all"):
        raise InvalidInput("status", "must be open or all")
    limit = _limit(request.args.get("limit"), 100, 1000)
    views = await ctx().engine.user_orders(user, open_only=status == "open", limit=limit)
    return jsonify({"orders": await with_fills(views)})


@blueprint.get(f"{P}/users/<user_id>/trades")
@documented(FillList, 403, 404, query=LimitQuery)
async def user_trades(user_id: str) -> Response:
    user = await known_user(ctx().engine, ctx().admin_key, user_id)
    limit = _limit(request.args.get("limit"), 100, 1000)
    trades = await ctx().engine.user_trades(user, limit)
    fills = [f for t in trades for f in render_fills(t, _instrument_of(t.symbol), user)]
    return jsonify({"trades": fills})


@blueprint.get(f"{P}/users/<user_id>/balances")
@documented(Balances, 403, 404)
async def balances(user_id: str) -> Response:
    user = await known_user(ctx().engine, ctx().admin_key, user_id)
    return jsonify({"user_id": user, "balances": await _balances(ctx().engine, user)})


@blueprint.get(f"{P}/users/<user_id>/risk-profile")
@documented(RiskProfile, 403, 404)
async def risk_profile(user_id: str) -> Response:
    user = await known_user(ctx().engine, ctx().admin_key, user_id)
    positions = await ctx().engine.positions(user)
    instruments = ctx().engine.instruments()
    config = ctx().engine.config.risk
    return jsonify(
        {
            "user_id": user,
            "balances": await _balances(ctx().engine, user),
            "positions": {
                s: instruments[s].quantity_str(q)
                if q >= 0
                else "-" + instruments[s].quantity_str(-q)
                for s, q in positions.items()
            },
            "limits": {
                "enabled": config.enabled,
                "max_order_size": str(config.max_order_size) if config.max_order_size else None,
                "max_position_size": (
                    str(config.max_position_size) if config.max_position_size else None
                ),
                "max_open_orders": config.max_open_orders,
            },
            "margin": render_margin(
                await ctx().engine.margin(user),
                instruments,
                {s: _mark(await ctx().engine.ticker(s)) for s in instruments},
                ctx().engine.config.liquidation_threshold,
            ),
            "cancel_all_after": _armed(await ctx().engine.switch(user)),
        }
    )


@blueprint.post(f"{P}/risk/check")
@documented(RiskCheck, 403, 404, body=RiskCheckBody)
async def risk_check() -> Response:
    await _caller()
    body = decode_body(await request.get_data(), RiskCheckBody)
    user_id = await known_user(ctx().engine, ctx().admin_key, body.user_id)
    checked = order_request(body.order, ctx().engine.instruments(), user_id)
    check = await ctx().engine.check(checked)
    hold = None
    if check.hold_asset is not None:
        amount = format_units(check.hold_amount, _places(check.hold_asset))
        hold = {"asset": check.hold_asset, "amount": amount}
    why, figures = render_rejections(check.rejections, _instrument_of(checked.symbol), _places)
    return jsonify(
        {
            "allowed": check.allowed,
            "reasons": [str(r) for r in check.reasons],
            "message": None if check.allowed else f"order rejected: {why}",
            "figures": figures,
            "hold": hold,
        }
    )


def _armed(switch: tuple[int, int] | None) -> dict[str, Any] | None:
    if switch is None:
        return None
    cancel_at, timeout_ms = switch
    return {"timeout_ms": timeout_ms, "cancel_at": format_seconds(cancel_at)}


def _mark(ticker: Ticker | None) -> int | None:
    return None if ticker is None else ticker["mark"]


async def _balances(engine: Engine, user: UserId) -> dict[str, dict[str, str]]:
    raw = await engine.balances(user)
    out: dict[str, dict[str, str]] = {}
    for asset, (available, held) in raw.items():
        decimals = _places(asset)
        out[asset] = {
            "available": format_units(available, decimals),
            "held": format_units(held, decimals),
        }
    return out


def amend_of(view: OrderView, change: AmendBody) -> tuple[int | None, int | None]:
    """The new price and quantity, in ticks and lots, that an amend gives ``view``;
    raises ``InvalidInput`` naming the field."""
    instrument = _instrument_of(view.symbol)
    if change.price is None and change.quantity is None:
        raise InvalidInput("body", "give a new price and/or quantity")
    price = None if change.price is None else instrument.price_to_ticks(change.price)
    quantity = None if change.quantity is None else instrument.quantity_to_lots(change.quantity)
    if not view.status.is_final:  # a final order's amend is the engine's 409
        _check_amend(view, instrument, price, quantity)
    return price, quantity


def _check_amend(
    view: OrderView, instrument: Instrument, price: int | None, quantity: int | None
) -> None:
    """Raise ``InvalidInput`` naming the field if the amend is one the matcher refuses.

    The matcher checks again (the order may change meanwhile): this is for the message.
    """
    if price is not None and view.type not in WITH_LIMIT:
        raise InvalidInput("price", f"a {view.type} order has no limit price to amend")
    done = view.quantity - view.remaining
    if quantity is not None and quantity <= done:
        raise InvalidInput(
            "quantity",
            f"is the new total quantity, filled part included: it must exceed the "
            f"{instrument.quantity_str(done)} already filled or cancelled",
        )
    if price in (None, view.price) and quantity in (None, view.quantity):
        if quantity is not None:
            field, now = "quantity", instrument.quantity_str(view.quantity)
        else:
            field, now = "price", instrument.price_str(view.price)
        raise InvalidInput(
            field,
            f"is already the order's {field} ({now}): the amend changes nothing; give a "
            "different price and/or quantity (the new total, filled part included)",
        )


def _reused(
    outcome: ClientIdReused, resend: OrderRequest, instruments: Mapping[Symbol, Instrument]
) -> dict[str, Any]:
    """The 409 for a resend of a client order id that differs from its original."""
    was, now = instruments[outcome.symbol], instruments[resend.symbol]
    changes = ", ".join(
        f"{name} {render_sent(name, resent, now)} (the original's: "
        f"{render_sent(name, original, was)})"
        for name, original, resent in outcome.differs
    )
    message = (
        f"client_order_id {resend.client_order_id!r} is already order {outcome.order_id}, "
        f"and this resend differs from it in {changes}: nothing was placed. An identical "
        "resend returns the original; a new order needs a new client_order_id"
    )
    return error_body(
        "client_order_id_reused", message, field="client_order_id",
        order_id=str(outcome.order_id), differs=[name for name, _, _ in outcome.differs],
    )  # fmt: skip


def find_order(client_order_id: str | None, user_id: UserId) -> str:
    """How to learn whether an order that got no answer was placed."""
    listed = f"GET {P}/users/{user_id}/orders lists it if it was placed"
    if client_order_id is None:
        return f"{listed}; send a client_order_id with each order to make resending safe"
    return (
        f"resend it with the same client_order_id ({client_order_id!r}): you get the original "
        f"if it was placed, never a second order; or {listed}"
    )


def parse_order_id(raw: str) -> OrderId:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ApiError(404, "unknown_order", f"no order {raw}")
    return OrderId(int(raw))


def _limit(raw: str | None, default: int, cap: int, *, field: str = "limit") -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise InvalidInput(field, "must be a positive integer")
    return min(int(raw), cap)
