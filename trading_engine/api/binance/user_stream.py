"""The user data stream: ``executionReport`` for every change of the user's orders and
each fill, ``balanceUpdate`` for each deposit and withdrawal, ``outboundAccountPosition`` after
them, ``listenKeyExpired``.

Two ways in, as Binance has them:

- ``/ws/<listenKey>``, a key from ``POST /api/v3/userDataStream``: the events
  as they are. When the key expires (not kept alive for 60 minutes, or
  closed), ``listenKeyExpired`` is sent and the connection closed. An unknown
  or expired key is refused at the handshake (400, -1125).
- The WebSocket API at ``/ws-api/v3`` (where ccxt.pro subscribes for spot):
  ``userDataStream.subscribe.signature`` with ``apiKey``, ``timestamp``,
  optionally ``recvWindow``, and ``signature`` over those parameters sorted by
  name (``apiKey=...&timestamp=...``, as ``signing`` checks a request's);
  then each event comes as ``{"subscriptionId": 0, "event": ...}``.
  ``userDataStream.unsubscribe``, ``session.subscriptions``, ``ping`` and
  ``time`` are answered too; one subscription per connection.

Events come from the user's ``orders`` and ``balances`` channels (``reports``:
``executionReport``, and ``balanceUpdate`` for a deposit or a withdrawal),
published after commit like every feed message; after each batch of them,
``outboundAccountPosition`` gives the balances of the assets they touched,
read from the engine then.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import trio
from quart import Response, current_app, websocket

from trading_engine.actors.messages import Refused
from trading_engine.api.auth import hash_key
from trading_engine.api.binance.connection import TOO_MANY, Inbox, Link, dump, refusal, refuse
from trading_engine.api.binance.errors import BinanceError
from trading_engine.api.binance.listen_keys import ListenKeys
from trading_engine.api.binance.payloads import now_ms
from trading_engine.api.binance.reports import (
    Orders,
    account_position,
    assets_of,
    balance_update,
    list_status_event,
)
from trading_engine.api.binance.signing import MAX_RECV_WINDOW, check_signature
from trading_engine.api.context import ctx
from trading_engine.api.ws_limits import MessageLimits
from trading_engine.core.ids import Symbol, UserId
from trading_engine.storage.limits import Limiter

__all__ = ["EXPIRY_CHECK_SECONDS", "api_connection", "listen_key_connection"]

EXPIRY_CHECK_SECONDS = 1.0
"""How often a listen-key connection looks whether its key expired."""
_CHANNELS = ("orders", "balances")
_DEFAULT_RECV_WINDOW = 5_000
_AHEAD_MS = 1_000


class _UserEvents:
    """One user's events for one connection, each wrapped by ``wrap``."""

    def __init__(self, user: UserId, inbox: Inbox, wrap: Callable[[Any], Any]) -> None:
        self.engine = ctx().engine
        self.user = user
        self.inbox = inbox
        self.wrap = wrap
        self.orders = Orders(self.engine, user)
        self.ready = trio.Event()
        self.touched: set[str] = set()
        """Assets whose balances changed since the last ``outboundAccountPosition``."""
        self.channels: list[str] = []

    async def start(self) -> Refused | None:
        """Subscribe to the user's ``orders`` and ``balances``, then take the snapshot the
        reports start from."""
        try:
            for channel in _CHANNELS:
                result = await self.engine.subscribe(channel, self.inbox, self.user)
                if isinstance(result, Refused):
                    return result
                self.channels.append(channel)
            await self.orders.seed()
        finally:
            self.ready.set()
        return None

    async def stop(self) -> None:
        while self.channels:
            await self.engine.unsubscribe(self.channels.pop(), self.inbox)

    async def translate(self, text: str) -> list[str]:
        await self.ready.wait()  # updates wait for the snapshot they are reported against
        message = json.loads(text)
        if message.get("channel") == "balances":
            event = balance_update(self.engine, message)
            if event is not None:
                self.touched.add(event["a"])
        elif message.get("type") == "list":
            event = await list_status_event(self.engine, message)
        else:
            event = await self.orders.report(message)
            if event is not None:
                self.touched |= assets_of(self.engine, [Symbol(message["symbol"])])
        return [] if event is None else [dump(self.wrap(event))]

    async def after(self) -> list[str]:
        """``outboundAccountPosition`` for the assets the batch's events touched."""
        touched, self.touched = self.touched, set()
        position = await account_position(self.engine, self.user, touched)
        return [] if position is None else [dump(self.wrap(position))]


async def listen_key_connection(key: str) -> Response | None:
    """Serve ``/ws/<listenKey>``; refuse the handshake if the key is not live."""
    keys: ListenKeys = current_app.config[ListenKeys.CONFIG_KEY]
    user = keys.user_of(key)
    if user is None:
        return refuse(400, -1125, "This listenKey does not exist.")
    await websocket.accept()
    inbox = Inbox()
    events = _UserEvents(user, inbox, lambda event: event)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_expiry, keys, key, inbox)
            await events.start()
            link = Link(inbox, events.translate, events.after)
            await link.run(_ignore)
    finally:
        inbox.close()
        with trio.CancelScope(shield=True):
            await events.stop()
    return None


async def _ignore(raw: str | bytes) -> None:
    """What a client sends on a listen-key stream: nothing is asked of it."""


