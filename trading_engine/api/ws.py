"""The WebSocket feed at ``/api/v1/trading/ws``.

Client messages: ``{"op": "subscribe", "channels": [...]}``,
``{"op": "unsubscribe", "channels": [...]}``, ``{"op": "auth", "api_key": "..."}``,
``{"op": "ping"}``, and once authenticated the order ops (``order.place``,
``order.cancel``, ``order.amend``, ``orders.cancel_all``, ``orders.place_batch``,
``orders.cancel_after``, ``order_list.place``, ``order_list.cancel``:
``_Connection._ops``), answered by their ``id`` as
the REST routes answer, and with ``cancel_on_disconnect`` on ``auth`` the
connection's orders cancelled when it closes (``api/placements.py``; see
docs/websocket.md). Server messages carry ``channel``, ``type`` and ``seq``
(see ``actors/marketdata.py``); answers to the client's ops are
``{"type": "subscribed" | "unsubscribed", "channel": ...}`` (before the
channel's snapshot; that of ``orders`` lists the user's open orders and lists
as REST shows them, with ``seqs``, per symbol the ``seq`` they are as of, and
the running algorithms with ``algos_seq``),
``{"type": "authenticated", ...}`` and ``{"type": "pong"}``; a heartbeat
``{"type": "heartbeat"}`` comes every few seconds; errors are
``{"type": "error", "error": {"code": ..., "message": ..., "field": ...}}``,
and the connection stays open. A frame is read as a request body is
(``schemas.load_json``: no nesting deeper than 8 levels, no text that is
not Unicode). Each message takes a rate-limit token (``api/ws_limits.py``); the
upgrade takes one too, and counts against its address's connections
(``api/ws_guard.py``), or is refused with a 429 before the handshake.
A connection holds at most ``MAX_CHANNELS`` channels, and a subscribe or
unsubscribe names at most as many: one ``too_many_channels`` error answers
the names left out.

A subscriber that falls behind gets consecutive book deltas merged into one
(``api/conflate.py``: the ``prev_seq`` chain stays unbroken); one that still
can't keep up, ``OUTBOX`` messages behind, is disconnected with
``slow_consumer`` (close code 1008). A client that reads nothing at all
stops taking bytes once its socket's buffers are full: a write that gets no
byte in for ``STALL_SECONDS`` cuts the connection (``api/frames.py``), and
so does a close not done within ``frames.CLOSE_WAIT_SECONDS`` (the client does
not answer it). When the server stops, every connection is closed with 1001
(going away).
Delivery (``api/feed.py``) writes every connection's waiting messages at
once, straight to the socket where it can (``api/frames.py``).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import trio
from quart import Blueprint, Response, current_app, websocket

from trading_engine import wire
from trading_engine.actors.facade import Engine
from trading_engine.actors.mailbox import ActorUnavailable, Reply
from trading_engine.actors.messages import Refused, SubmitOutcome
from trading_engine.api.auth import Principal, principal_for, user_for
from trading_engine.api.bodies import AmendBody, ListBody, convert_body
from trading_engine.api.context import ctx
from trading_engine.api.errors import ApiError, error_body, error_of, error_response
from trading_engine.api.feed import Subscriber
from trading_engine.api.fills import fills_of
from trading_engine.api.frames import (
    Closer,
    SocketWriter,
    current_socket_writer,
)
from trading_engine.api.order_lists import (
    list_cancelled,
    list_placed,
    list_request,
    list_shown,
    own_list,
)
from trading_engine.api.orders import (
    Batch,
    amend_of,
    answer_cancel_all_after,
    batch_items,
    done,
    fields_under,
    order_in,
    parse_order_id,
    placed,
    take_tokens,
    with_fills,
)
from trading_engine.api.placements import Placements
from trading_engine.api.schemas import instrument_of as listed
from trading_engine.api.schemas import load_json, render_order
from trading_engine.api.ws_guard import Refusal, guarded
from trading_engine.api.ws_limits import FLOOD_REFUSALS, FLOOD_SECONDS, MessageLimits
from trading_engine.core.candles import INTERVALS
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.numbers import format_seconds
from trading_engine.core.views import OrderView
from trading_engine.errors import InvalidInput
from trading_engine.storage.limits import Limiter
from trading_engine.storage.read_tables import ReadTables

__all__ = ["blueprint"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
OUTBOX = 1000
"""Messages a subscriber may fall behind by before it is disconnected."""
STALL_SECONDS = 10.0
"""How long a write may get no byte into the socket before the connection is cut."""
MAX_CHANNELS = 200
"""Channels a connection may hold, and a subscribe or unsubscribe may name."""


_NO_ID = "id: is required, a string or an integer that the answer carries back"


def _only(args: dict[str, Any], allowed: set[str]) -> None:
    """Refuse an op's args with a field the op does not know."""
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise InvalidInput(f"args.{unknown[0]}", "is not a known field")


