"""The WebSocket feed at ``/api/v1/trading/ws``.

Client messages: ``{"op": "subscribe", "channels": [...]}``,
``{"op": "unsubscribe", "channels": [...]}``, ``{"op": "auth", "api_key": "..."}``,
``{"op": "ping"}``. Server messages carry ``channel``, ``type`` and ``seq``
(see ``actors/marketdata.py``); answers to the client's ops are
``{"type": "subscribed" | "unsubscribed", "channel": ...}`` (before the
channel's snapshot; that of ``orders`` lists the user's open orders as REST
shows them, with ``seqs``, per symbol the ``seq`` they are as of),
``{"type": "authenticated", ...}`` and ``{"type": "pong"}``; a heartbeat
``{"type": "heartbeat"}`` comes every few seconds; errors are
``{"type": "error", "error": {"code": ..., "message": ...}}``. A subscriber
that falls behind gets consecutive book deltas merged into one
(``api/conflate.py``: the ``prev_seq`` chain stays unbroken); one that still
can't keep up is disconnected with ``slow_consumer`` (close code 1008). When the
server stops, every connection is closed with 1001 (going away).
Delivery (``api/feed.py``) writes every connection's waiting messages at
once, straight to the socket where it can (``api/frames.py``).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import trio
from quart import Quart, websocket

from trading_engine.actors.engine import Engine
from trading_engine.actors.messages import Refused
from trading_engine.api.auth import principal_for
from trading_engine.api.errors import ApiError
from trading_engine.api.feed import Subscriber
from trading_engine.api.fills import fills_of
from trading_engine.api.frames import socket_writer_for
from trading_engine.api.schemas import render_order
from trading_engine.core.candles import INTERVALS
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.numbers import format_seconds

__all__ = ["register"]

HEARTBEAT_SECONDS = 5.0
OUTBOX = 1000
"""Messages a subscriber may fall behind by before it is disconnected."""
CLOSE_WAIT_SECONDS = 1.0
"""How long a stopping server waits for a client to answer its close frame."""


def _error(code: str, message: str) -> str:
    return json.dumps({"type": "error", "error": {"code": code, "message": message}})


_SEND = "trading_engine.asgi_send"
"""The scope key under which the connection's ASGI ``send`` reaches the handler."""


def register(app: Quart, engine: Engine, admin_key: str) -> None:
    inner = app.asgi_app

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        # Quart keeps the ASGI send behind its websocket object; the feed needs
        # it to find the connection's socket (api/frames.py).
        if scope["type"] == "websocket":
            scope[_SEND] = send
        await inner(scope, receive, send)

    app.asgi_app = asgi_app  # type: ignore[method-assign]  # Quart's way to add ASGI middleware
    closing: trio.Event = app.config["CLOSING"]

    @app.websocket("/api/v1/trading/ws")
    async def feed() -> None:
        await websocket.accept()
        outbox = Subscriber(socket_writer_for(websocket.scope.get(_SEND)), OUTBOX)
        channels: set[str] = set()
        user: list[UserId | None] = [None]
        closed = [False]
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_deliver, outbox, closed)
                nursery.start_soon(_heartbeat, outbox)
                nursery.start_soon(_going_away, closing, closed, nursery.cancel_scope)
                while True:
                    raw = await websocket.receive()
                    # Once dropped, what the client still sends is read and ignored until it
                    # closes. Unread, it would fill Quart-Trio's queue, then Hypercorn's, whose
                    # reader would then block for good and never see the client go.
                    if not outbox.closed:
                        await _handle(engine, admin_key, raw, outbox, channels, user)
        finally:
            outbox.close()
            with trio.CancelScope(shield=True):
                for channel in channels:
                    await engine.unsubscribe(channel, outbox)


async def _deliver(outbox: Subscriber, closed: list[bool]) -> None:
    await outbox.run(websocket.send)
    # The market-data actor closed our outbox: we could not keep up.
    await websocket.send(_error("slow_consumer", "too far behind: resubscribe for a snapshot"))
    await _close(closed, 1008)


async def _close(closed: list[bool], code: int, reason: str = "") -> None:
    """Close the connection unless it was: Quart refuses a second close."""
    if not closed[0]:
        closed[0] = True
        await websocket.close(code, reason)


async def _going_away(
    closing: trio.Event, closed: list[bool], connection: trio.CancelScope
) -> None:
    """When the server stops: close (1001) and end the connection, rather than be cut.

    The client's answering close ends the connection (Quart-Trio then cancels this
    handler); one that does not answer is left after ``CLOSE_WAIT_SECONDS``.
    """
    await closing.wait()
    await _close(closed, 1001, "the server is shutting down")
    await trio.sleep(CLOSE_WAIT_SECONDS)
    connection.cancel()


