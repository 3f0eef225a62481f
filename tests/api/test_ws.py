"""The WebSocket feed over a real connection: snapshot, deltas with a prev_seq chain, orders."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.api.conftest import Server

ALICE, BOB = "demo_alice", "demo_bob"


async def receive(ws: WebSocketConnection, kind: str | None = None) -> dict[str, Any]:
    """The next message (of ``type`` ``kind``), skipping heartbeats."""
    with trio.fail_after(5):
        while True:
            message: dict[str, Any] = json.loads(await ws.get_message())
            if message["type"] == "heartbeat" or (kind and message["type"] != kind):
                continue
            return message


async def place(client: httpx.AsyncClient, side: str, quantity: str, price: str) -> dict[str, Any]:
    response = await client.post(
        "/orders", json={"symbol": "BTC_AIT", "side": side, "type": "limit",
                         "quantity": quantity, "price": price},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_book_subscribers_get_a_snapshot_then_gapless_deltas(server: Server) -> None:
    url = server.url.replace("http", "ws", 1) + "/api/v1/trading/ws"
    async with open_websocket_url(url) as ws, server.client(server.keys[BOB]) as bob:
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
        assert (await receive(ws))["type"] == "subscribed"
        snapshot = await receive(ws)
        assert (snapshot["type"], snapshot["bids"], snapshot["asks"]) == ("snapshot", [], [])
        for i in range(5):
            await place(bob, "sell", "0.1", str(30000 + i))
        book: dict[str, str] = {}
        last = snapshot["seq"]
        for _ in range(5):
            delta = await receive(ws, "delta")
            assert delta["prev_seq"] == last
            last = delta["seq"]
            book.update(dict(delta["asks"]))
        rest = (await bob.get("/orderbook/BTC_AIT")).json()
        assert rest["seq"] == last
        assert sorted(book.items()) == sorted((p, q) for p, q in rest["asks"])


async def test_orders_channel_needs_auth_and_carries_only_the_users_own_updates(
    server: Server,
) -> None:
    url = server.url.replace("http", "ws", 1) + "/api/v1/trading/ws"
    async with open_websocket_url(url) as ws, server.client(server.keys[BOB]) as bob:
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["orders"]}))
        assert (await receive(ws))["error"]["code"] == "unauthenticated"
        await ws.send_message(json.dumps({"op": "auth", "api_key": server.keys[ALICE]}))
        assert (await receive(ws))["user_id"] == ALICE
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["orders"]}))
        assert (await receive(ws))["type"] == "subscribed"
        await place(bob, "sell", "0.1", "30000")
        async with server.client(server.keys[ALICE]) as alice:
            mine = await place(alice, "buy", "0.1", "30000")
        update = await receive(ws, "order")
        assert (update["event"], update["order_id"]) == ("OrderAccepted", int(mine["order_id"]))
        fill = await receive(ws, "order")
        assert (fill["event"], fill["status"]) == ("OrderFilled", "filled")


async def test_bad_messages_get_errors_and_ping_gets_pong(server: Server) -> None:
    url = server.url.replace("http", "ws", 1) + "/api/v1/trading/ws"
    async with open_websocket_url(url) as ws:
        await ws.send_message("not json")
        assert (await receive(ws))["error"]["code"] == "invalid_input"
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["book.NOPE"]}))
        assert (await receive(ws))["error"]["code"] == "unknown_channel"  # no "subscribed" first
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["candles.BTC_AIT.7m"]}))
        assert (await receive(ws))["error"]["code"] == "unknown_channel"
        await ws.send_message(json.dumps({"op": "ping"}))
        assert (await receive(ws))["type"] == "pong"
