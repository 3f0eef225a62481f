"""A gateway's WebSocket feed over a real engine process, Redis and PostgreSQL."""

from __future__ import annotations

import json
import signal

import pytest
import redis
import trio

from tests.gateway.processes import (
    ALICE,
    BOB,
    Cluster,
    authenticate,
    client,
    feed,
    limit_order,
    ready_client,
    receive,
    send,
    subscribe,
    until_ready,
    until_unready,
    watching,
)


async def test_a_subscription_while_the_engine_is_down_is_answered_an_error_and_the_connection_kept(
    cluster: Cluster,
) -> None:
    async with (
        cluster.engine() as engine,
        cluster.gateway() as url,
        ready_client(url, ALICE) as alice,
        feed(url) as ws,
    ):
        await authenticate(ws, ALICE)
        engine.send_signal(signal.SIGSTOP)
        try:
            await until_unready(alice)
            for channel in ("ticker.BTC_AIT", "book.BTC_AIT", "orders"):
                await subscribe(ws, channel)
                error = await receive(ws)
                assert error["type"] == "error", error
                assert error["error"]["code"] == "engine_unavailable", error
        finally:
            engine.send_signal(signal.SIGCONT)
        await until_ready(alice)
        # The same connection subscribes once the engine is back.
        for channel in ("ticker.BTC_AIT", "book.BTC_AIT", "orders"):
            await subscribe(ws, channel)
            snapshot = await receive(ws)
            assert snapshot["type"] == "snapshot", snapshot
            assert snapshot["channel"] == channel


async def test_a_book_still_behind_its_deltas_after_the_subscription_is_sent_once_it_is_whole(
    cluster: Cluster, redis_url: str
) -> None:
    """While the book's snapshot is on its way (the engine frozen), a delta comes that does
    not follow it (one before it lost): the book stays behind however often it is fetched
    at once. The subscriber gets the book once the engine has gone past that delta, then
    the deltas after it, rather than nothing ever again."""
    async with (
        cluster.engine() as engine,
        cluster.gateway() as url,
        ready_client(url, ALICE) as alice,
        feed(url) as ws,
    ):
        seq = (await alice.get("/orderbook/BTC_AIT")).json()["seq"]
        engine.send_signal(signal.SIGSTOP)
        try:
            await subscribe(ws, "book.BTC_AIT")
            await trio.sleep(0.3)  # the gateway listens to the channel, and waits for the book
            ahead = {"channel": "book.BTC_AIT", "type": "delta", "seq": seq + 3,
                     "prev_seq": seq + 2, "ts": "1", "bids": [], "asks": []}  # fmt: skip
            with redis.Redis.from_url(redis_url) as raw:
                raw.publish("te:book.BTC_AIT", json.dumps(ahead))
            await trio.sleep(0.1)
        finally:
            engine.send_signal(signal.SIGCONT)
        for price in ("90", "91", "92"):
            assert (await alice.post("/orders", json=limit_order(price))).status_code == 201
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot", snapshot
        assert ["90", "0.01"] in snapshot["bids"]
        assert snapshot["seq"] >= seq + 3
        assert (await alice.post("/orders", json=limit_order("93"))).status_code == 201
        last = snapshot["seq"]
        while True:  # a chain of deltas from the snapshot on, up to the last order's
            delta = await receive(ws)
            if delta["type"] == "delta":
                assert delta["prev_seq"] == last
            else:  # a book fetched again: as good
                assert delta["type"] == "snapshot", delta
            last = delta["seq"]
            if ["93", "0.01"] in delta["bids"]:
                break


