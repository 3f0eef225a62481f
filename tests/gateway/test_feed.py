"""A gateway's WebSocket feed over a real engine process, Redis and PostgreSQL."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.gateway.processes import ADMIN, Cluster, client, until_ready, watching
from trading_engine.serve import demo_key

ALICE = "demo_alice"


@asynccontextmanager
async def _feed(url: str) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(url.replace("http", "ws", 1) + "/api/v1/trading/ws") as ws:
        yield ws


async def _send(ws: WebSocketConnection, message: dict[str, Any]) -> None:
    await ws.send_message(json.dumps(message))


async def _next(ws: WebSocketConnection, seconds: float = 5) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    with trio.fail_after(seconds):
        while True:
            message: dict[str, Any] = json.loads(await ws.get_message())
            if message.get("type") != "heartbeat":
                return message


async def _until_unready(http: httpx.AsyncClient) -> None:
    """Wait until the gateway answers ``/ready`` with 503 (the heartbeat lapsed)."""
    with trio.fail_after(10):
        while (await http.get(http.base_url.copy_with(path="/ready"))).status_code != 503:
            await trio.sleep(0.1)


async def test_a_subscription_while_the_engine_is_down_is_answered_an_error_and_the_connection_kept(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine() as engine,
        cluster.gateway() as url,
        client(url, ALICE) as alice,
        _feed(url) as ws,
    ):
        await until_ready(alice)
        await _send(ws, {"op": "auth", "api_key": demo_key(ADMIN, ALICE)})
        assert (await _next(ws))["type"] == "authenticated"
        engine.send_signal(signal.SIGSTOP)
        try:
            await _until_unready(alice)
            for channel in ("ticker.BTC_AIT", "book.BTC_AIT", "orders"):
                await _send(ws, {"op": "subscribe", "channels": [channel]})
                assert (await _next(ws))["type"] == "subscribed"
                error = await _next(ws)
                assert error["type"] == "error", error
                assert error["error"]["code"] == "engine_unavailable", error
        finally:
            engine.send_signal(signal.SIGCONT)
        await until_ready(alice)
        # The same connection subscribes once the engine is back.
        for channel in ("ticker.BTC_AIT", "book.BTC_AIT", "orders"):
            await _send(ws, {"op": "subscribe", "channels": [channel]})
            assert (await _next(ws))["type"] == "subscribed"
            snapshot = await _next(ws)
            assert snapshot["type"] == "snapshot", snapshot
            assert snapshot["channel"] == channel


def _buy(price: str) -> dict[str, Any]:
    return {"symbol": "BTC_AIT", "side": "buy", "type": "limit", "quantity": "0.01",
            "price": price}  # fmt: skip


async def test_a_book_still_behind_its_deltas_after_the_subscription_is_sent_once_it_is_whole(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """While the book's snapshot is on its way (the engine frozen), a delta comes that does
    not follow it (one before it lost): the book stays behind however often it is fetched
    at once. The subscriber gets the book once the engine has gone past that delta, then
    the deltas after it, rather than nothing ever again."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine() as engine,
        cluster.gateway() as url,
        client(url, ALICE) as alice,
        _feed(url) as ws,
    ):
        await until_ready(alice)
        seq = (await alice.get("/orderbook/BTC_AIT")).json()["seq"]
        engine.send_signal(signal.SIGSTOP)
        try:
            await _send(ws, {"op": "subscribe", "channels": ["book.BTC_AIT"]})
            assert (await _next(ws))["type"] == "subscribed"
            await trio.sleep(0.3)  # the gateway listens to the channel, and waits for the book
            ahead = {"channel": "book.BTC_AIT", "type": "delta", "seq": seq + 3,
                     "prev_seq": seq + 2, "ts": "1", "bids": [], "asks": []}  # fmt: skip
            with redis.Redis.from_url(redis_url) as raw:
                raw.publish("te:book.BTC_AIT", json.dumps(ahead))
            await trio.sleep(0.1)
        finally:
            engine.send_signal(signal.SIGCONT)
        for price in ("90", "91", "92"):
            assert (await alice.post("/orders", json=_buy(price))).status_code == 201
        snapshot = await _next(ws)
        assert snapshot["type"] == "snapshot", snapshot
        assert ["90", "0.01"] in snapshot["bids"]
        assert snapshot["seq"] >= seq + 3
        assert (await alice.post("/orders", json=_buy("93"))).status_code == 201
        last = snapshot["seq"]
        while True:  # a chain of deltas from the snapshot on, up to the last order's
            delta = await _next(ws)
            if delta["type"] == "delta":
                assert delta["prev_seq"] == last
            else:  # a book fetched again: as good
                assert delta["type"] == "snapshot", delta
            last = delta["seq"]
            if ["93", "0.01"] in delta["bids"]:
                break


