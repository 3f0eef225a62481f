"""The WebSocket feed over a real connection: snapshot, deltas with a prev_seq chain, orders,
many subscribers, compression, a slow consumer, and a server other than Hypercorn."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url
from wsproto.events import CloseConnection, TextMessage

from tests.api.conftest import ADMIN, Server, serve
from tests.api.rawws import raw_client
from trading_engine.actors.engine import Engine
from trading_engine.actors.messages import OrderRequest, OrderResult
from trading_engine.api import frames
from trading_engine.api import ws as ws_feed
from trading_engine.api.app import create_app
from trading_engine.api.feed import Flusher
from trading_engine.core.enums import OrderType, Side
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.numbers import to_units

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
        assert (update["event"], update["order_id"]) == ("OrderAccepted", mine["order_id"])
        fill = await receive(ws, "order")
        assert (fill["event"], fill["status"]) == ("OrderFilled", "filled")


async def test_the_orders_snapshot_lists_the_open_orders_before_any_update(
    server: Server,
) -> None:
    async with (
        open_websocket_url(_ws_url(server)) as ws,
        server.client(server.keys[ALICE]) as alice,
    ):
        resting = [await place(alice, "buy", "0.1", price) for price in ("29000", "29100")]
        done = await place(alice, "buy", "0.2", "29200")
        await alice.delete(f"/orders/{done['order_id']}")
        await ws.send_message(json.dumps({"op": "auth", "api_key": server.keys[ALICE]}))
        await receive(ws, "authenticated")
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["orders"]}))
        assert (await receive(ws))["type"] == "subscribed"
        snapshot = await receive(ws)
        book_seq = (await alice.get("/orderbook/BTC_AIT")).json()["seq"]
        rest = (await alice.get(f"/users/{ALICE}/orders?status=open")).json()["orders"]
        await place(alice, "buy", "0.1", "29300")
        update = await receive(ws, "order")
    assert (snapshot["channel"], snapshot["type"]) == ("orders", "snapshot")
    assert snapshot["orders"] == sorted(rest, key=lambda o: int(o["order_id"]))
    assert [o["order_id"] for o in snapshot["orders"]] == [o["order_id"] for o in resting]
    assert snapshot["orders"][0]["remaining_quantity"] == "0.1"
    assert snapshot["seqs"] == {"BTC_AIT": book_seq, "ETH_AIT": 0}
    assert update["event"] == "OrderAccepted"
    assert update["seq"] > snapshot["seqs"]["BTC_AIT"]


async def test_the_orders_snapshot_and_updates_add_up_while_orders_flow(server: Server) -> None:
    """Subscribed while alice's orders are placed, filled and cancelled, each client's
    snapshot plus the updates past its ``seqs`` is exactly what REST lists as open."""

    async def churn(alice: httpx.AsyncClient, bob: httpx.AsyncClient, stop: trio.Event) -> None:
        i = 0
        # At least 60 rounds, however slow the machine (enough to leave several orders
        # open), and on while the followers subscribe; at most 150, within alice's funds.
        while (i < 60 or not stop.is_set()) and i < 150:
            i += 1
            mine = await place(alice, "buy", "0.1", str(29000 + i % 7 * 100))
            if i % 3 == 0:
                await alice.delete(f"/orders/{mine['order_id']}")
            if i % 4 == 0:
                await place(bob, "sell", "0.2", str(29000 + i % 7 * 100))

    async def follow(open_now: dict[str, str]) -> None:
        async with open_websocket_url(_ws_url(server)) as ws:
            await track(ws, open_now)

    async def track(ws: WebSocketConnection, open_now: dict[str, str]) -> None:
        await ws.send_message(json.dumps({"op": "auth", "api_key": server.keys[ALICE]}))
        await receive(ws, "authenticated")
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["orders"]}))
        await receive(ws, "subscribed")
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot"
        seqs = snapshot["seqs"]
        open_now.update((o["order_id"], o["remaining_quantity"]) for o in snapshot["orders"])
        while True:
            update = await receive(ws, "order")
            if update["seq"] <= seqs[update["symbol"]]:
                continue
            if update["event"] == "OrderAccepted":
                open_now[update["order_id"]] = "accepted"
            elif update["event"] in ("OrderCancelled", "OrderExpired") or (
                update["event"] == "OrderFilled" and update["remaining_quantity"] == "0"
            ):
                del open_now[update["order_id"]]

    views: list[dict[str, str]] = [{} for _ in range(4)]
    stop = trio.Event()
    async with (
        server.client(server.keys[ALICE]) as alice,
        server.client(server.keys[BOB]) as bob,
        trio.open_nursery() as followers,
    ):
        async with trio.open_nursery() as churning:
            churning.start_soon(churn, alice, bob, stop)
            for view in views:
                await trio.sleep(0.1)
                followers.start_soon(follow, view)
            await trio.sleep(0.2)
            stop.set()
        rest = (await alice.get(f"/users/{ALICE}/orders?status=open&limit=1000")).json()
        expected = {o["order_id"] for o in rest["orders"]}
        with trio.move_on_after(5):  # the last updates on their way
            while any(set(view) != expected for view in views):
                await trio.sleep(0.02)
        followers.cancel_scope.cancel()
    assert len(expected) > 5
    for view in views:
        assert set(view) == expected


async def test_the_feed_shows_ids_and_times_as_rest_does(server: Server) -> None:
    """One parser reads both: ids are strings, times are seconds as decimal strings, a
    candle's start is whole seconds, and every channel starts with a snapshot."""
    channels = ["ticker.BTC_AIT", "trades.BTC_AIT", "candles.BTC_AIT.1m", "book.BTC_AIT"]
    async with (
        open_websocket_url(_ws_url(server)) as ws,
        server.client(server.keys[BOB]) as bob,
        server.client(server.keys[ALICE]) as alice,
    ):
        await ws.send_message(json.dumps({"op": "auth", "api_key": server.keys[ALICE]}))
        await receive(ws, "authenticated")
        await ws.send_message(json.dumps({"op": "subscribe", "channels": [*channels, "orders"]}))
        for channel in channels:  # each answered, then its snapshot, before any update
            assert (await receive(ws)) == {"type": "subscribed", "channel": channel}
            first = await receive(ws)
            assert (first["channel"], first["type"]) == (channel, "snapshot")
            assert isinstance(first["seq"], int)
        assert (await receive(ws))["channel"] == "orders"
        await place(bob, "sell", "0.1", "30000")
        mine = await place(alice, "buy", "0.1", "30000")
        trade = mine["trades"][0]
        order = (await alice.get(f"/orders/{mine['order_id']}")).json()
        candle = (await alice.get("/candles/BTC_AIT?interval=1m")).json()["candles"][-1]
        settlement = (await alice.get(f"/settlement/{trade['trade_id']}")).json()
        seen: dict[str, dict[str, Any]] = {}
        while len(seen) < 5:
            message = await receive(ws)
            if message["type"] in ("ticker", "trade", "candle", "delta"):
                seen.setdefault(message["type"], message)
            elif message.get("order_id") == mine["order_id"] and message["event"] == "OrderFilled":
                seen["fill"] = message
    assert seen["trade"]["trade_id"] == trade["trade_id"]
    assert seen["trade"]["time"] == trade["time"] == settlement["ts"]
    assert seen["fill"]["ts"] == order["updated_at"] == trade["time"]
    assert seen["fill"]["trade_id"] == trade["trade_id"]
    assert seen["candle"]["start"] == candle["start"]
    book_time = Decimal(seen["delta"]["ts"])  # of bob's order, which came first
    assert Decimal(trade["time"]) - 10 < book_time <= Decimal(trade["time"])
    assert isinstance(seen["delta"]["seq"], int)
    assert isinstance(seen["delta"]["prev_seq"], int)


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