async def _heartbeat(outbox: Subscriber) -> None:
    while True:
        await trio.sleep(HEARTBEAT_SECONDS)
        _say(outbox, json.dumps({"type": "heartbeat", "ts": format_seconds(time.time_ns())}))


def _say(outbox: Subscriber, text: str) -> None:
    """Everything goes out through the one outbox, in order: answers before snapshots."""
    with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
        outbox.send_nowait(text)


async def _handle(
    engine: Engine,
    admin_key: str,
    raw: str | bytes,
    outbox: Subscriber,
    channels: set[str],
    user: list[UserId | None],
) -> None:
    try:
        message: Any = json.loads(raw)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        _say(outbox, _error("invalid_input", "messages must be JSON objects"))
        return
    op = message.get("op")
    if op == "ping":
        _say(outbox, json.dumps({"type": "pong", "ts": format_seconds(time.time_ns())}))
    elif op == "auth":
        key = message.get("api_key")
        if not isinstance(key, str):
            _say(outbox, _error("invalid_input", "api_key: is required"))
            return
        try:
            principal = await principal_for(engine, admin_key, key)
        except ApiError as exc:
            _say(outbox, _error(exc.code, exc.message))
            return
        user[0] = principal.user_id
        _say(outbox, json.dumps({"type": "authenticated", "user_id": principal.user_id}))
    elif op in ("subscribe", "unsubscribe"):
        wanted = message.get("channels")
        if not isinstance(wanted, list) or not all(isinstance(c, str) for c in wanted):
            _say(outbox, _error("invalid_input", "channels: must be a list of channel names"))
            return
        for channel in wanted:
            await _subscription(engine, op, channel, outbox, channels, user[0])
    else:
        _say(outbox, _error("invalid_input", "op: must be subscribe, unsubscribe, auth or ping"))


def _known(engine: Engine, channel: str) -> bool:
    """``book.S``, ``trades.S``, ``ticker.S`` or ``candles.S.INTERVAL`` of a listed symbol."""
    kind, _, rest = channel.partition(".")
    symbol, _, interval = rest.partition(".")
    if Symbol(symbol) not in engine.instruments():
        return False
    if kind == "candles":
        return interval in INTERVALS
    return kind in ("book", "trades", "ticker") and not interval


async def _subscription(
    engine: Engine,
    op: str,
    channel: str,
    outbox: Subscriber,
    channels: set[str],
    user: UserId | None,
) -> None:
    if op == "unsubscribe":
        if channel in channels:
            channels.discard(channel)
            await engine.unsubscribe(channel, outbox)
        _say(outbox, json.dumps({"type": "unsubscribed", "channel": channel}))
        return
    if channel in channels:
        _say(outbox, json.dumps({"type": "subscribed", "channel": channel}))
        return
    if channel == "orders" and user is None:
        _say(outbox, _error("unauthenticated", "authenticate before subscribing to orders"))
        return
    if channel != "orders" and not _known(engine, channel):
        _say(outbox, _error("unknown_channel", f"no channel {channel!r}"))
        return
    # The answer is queued before the subscription's snapshot, which follows it.
    _say(outbox, json.dumps({"type": "subscribed", "channel": channel}))
    if channel == "orders" and user is not None:
        result = await _subscribe_orders(engine, outbox, user)
    else:
        result = await engine.subscribe(channel, outbox, user)
    if isinstance(result, Refused):
        _say(outbox, _error(result.code, result.message))
    else:
        channels.add(channel)


async def _subscribe_orders(engine: Engine, outbox: Subscriber, user: UserId) -> Refused | None:
    """Subscribe to ``orders``, then put the user's open orders before every update.

    The journal hands each commit to the risk actor before the market-data
    actor, and both read their inboxes in order, so the open orders asked of
    risk once the subscription is in place include every update the
    subscription missed; ``seqs`` says, per symbol, how far they go, and an
    update at or below it is already in the snapshot.
    """
    outbox.hold()
    snapshot = None
    try:
        result = await engine.subscribe("orders", outbox, user)
        if isinstance(result, Refused):
            return result
        seqs, views = await engine.open_orders(user)
        instruments = engine.instruments()
        fills = await fills_of(engine, views)
        orders = [render_order(v, instruments[v.symbol], fills[v.order_id]) for v in views]
        snapshot = json.dumps(
            {"channel": "orders", "type": "snapshot", "seqs": seqs, "orders": orders}
        )
        return None
    finally:
        outbox.release(snapshot)