async def test_a_gateway_leaves_each_redis_channel_once_its_last_subscriber_goes(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    channels = ["te:ticker.BTC_AIT", "te:book.BTC_AIT", f"te:orders.{ALICE}"]
    with redis.Redis.from_url(redis_url) as watcher:

        def listeners() -> list[int]:
            return [count for _, count in watcher.pubsub_numsub(*channels)]

        async with cluster.engine(), cluster.gateway() as url, client(url, ALICE) as alice:
            await until_ready(alice)
            for _ in range(2):  # and again: a channel left is joined again
                async with _feed(url) as ws:
                    await _send(ws, {"op": "auth", "api_key": demo_key(ADMIN, ALICE)})
                    assert (await _next(ws))["type"] == "authenticated"
                    wanted = ["ticker.BTC_AIT", "book.BTC_AIT", "orders"]
                    await _send(ws, {"op": "subscribe", "channels": wanted})
                    snapshots = 0
                    while snapshots < len(wanted):
                        snapshots += (await _next(ws))["type"] == "snapshot"
                    assert listeners() == [1, 1, 1]
                    await _send(ws, {"op": "unsubscribe", "channels": ["ticker.BTC_AIT"]})
                    assert (await _next(ws))["type"] == "unsubscribed"
                    with trio.fail_after(2):
                        while listeners()[0]:
                            await trio.sleep(0.05)
                # The connection closed: the user's channel goes, and the book a moment later.
                with trio.fail_after(5):
                    while listeners() != [0, 0, 0]:
                        await trio.sleep(0.05)


async def test_a_broken_redis_connection_drops_the_gateways_subscribers_at_once(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Redis cuts the gateway's subscription (as it does a client too far behind): messages
    may have been lost in between, so every subscriber is dropped, not carried on silently
    over a new connection; one that subscribes again gets a fresh snapshot."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with cluster.engine(), cluster.gateway() as url, client(url, ALICE) as alice:
        await until_ready(alice)
        async with watching(url) as watcher:
            with redis.Redis.from_url(redis_url) as raw:
                assert raw.client_kill_filter(_type="pubsub") >= 1
            with trio.fail_after(5):
                await watcher.until_closed()
        placed = await alice.post("/orders", json=_buy("93.5"))
        assert placed.status_code == 201, placed.text
        async with watching(url) as again:
            assert again.snapshots == 1
            assert again.bids == {"93.5": "0.01"}


@pytest.mark.parametrize("channel", ["trades.BTC_AIT", "ticker.BTC_AIT", "candles.BTC_AIT.1m"])
async def test_what_came_while_the_snapshot_was_on_its_way_is_sent_only_if_newer(
    database_url: str, redis_url: str, tmp_path: Path, channel: str
) -> None:
    """A message published before the engine took the snapshot, but read by the gateway
    while the snapshot was on its way, is already in it: the subscriber gets the snapshot
    and then only what is newer (a higher ``seq``), never an older state after a newer."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine() as engine,
        cluster.gateway() as url,
        client(url, ALICE) as alice,
        client(url, "demo_bob") as bob,
        _feed(url) as ws,
    ):
        await until_ready(alice)

        async def trade(price: str) -> None:
            for who, side in ((alice, "buy"), (bob, "sell")):
                body = {**_buy(price), "side": side}
                assert (await who.post("/orders", json=body)).status_code == 201

        await trade("100")
        seq = (await alice.get("/orderbook/BTC_AIT")).json()["seq"]
        engine.send_signal(signal.SIGSTOP)
        try:
            await _send(ws, {"op": "subscribe", "channels": [channel]})
            assert (await _next(ws))["type"] == "subscribed"
            await trio.sleep(0.3)  # the gateway listens to the channel, and waits for the snapshot
            kind = channel.split(".", maxsplit=1)[0].removesuffix("s")
            stale = {"channel": channel, "type": kind, "seq": seq, "ts": "1"}
            with redis.Redis.from_url(redis_url) as raw:
                raw.publish(f"te:{channel}", json.dumps(stale))
            await trio.sleep(0.1)
        finally:
            engine.send_signal(signal.SIGCONT)
        snapshot = await _next(ws)
        assert snapshot["type"] == "snapshot", snapshot
        assert snapshot["seq"] == seq
        await trade("101")
        update = await _next(ws)
        assert update["seq"] > seq, update