async def _batch_answer(
    batch: Batch, replies: Sequence[Reply[SubmitOutcome]]
) -> tuple[int, dict[str, Any]]:
    return 200, {"results": await batch.answers(replies)}


async def _cancelled(replies: Sequence[Reply[list[OrderView]]]) -> tuple[int, dict[str, Any]]:
    """The answer to ``orders.cancel_all``: the orders cancelled, as ``DELETE /orders``'s."""
    views: list[OrderView] = []
    try:
        for reply in replies:
            views.extend(await reply.wait())
    except Exception as exc:  # noqa: BLE001 - the op's own answer
        return error_of(exc)
    return 200, {"cancelled": await with_fills(views)}


def _failed(request_id: str | int, exc: Exception) -> str:
    """An order op's error answer, as the REST route would have answered ``exc``."""
    return _reply(request_id, *error_of(exc))


def _reply(request_id: str | int | None, status: int, body: dict[str, Any]) -> str:
    """An order op's answer, ``body`` being what the REST route would have answered: a
    ``result`` with it as ``data``, or an ``error`` with its ``error``."""
    if status < 400:
        return json.dumps({"type": "result", "id": request_id, "status": status, "data": body})
    return json.dumps({"type": "error", "id": request_id, "status": status, **body})


def _error(code: str, message: str, field: str | None = None, **extra: Any) -> str:
    error: dict[str, Any] = {"code": code, "message": message, **extra}
    if field is not None:
        error["field"] = field
    return json.dumps({"type": "error", "error": error})


_SLOW_CONSUMER = _error("slow_consumer", "too far behind: resubscribe for a snapshot")
_FLOODING = _error(
    "rate_limited", f"{FLOOD_REFUSALS} messages refused within {FLOOD_SECONDS:g} s: disconnected"
)

blueprint = Blueprint("feed", __name__)


def _refused(refusal: Refusal) -> Response:
    return error_response(429, refusal.code, refusal.message)


@blueprint.websocket("/api/v1/trading/ws")
@guarded(_refused)
async def feed() -> None:
    engine, admin_key, tables = ctx().engine, ctx().admin_key, ctx().tables
    closing: trio.Event = current_app.config["CLOSING"]
    limiter: Limiter | None = current_app.config.get("LIMITER")
    await websocket.accept()
    writer = current_socket_writer(stall=STALL_SECONDS)
    outbox = Subscriber(writer, OUTBOX)
    channels: set[str] = set()
    limits = MessageLimits(limiter, websocket.remote_addr)
    placements = Placements(engine)
    try:
        async with trio.open_nursery() as nursery:
            closer = Closer(writer, nursery)
            connection = _Connection(
                engine, admin_key, tables, outbox, writer, limits, placements, nursery, channels,
                closer,
            )  # fmt: skip
            nursery.start_soon(connection.deliver)
            nursery.start_soon(connection.heartbeat)
            nursery.start_soon(closer.going_away, closing)
            while True:
                raw = await websocket.receive()
                # Once dropped, what the client still sends is read and ignored until it
                # closes. Unread, it would fill Quart-Trio's queue, then Hypercorn's, whose
                # reader would then block for good and never see the client go.
                if not outbox.closed:
                    await connection.handle(raw)
    finally:
        outbox.close()
        with trio.CancelScope(shield=True):
            if placements.armed:
                cancelled = await placements.cancel()
                log.info("connection closed: %d of its orders cancelled", cancelled)
            for channel in channels:
                await engine.unsubscribe(channel, outbox)