async def _watch_expiry(keys: ListenKeys, key: str, inbox: Inbox) -> None:
    while not keys.expired(key):
        await trio.sleep(EXPIRY_CHECK_SECONDS)
    expired = {"e": "listenKeyExpired", "E": now_ms(), "listenKey": key}
    inbox.end(expired, 1000, "listen key expired")


class _Api:
    """One WebSocket API connection: requests by ``id``, one user data subscription."""

    def __init__(self, inbox: Inbox, limits: MessageLimits) -> None:
        self.inbox = inbox
        self.limits = limits
        self.events: _UserEvents | None = None

    def answer(self, request_id: Any, result: Any) -> None:
        self.inbox.say({"id": request_id, "status": 200, "result": result})

    def fail(self, request_id: Any, error: BinanceError) -> None:
        body = {"code": error.code, "msg": error.msg}
        self.inbox.say({"id": request_id, "status": error.status, "error": body})

    async def translate(self, text: str) -> list[str]:
        return [] if self.events is None else await self.events.translate(text)

    async def after(self) -> list[str]:
        return [] if self.events is None else await self.events.after()

    async def handle(self, raw: str | bytes) -> None:
        if await self.limits.take() > 0:
            error = {"code": -1003, "msg": TOO_MANY}
            refusal(self.inbox, self.limits, {"id": None, "status": 429, "error": error})
            return
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.fail(None, BinanceError(400, -1100, "Malformed request: not JSON."))
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("method"), str):
            self.fail(None, BinanceError(400, -1102, "Mandatory parameter 'method' was not sent."))
            return
        request_id = frame.get("id")
        params = frame.get("params", {})
        method = frame["method"].removeprefix("v3/")
        if not isinstance(params, dict):
            illegal = "Illegal characters found in parameter 'params'."
            self.fail(request_id, BinanceError(400, -1100, illegal))
            return
        try:
            await self._method(request_id, method, params)
        except BinanceError as exc:
            self.fail(request_id, exc)

    async def _method(self, request_id: Any, method: str, params: dict[str, Any]) -> None:
        if method == "ping":
            self.answer(request_id, {})
        elif method == "time":
            self.answer(request_id, {"serverTime": now_ms()})
        elif method == "session.subscriptions":
            self.answer(request_id, [] if self.events is None else [{"subscriptionId": 0}])
        elif method == "userDataStream.subscribe.signature":
            await self._subscribe(request_id, params)
        elif method == "userDataStream.unsubscribe":
            if self.events is not None:
                events, self.events = self.events, None
                await events.stop()
                terminated = {"e": "eventStreamTerminated", "E": now_ms()}
                self.inbox.say({"subscriptionId": 0, "event": terminated})
            self.answer(request_id, {})
        else:
            raise BinanceError(400, -1100, f"Unsupported method '{method}'.")

    async def _subscribe(self, request_id: Any, params: dict[str, Any]) -> None:
        user = await _signed_user(params)
        if self.events is not None:
            raise BinanceError(400, -1194, "This connection already has a subscription.")
        events = _UserEvents(user, self.inbox, lambda event: {"subscriptionId": 0, "event": event})
        self.events = events
        # Answered before the first event, which waits for the snapshot (``translate``).
        self.answer(request_id, {"subscriptionId": 0})
        refused = await events.start()
        if refused is not None:
            self.events = None
            events.ready.set()


async def _signed_user(params: dict[str, Any]) -> UserId:
    """The user whose ``apiKey`` signed ``params``; raises as a signed request would."""
    key, signature = params.get("apiKey"), params.get("signature")
    timestamp = params.get("timestamp")
    if not isinstance(key, str) or not key:
        raise BinanceError(401, -2014, "API-key format invalid.")
    user = None
    if key.isascii() and key.isprintable() and len(key) <= 128:
        user = await ctx().engine.user_by_key(hash_key(key))
    if user is None:
        raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    if not isinstance(signature, str) or not signature:
        raise BinanceError(400, -1102, "Mandatory parameter 'signature' was not sent.")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise BinanceError(400, -1102, "Mandatory parameter 'timestamp' was not sent.")
    window = params.get("recvWindow", _DEFAULT_RECV_WINDOW)
    whole = isinstance(window, int) and not isinstance(window, bool)
    if not whole or not 0 <= window <= MAX_RECV_WINDOW:
        raise BinanceError(400, -1131, f"recvWindow must be less than {MAX_RECV_WINDOW}.")
    now = time.time_ns() // 1_000_000
    if timestamp > now + _AHEAD_MS or now - timestamp > window:
        raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    payload = "&".join(f"{k}={_text(v)}" for k, v in sorted(params.items()) if k != "signature")
    await check_signature(user, payload.encode(), signature)
    return user


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def api_connection() -> None:
    """Serve one connection to the WebSocket API (``/ws-api/v3``)."""
    await websocket.accept()
    inbox = Inbox()
    limiter: Limiter | None = current_app.config.get("LIMITER")
    api = _Api(inbox, MessageLimits(limiter, websocket.remote_addr))
    try:
        link = Link(inbox, api.translate, api.after, lambda event: {"event": event})
        await link.run(api.handle)
    finally:
        inbox.close()
        with trio.CancelScope(shield=True):
            if api.events is not None:
                await api.events.stop()