async def test_a_gateway_leaves_each_redis_channel_once_its_last_subscriber_goes(
    cluster: Cluster, redis_url: str
) -> None:
    channels = ["te:ticker.BTC_AIT", "te:book.BTC_AIT", f"te:orders.{ALICE}"]
    with redis.Redis.from_url(redis_url) as watcher:

        def listeners() -> list[int]:
            return [count for _, count in watcher.pubsub_numsub(*channels)]

        async with cluster.engine(), cluster.gateway() as url, ready_client(url, ALICE):
            for _ in range(2):  # and again: a channel left is joined again
                async with feed(url) as ws:
                    await authenticate(ws, ALICE)
                    wanted = ["ticker.BTC_AIT", "book.BTC_AIT", "orders"]
                    await subscribe(ws, *wanted)
                    snapshots = 0
                    while snapshots < len(wanted):
                        snapshots += (await receive(ws))["type"] == "snapshot"
                    assert listeners() == [1, 1, 1]
                    await send(ws, {"op": "unsubscribe", "channels": ["ticker.BTC_AIT"]})
                    assert (await receive(ws))["type"] == "unsubscribed"
                    with trio.fail_after(2):
                        while listeners()[0]:
                            await trio.sleep(0.05)
                # The connection closed: the user's channel goes, and the book a moment later.
                with trio.fail_after(5):
                    while listeners() != [0, 0, 0]:
                        await trio.sleep(0.05)


async def test_a_broken_redis_connection_drops_the_gateways_subscribers_at_once(
    cluster: Cluster, redis_url: str
) -> None:
    """Redis cuts the gateway's subscription (as it does a client too far behind): messages
    may have been lost in between, so every subscriber is dropped, not carried on silently
    over a new connection; one that subscribes again gets a fresh snapshot."""
    async with cluster.engine(), cluster.gateway() as url, ready_client(url, ALICE) as alice:
        async with watching(url) as watcher:
            with redis.Redis.from_url(redis_url) as raw:
                assert raw.client_kill_filter(_type="pubsub") >= 1
            with trio.fail_after(5):
                await watcher.until_closed()
        placed = await alice.post("/orders", json=limit_order("93.5"))
        assert placed.status_code == 201, placed.text
        async with watching(url) as again:
            assert again.snapshots == 1
            assert again.bids == {"93.5": "0.01"}


@pytest.mark.parametrize("channel", ["trades.BTC_AIT", "ticker.BTC_AIT", "candles.BTC_AIT.1m"])
async def test_what_came_while_the_snapshot_was_on_its_way_is_sent_only_if_newer(
    cluster: Cluster, redis_url: str, channel: str
) -> None:
    """A message published before the engine took the snapshot, but read by the gateway
    while the snapshot was on its way, is already in it: the subscriber gets the snapshot
    and then only what is newer (a higher ``seq``), never an older state after a newer."""
    async with (
        cluster.engine() as engine,
        cluster.gateway() as url,
        ready_client(url, ALICE) as alice,
        client(url, BOB) as bob,
        feed(url) as ws,
    ):

        async def trade(price: str) -> None:
            for who, side in ((alice, "buy"), (bob, "sell")):
                body = {**limit_order(price), "side": side}
                assert (await who.post("/orders", json=body)).status_code == 201

        await trade("100")
        seq = (await alice.get("/orderbook/BTC_AIT")).json()["seq"]
        kind = channel.split(".", maxsplit=1)[0].removesuffix("s")
        if kind == "ticker":  # pricing sends a ticker at most every 0.1 s: wait for this one
            async with feed(url) as other:
                await subscribe(other, channel)
                while (await receive(other))["seq"] < seq:
                    pass
        engine.send_signal(signal.SIGSTOP)
        try:
            await subscribe(ws, channel)
            await trio.sleep(0.3)  # the gateway listens to the channel, and waits for the snapshot
            stale = {"channel": channel, "type": kind, "seq": seq, "ts": "1"}
            with redis.Redis.from_url(redis_url) as raw:
                raw.publish(f"te:{channel}", json.dumps(stale))
            await trio.sleep(0.1)
        finally:
            engine.send_signal(signal.SIGCONT)
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot", snapshot
        assert snapshot["seq"] == seq
        await trade("101")
        update = await receive(ws)
        assert update["seq"] > seq, update