def _ws_url(server: Server) -> str:
    return server.url.replace("http", "ws", 1) + "/api/v1/trading/ws"


def _apply(book: dict[str, dict[str, str]], message: dict[str, Any]) -> None:
    for side in ("bids", "asks"):
        for price, quantity in message[side]:
            if quantity == "0":
                book[side].pop(price, None)
            else:
                book[side][price] = quantity


async def _follow_to(ws: WebSocketConnection, snapshot: dict[str, Any], seq: int) -> dict[str, Any]:
    """The book ``ws`` builds from ``snapshot`` and the deltas up to ``seq``, checking the chain."""
    book = {"bids": dict(snapshot["bids"]), "asks": dict(snapshot["asks"])}
    last = snapshot["seq"]
    while last != seq:
        delta = await receive(ws, "delta")
        assert delta["prev_seq"] == last, "a gap in the book stream"
        last = delta["seq"]
        _apply(book, delta)
    return book


async def test_every_subscriber_gets_every_delta_in_order_written_directly(
    server: Server,
) -> None:
    url = _ws_url(server)
    flusher = Flusher.current()
    writes = flusher.writes
    async with (
        server.client(server.keys[BOB]) as bob,
        server.client(server.keys[ALICE]) as alice,
        contextlib.AsyncExitStack() as stack,
    ):
        followers = []
        for _ in range(20):
            ws = await stack.enter_async_context(open_websocket_url(url))
            await ws.send_message(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
            assert (await receive(ws))["type"] == "subscribed"
            followers.append((ws, await receive(ws)))
        async with trio.open_nursery() as nursery:  # at once, so that batches form
            for i in range(30):
                who, side = (alice, "buy") if i % 3 == 0 else (bob, "sell")
                nursery.start_soon(place, who, side, "0.05", str(30000 + i % 7))
        rest = (await bob.get("/orderbook/BTC_AIT")).json()
        expected = {"bids": dict(rest["bids"]), "asks": dict(rest["asks"])}
        for ws, snapshot in followers:
            assert await _follow_to(ws, snapshot, rest["seq"]) == expected
    assert flusher.writes > writes  # the flusher wrote them, not the ASGI path


async def test_a_client_that_negotiated_compression_reads_the_feed(server: Server) -> None:
    async with (
        raw_client(_ws_url(server), deflate=True) as ws,
        server.client(server.keys[BOB]) as bob,
    ):
        assert ws.deflate
        await ws.send_text(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
        with trio.fail_after(5):
            assert json.loads(await ws.text())["type"] == "subscribed"
            snapshot = json.loads(await ws.text())
            await place(bob, "sell", "0.1", "30000")
            delta = json.loads(await ws.text())
            await ws.send_text(json.dumps({"op": "ping"}))
            assert json.loads(await ws.text())["type"] == "pong"
    assert (delta["type"], delta["prev_seq"], delta["asks"]) == (
        "delta", snapshot["seq"], [["30000", "0.1"]],
    )  # fmt: skip


async def test_a_subscriber_that_stops_reading_is_dropped_as_a_slow_consumer(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It may fall OUTBOX messages behind; then it gets slow_consumer, close code 1008, and
    the connection ends."""
    monkeypatch.setattr(ws_feed, "OUTBOX", 20)
    async with server.client(server.keys[BOB]) as bob, trio.open_nursery() as nursery:
        for i in range(60):
            nursery.start_soon(place, bob, "sell", "0.1", str(30000 + i))
    # A client that reads nothing while it asks for snapshot after snapshot (about
    # 1.5 KB each): its socket fills, then its outbox.
    async with raw_client(_ws_url(server), receive_buffer=4096) as ws:
        for _ in range(100):
            for op in ("subscribe", "unsubscribe"):
                await ws.send_text(json.dumps({"op": op, "channels": ["book.BTC_AIT"]}))
        texts = []
        with trio.fail_after(10):
            while not isinstance(event := await ws.event(), CloseConnection):
                if isinstance(event, TextMessage):
                    texts.append(json.loads(str(event.data)))
            # We answered the close: the server closes the connection, though it had
            # stopped reading our requests.
            await ws.end_of_stream()
    assert event.code == 1008
    assert texts[-1]["error"]["code"] == "slow_consumer"
    assert 20 <= sum(m["type"] == "snapshot" for m in texts) < 100


async def _churn(engine: Engine, stop: trio.Event) -> None:
    """Book updates as fast as the engine makes them: bob's sells placed and cancelled."""
    btc = engine.instruments()[Symbol("BTC_AIT")]
    quantity = to_units(Decimal("0.001"), btc.lot_size, field="quantity")

    async def one(i: int) -> None:
        price = to_units(Decimal(30000 + i % 500), btc.tick_size, field="price")
        placed = await engine.submit(
            OrderRequest(UserId(BOB), btc.symbol, Side.SELL, OrderType.LIMIT, quantity, price)
        )
        assert isinstance(placed, OrderResult)
        await engine.cancel(placed.order.order_id, UserId(BOB))

    i = 0
    while not stop.is_set():
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(one, i)
                i += 1


async def _follow(ws: WebSocketConnection, state: dict[str, Any]) -> None:
    """Keep ``state`` (``seq`` and ``book``) as the deltas on ``ws`` say, checking the chain."""
    while True:
        delta = await receive(ws, "delta")
        assert delta["prev_seq"] == state["seq"], "a gap in the book stream"
        state["seq"] = delta["seq"]
        _apply(state["book"], delta)


async def test_a_client_that_never_reads_is_cut_once_its_socket_takes_nothing_for_a_while(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subscribed, then neither reading nor sending while the book changes fast: its
    socket's buffers fill, and once a write has got no byte into it for STALL_SECONDS the
    connection is cut (reset). A client that reads follows every delta meanwhile, and the
    engine takes orders as before."""
    monkeypatch.setattr(ws_feed, "STALL_SECONDS", 1.0)
    url = _ws_url(server)
    subscribe = json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT", "ticker.BTC_AIT"]})
    stop = trio.Event()
    async with (
        raw_client(url, receive_buffer=4096) as idle,
        open_websocket_url(url) as follower,
        server.client(server.keys[BOB]) as bob,
        trio.open_nursery() as nursery,
    ):
        await idle.send_text(subscribe)
        await follower.send_message(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
        assert (await receive(follower))["type"] == "subscribed"
        snapshot = await receive(follower)
        state = {"seq": snapshot["seq"], "book": {"bids": {}, "asks": {}}}
        nursery.start_soon(_follow, follower, state)
        nursery.start_soon(_churn, server.engine, stop)
        with trio.fail_after(60):
            while not idle.ended_by_server():
                await trio.sleep(0.01)
        stop.set()
        await place(bob, "sell", "0.1", "29000")
        rest = (await bob.get("/orderbook/BTC_AIT")).json()
        with trio.fail_after(10):
            while state["seq"] != rest["seq"]:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert state["book"] == {"bids": dict(rest["bids"]), "asks": dict(rest["asks"])}
    assert await server.engine.subscribers() == 0


async def test_a_dropped_client_that_does_not_answer_the_close_is_cut(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It reads, slow_consumer and the close frame (1008) included, but never answers the
    close: CLOSE_WAIT_SECONDS later the connection is cut."""
    monkeypatch.setattr(ws_feed, "OUTBOX", 20)
    async with server.client(server.keys[BOB]) as bob, trio.open_nursery() as nursery:
        for i in range(60):
            nursery.start_soon(place, bob, "sell", "0.1", str(30000 + i))
    async with raw_client(_ws_url(server), receive_buffer=4096) as ws:
        ws.answers_close = False
        for _ in range(100):
            for op in ("subscribe", "unsubscribe"):
                await ws.send_text(json.dumps({"op": op, "channels": ["book.BTC_AIT"]}))
        with trio.fail_after(10):
            while not isinstance(event := await ws.event(), CloseConnection):
                pass
            since = trio.current_time()
            while not ws.ended_by_server():
                await trio.sleep(0.01)
        took = trio.current_time() - since
    assert event.code == 1008
    assert took < frames.CLOSE_WAIT_SECONDS + 1.0


async def test_a_stopping_server_cuts_a_client_that_never_reads(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close (1001, going away) does not get through to it: the connection is cut
    CLOSE_WAIT_SECONDS later, rather than hold the server's stop up."""
    monkeypatch.setattr(ws_feed, "OUTBOX", 10**9)
    monkeypatch.setattr(ws_feed, "STALL_SECONDS", 3600.0)  # only the close's wait
    app = create_app(server.engine, ADMIN)
    stop_server, stop_churn = trio.Event(), trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            url = (await serve(nursery, app, stop_server)).replace("http", "ws", 1)
            async with raw_client(url + "/api/v1/trading/ws", receive_buffer=4096) as idle:
                await idle.send_text(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
                nursery.start_soon(_churn, server.engine, stop_churn)
                unread = -1
                while unread != (unread := idle.unread()):  # its receive window is full
                    await trio.sleep(0.5)
                app.config["CLOSING"].set()
                since = trio.current_time()
                while not idle.ended_by_server():
                    await trio.sleep(0.01)
                took = trio.current_time() - since
            stop_churn.set()
            stop_server.set()
    assert took < frames.CLOSE_WAIT_SECONDS + 1.0


async def test_off_hypercorn_the_feed_sends_message_by_message(server: Server) -> None:
    """Quart's test client is no Hypercorn connection: no direct writes, the same feed."""
    app = create_app(server.engine, ADMIN)
    async with (
        app.test_client().websocket("/api/v1/trading/ws") as ws,
        server.client(server.keys[BOB]) as bob,
    ):
        await ws.send(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
        with trio.fail_after(5):
            assert json.loads(await ws.receive())["type"] == "subscribed"
            snapshot = json.loads(await ws.receive())
            for i in range(3):
                await place(bob, "sell", "0.1", str(30000 + i))
            rest = (await bob.get("/orderbook/BTC_AIT")).json()
            book = {"bids": dict(snapshot["bids"]), "asks": dict(snapshot["asks"])}
            last = snapshot["seq"]
            while last != rest["seq"]:
                delta = json.loads(await ws.receive())
                if delta["type"] == "delta":
                    assert delta["prev_seq"] == last
                    last = delta["seq"]
                    _apply(book, delta)
    assert book == {"bids": dict(rest["bids"]), "asks": dict(rest["asks"])}