@attrs.define(eq=False)
class _Connection:
    """One client's connection: its outbox, its subscriptions, its user and its limits."""

    engine: Engine
    admin_key: str
    tables: ReadTables | None
    outbox: Subscriber
    writer: SocketWriter | None
    limits: MessageLimits
    placements: Placements
    """What to cancel when the connection closes, if the client asked."""
    nursery: trio.Nursery
    """The connection's: cancelling it ends the connection."""
    channels: set[str]
    closer: Closer
    """Ends the connection: a close, then a cut if it is not answered."""
    user: UserId | None = None
    principal: Principal | None = None
    """Who authenticated on this connection: whom its orders act for."""
    farewell: tuple[str, int, str] = (_SLOW_CONSUMER, 1008, "")
    """Once the outbox is closed: the last message, the close code and the reason."""

    def say(self, text: str) -> None:
        """Queue ``text`` behind everything before it: answers before snapshots.

        A client more than ``OUTBOX`` messages behind is dropped as a slow consumer,
        as the market-data actor drops it, rather than miss an answer unawares.
        """
        try:
            self.outbox.send_nowait(text)
        except trio.WouldBlock:
            self.outbox.close()
        except trio.ClosedResourceError:
            pass  # dropped already: the connection is ending

    def send_away(self, farewell: str, code: int, reason: str) -> None:
        """End the connection: what is queued goes out, then ``farewell`` and a close."""
        self.farewell = (farewell, code, reason)
        self.outbox.close()

    async def deliver(self) -> None:
        await self.outbox.run(websocket.send)
        # The outbox was closed: by the market-data actor (we could not keep up), by
        # ``say`` (nor could our answers), or by ``send_away``.
        self.closer.cut_later()
        farewell, code, reason = self.farewell
        await websocket.send(farewell)
        await self.closer.close(code, reason)

    async def heartbeat(self) -> None:
        while True:
            await trio.sleep(HEARTBEAT_SECONDS)
            self.say(json.dumps({"type": "heartbeat", "ts": format_seconds(time.time_ns())}))

    async def handle(self, raw: str | bytes) -> None:
        wait = await self.limits.take()
        if wait > 0:
            self._refuse(wait)
            return
        try:
            message = load_json(raw)
        except InvalidInput as exc:
            self.say(_error(exc.code, exc.message, exc.field))
            return
        op = message.get("op")
        if op == "ping":
            self.say(json.dumps({"type": "pong", "ts": format_seconds(time.time_ns())}))
        elif op == "auth":
            await self._auth(message.get("api_key"), message.get("cancel_on_disconnect", False))
        elif op in ("subscribe", "unsubscribe"):
            await self._subscriptions(op, message.get("channels"))
        elif op in self._ops:
            await self._order_op(op, message)
        else:
            ops = ", ".join(("subscribe", "unsubscribe", "auth", "ping", *self._ops))
            self.say(_error("invalid_input", f"op: must be one of {ops}", "op"))

    async def _order_op(self, op: str, message: dict[str, Any]) -> None:
        """An order op: checked and handed to the engine now, in the order the client sent
        it, then answered by its ``id`` as soon as the journal has it (other messages,
        and other orders, go on meanwhile)."""
        request_id = message.get("id")
        if isinstance(request_id, bool) or not isinstance(request_id, str | int):
            self.say(_reply(None, 400, error_body("invalid_input", _NO_ID, field="id")))
            return
        try:
            await self._hand_over(op, request_id, self._order_args(message))
        except (ApiError, InvalidInput) as exc:
            self.say(_failed(request_id, exc))

    def _order_args(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.principal is None:
            raise ApiError(401, "unauthenticated", "authenticate before sending orders")
        args = message.get("args")
        if not isinstance(args, dict):
            raise InvalidInput("args", "must be an object")
        return args

    async def _hand_over(self, op: str, request_id: str | int, args: dict[str, Any]) -> None:
        """Hand the op to the engine now; a task answers it once it is done."""
        answering, *answer_args = await self._ops[op](self, args)
        self.nursery.start_soon(self._answer, request_id, answering, *answer_args)

    async def _place(self, args: dict[str, Any]) -> tuple[Any, ...]:
        order = order_in(args, "args", await self._user(args))
        reply = self.engine.submit_soon(order)
        self.placements.sent([reply])
        await self.placements.prune()
        return functools.partial(placed, at="args"), order, reply

    async def _place_batch(self, args: dict[str, Any]) -> tuple[Any, ...]:
        _only(args, {"orders", "user_id"})
        items = batch_items(args, "args.orders")
        user = await self._user(args)
        await take_tokens(self.limits.bucket, len(items) - 1)  # the message took one
        batch = Batch.check(items, "args.orders", user)
        replies = await self.engine.submit_many_soon(batch.orders())
        self.placements.sent(replies)
        await self.placements.prune()
        return _batch_answer, batch, replies

    async def _cancel_all(self, args: dict[str, Any]) -> tuple[Any, ...]:
        _only(args, {"symbol", "user_id"})
        user = await self._user(args)
        symbol = args.get("symbol")
        if symbol is not None:
            listed(self.engine.instruments(), symbol, field="args.symbol")
        return _cancelled, self.engine.cancel_all_soon(user, Symbol(symbol) if symbol else None)

    async def _cancel(self, args: dict[str, Any]) -> tuple[Any, ...]:
        _only(args, {"order_id", "client_order_id"})
        assert self.principal is not None
        order_id = args.get("order_id")
        if order_id is not None and args.get("client_order_id") is None:
            # The risk actor refuses another user's order as unknown: no lookup first,
            # which would hold the connection's reading for a round trip.
            user = None if self.principal.admin else self.principal.user_id
            return done, self.engine.cancel_soon(parse_order_id(str(order_id)), user)
        view = await self._own_order(args)
        return done, self.engine.cancel_soon(view.order_id, view.user_id)

    async def _amend(self, args: dict[str, Any]) -> tuple[Any, ...]:
        view = await self._own_order(args)
        fields = {k: v for k, v in args.items() if k not in ("order_id", "client_order_id")}
        with fields_under("args"):
            price, quantity = amend_of(view, convert_body(fields, AmendBody))
        return done, self.engine.amend_soon(
            view.order_id, view.user_id, price=price, quantity=quantity
        )

    async def _place_list(self, args: dict[str, Any]) -> tuple[Any, ...]:
        with fields_under("args"):
            body = convert_body(args, ListBody)
            order_list = list_request(body, await self._user(args))
        await take_tokens(self.limits.bucket, len(order_list.orders) - 1)  # the message took one
        reply = self.engine.submit_list_soon(order_list)
        self.placements.sent_list(reply)
        return functools.partial(list_placed, at="args"), order_list, reply

    async def _cancel_list(self, args: dict[str, Any]) -> tuple[Any, ...]:
        _only(args, {"list_id"})
        assert self.principal is not None
        view = await own_list(self.principal, args.get("list_id"))
        user = None if self.principal.admin else view.user_id
        return list_cancelled, view.list_id, self.engine.cancel_list_soon(view.list_id, user)

    async def _cancel_after(self, args: dict[str, Any]) -> tuple[Any, ...]:
        return functools.partial(answer_cancel_all_after, at="args"), self.principal, args

    _ops: ClassVar[
        dict[str, Callable[[_Connection, dict[str, Any]], Awaitable[tuple[Any, ...]]]]
    ] = {
        "order.place": _place,
        "order.cancel": _cancel,
        "order.amend": _amend,
        "orders.cancel_all": _cancel_all,
        "orders.place_batch": _place_batch,
        "orders.cancel_after": _cancel_after,
        "order_list.place": _place_list,
        "order_list.cancel": _cancel_list,
    }
    """Each order op: hands it to the engine, and gives what answers it (a function and
    its arguments) once the engine is done."""

    async def _answer(
        self,
        request_id: str | int,
        answering: Callable[..., Awaitable[tuple[int, dict[str, Any]]]],
        *args: Any,
    ) -> None:
        """Answer the op ``request_id`` with ``await answering(*args)``'s status and body."""
        self.say(_reply(request_id, *await answering(*args)))

    async def _user(self, args: dict[str, Any]) -> UserId:
        """The user the op acts for: the connection's, or ``user_id`` for the admin."""
        assert self.principal is not None
        return await user_for(self.engine, self.principal, args.get("user_id"))

    async def _own_order(self, args: dict[str, Any]) -> OrderView:
        """The caller's order that ``order_id`` or ``client_order_id`` names; a 404 else."""
        assert self.principal is not None
        order_id, client_id = args.get("order_id"), args.get("client_order_id")
        if (order_id is None) == (client_id is None):
            raise InvalidInput("args.order_id", "give order_id or client_order_id, one of the two")
        view = None
        if order_id is not None:
            view = await self.engine.order(parse_order_id(str(order_id)))
        elif self.principal.user_id is not None and isinstance(client_id, str):
            view = await self.engine.open_by_client_id(self.principal.user_id, client_id)
        if view is None or not (self.principal.admin or view.user_id == self.principal.user_id):
            raise ApiError(404, "unknown_order", f"no open order {order_id or client_id}")
        return view

    def _refuse(self, wait: float) -> None:
        """Answer a message its bucket had no token for; send a client that floods away."""
        seconds = Decimal(math.ceil(wait * 1000)) / 1000
        message = f"too many messages: retry in {seconds} s"
        self.say(_error("rate_limited", message, retry_after=str(seconds)))
        if self.limits.refused():
            self.send_away(_FLOODING, 1008, "rate limited")

    async def _auth(self, key: object, cancel_on_disconnect: object) -> None:
        if not isinstance(key, str) or not key:
            self.say(_error("invalid_input", "api_key: is required", "api_key"))
            return
        if not isinstance(cancel_on_disconnect, bool):
            message = "cancel_on_disconnect: must be true or false"
            self.say(_error("invalid_input", message, "cancel_on_disconnect"))
            return
        wait = await self.limits.take_for_auth()
        if wait > 0:
            self._refuse(wait)
            return
        try:
            principal = await principal_for(self.engine, self.admin_key, key)
        except ApiError as exc:
            await self.limits.failed_auth()
            self.say(_error(exc.code, exc.message))
            return
        self.limits.authenticated(principal.bucket)
        self.user = principal.user_id
        self.principal = principal
        self.placements.armed = cancel_on_disconnect
        answer = {"user_id": principal.user_id, "cancel_on_disconnect": cancel_on_disconnect}
        self.say(json.dumps({"type": "authenticated", **answer}))

    async def _subscriptions(self, op: str, wanted: object) -> None:
        """Act on each channel named, in order, within ``MAX_CHANNELS``; one error for the rest."""
        if not isinstance(wanted, list) or not all(isinstance(c, str) for c in wanted):
            self.say(_error("invalid_input", "must be a list of channel names", "channels"))
            return
        left_out = max(len(wanted) - MAX_CHANNELS, 0)
        for channel in wanted[:MAX_CHANNELS]:
            full = len(self.channels) >= MAX_CHANNELS
            if op == "subscribe" and full and channel not in self.channels:
                left_out += 1
            else:
                await self._subscription(op, channel)
        if left_out:
            message = (
                f"channels: at most {MAX_CHANNELS} per connection and per message:"
                f" {left_out} not {op}d"
            )
            self.say(_error("too_many_channels", message, "channels", limit=MAX_CHANNELS))

    async def _subscription(self, op: str, channel: str) -> None:
        engine, outbox, channels, user = self.engine, self.outbox, self.channels, self.user
        if op == "unsubscribe":
            if channel in channels:
                channels.discard(channel)
                await engine.unsubscribe(channel, outbox)
            self.say(json.dumps({"type": "unsubscribed", "channel": channel}))
            return
        if channel in channels:
            self.say(json.dumps({"type": "subscribed", "channel": channel}))
            return
        if channel == "orders" and user is None:
            self.say(_error("unauthenticated", "authenticate before subscribing to orders"))
            return
        if channel != "orders" and not _known(engine, channel):
            self.say(_error("unknown_channel", f"no channel {channel!r}"))
            return
        # The answer is queued before the subscription's snapshot, which follows it.
        self.say(json.dumps({"type": "subscribed", "channel": channel}))
        if channel == "orders" and user is not None:
            result = await _subscribe_orders(engine, self.tables, outbox, user)
        else:
            result = await engine.subscribe(channel, outbox, user)
        if isinstance(result, Refused):
            self.say(_error(result.code, result.message))
        else:
            channels.add(channel)


def _known(engine: Engine, channel: str) -> bool:
    """``book.S``, ``trades.S``, ``ticker.S`` or ``candles.S.INTERVAL`` of a listed symbol."""
    kind, _, rest = channel.partition(".")
    symbol, _, interval = rest.partition(".")
    if Symbol(symbol) not in engine.instruments():
        return False
    if kind == "candles":
        return interval in INTERVALS
    return kind in ("book", "trades", "ticker") and not interval


async def _subscribe_orders(
    engine: Engine, tables: ReadTables | None, outbox: Subscriber, user: UserId
) -> Refused | None:
    """Subscribe to ``orders``, then put what the user has working before every update:
    open orders, open lists, running or paused algorithms.

    The journal hands each commit to the risk actor before the market-data
    actor, and both read their inboxes in order, so the open orders and lists
    asked of risk once the subscription is in place include every update the
    subscription missed; ``seqs`` says, per symbol, how far they go, and an
    ``order`` or ``list`` update at or below it is already in the snapshot. The
    algorithm supervisor applies every ``$algos`` event the journal has
    answered before it answers, so ``algos_seq`` does the same for ``algo``
    updates.
    """
    outbox.hold()
    snapshot = None
    try:
        result = await engine.subscribe("orders", outbox, user)
        if isinstance(result, Refused):
            return result
        try:
            working = await engine.orders_snapshot(user)
            views = working["orders"]
            # An open list's members are open orders too: each order asked for once.
            working_orders = {m.order_id: m for view in working["lists"] for m in view.orders}
            working_orders.update((view.order_id, view) for view in views)
            fills = await fills_of(engine, tables, list(working_orders.values()))
        except ActorUnavailable as exc:  # a gateway's engine restarting: told, not subscribed
            await engine.unsubscribe("orders", outbox)
            return Refused(exc.code, f"orders: {exc.message}")
        instruments = engine.instruments()

        def shown(view: OrderView) -> dict[str, Any]:
            return render_order(view, instruments[view.symbol], fills[view.order_id])

        lists = [list_shown(v, [shown(m) for m in v.orders]) for v in working["lists"]]
        algos = [wire.algo(instruments[v.symbol], v) for v in working["algos"]]
        body = {"channel": "orders", "type": "snapshot", "seqs": working["seqs"],
                "orders": [shown(v) for v in views], "lists": lists,
                "algos_seq": working["algos_seq"], "algos": algos}  # fmt: skip
        snapshot = json.dumps(body)
        return None
    finally:
        outbox.release(snapshot)
