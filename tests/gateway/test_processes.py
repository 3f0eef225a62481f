"""The engine and two gateways as real processes over real Redis and PostgreSQL."""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import redis
import trio

from tests.gateway.processes import (
    ADMIN,
    ALICE,
    BOB,
    Cluster,
    authenticate,
    client,
    feed,
    limit_order,
    orders_of,
    ready_client,
    receive,
    scrape,
    send,
    subscribe,
    until_ready,
)
from trading_engine.serve import demo_key


async def _orders_with(http: httpx.AsyncClient, client_order_id: str) -> list[dict[str, Any]]:
    return [o for o in await orders_of(http, ALICE) if o["client_order_id"] == client_order_id]


async def test_an_order_placed_through_one_gateway_is_seen_and_cancelled_through_the_other(
    cluster: Cluster,
) -> None:
    async with (
        cluster.engine(),
        cluster.gateway() as url_a,
        cluster.gateway() as url_b,
        ready_client(url_a, ALICE) as alice_a,
        ready_client(url_b, ALICE) as alice_b,
        client(url_a, BOB) as bob_a,
    ):
        # The engine prints the demo users' keys, as `serve --demo` does.
        assert f"  {ALICE} key: {demo_key(ADMIN, ALICE)}\n" in cluster.engine_banner + "\n"
        placed = await alice_a.post("/orders", json=limit_order("100", "across"))
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order_id"]
        seen = await alice_b.get(f"/orders/{order_id}")
        assert seen.status_code == 200
        assert seen.json()["client_order_id"] == "across"
        assert seen.json()["status"] == "open"
        # A WebSocket client of gateway B gets the book from B, then B relays A's changes.
        async with feed(url_b) as ws:
            await subscribe(ws, "book.BTC_AIT")
            snapshot = await receive(ws)
            assert snapshot["type"] == "snapshot"
            assert snapshot["bids"] == [["100", "0.01"]]
            sell = limit_order("100", side="sell") | {"quantity": "0.004"}
            sold = await bob_a.post("/orders", json=sell)
            assert sold.status_code == 201, sold.text
            with trio.fail_after(5):
                while (delta := await receive(ws))["type"] != "delta":
                    pass
            assert delta["prev_seq"] == snapshot["seq"]
            assert delta["bids"] == [["100", "0.006"]]
        cancelled = await alice_b.delete(f"/orders/{order_id}")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert (await alice_a.get(f"/orders/{order_id}")).json()["status"] == "cancelled"
        unknown = await alice_a.delete(f"/orders/{order_id}")
        assert unknown.status_code == 409


async def test_a_gateway_that_misses_a_delta_sends_its_subscribers_a_fresh_snapshot(
    cluster: Cluster, redis_url: str
) -> None:
    """A delta published on Redis that the engine never made stands for one the gateway
    got wrong: the engine's next delta does not follow it, so the gateway fetches the book
    again and its subscriber gets the engine's book, not the one it was told."""
    async with (
        cluster.engine(),
        cluster.gateway() as url,
        ready_client(url, ALICE) as alice,
        feed(url) as ws,
    ):
        await subscribe(ws, "book.BTC_AIT")
        snapshot = await receive(ws)
        seq = snapshot["seq"]
        wrong = {"channel": "book.BTC_AIT", "type": "delta", "seq": seq + 1,
                 "prev_seq": seq, "ts": "1", "bids": [["1", "5"]], "asks": []}  # fmt: skip
        redis.Redis.from_url(redis_url).publish("te:book.BTC_AIT", json.dumps(wrong))
        assert (await receive(ws))["bids"] == [["1", "5"]]
        assert (await alice.post("/orders", json=limit_order("99"))).status_code == 201
        fresh = await receive(ws)
        assert fresh["type"] == "snapshot"
        assert fresh["bids"] == [["99", "0.01"]]
        assert fresh["seq"] > seq


async def test_a_command_read_after_its_deadline_is_answered_503_and_never_run(
    cluster: Cluster,
) -> None:
    """The engine is frozen (SIGSTOP) while the gateway sends an order, and longer than the
    gateway waits: the gateway answers 503 ``outcome_unknown`` (at its deadline, or when
    the heartbeat lapses), and the engine, thawed, reads the order late and drops it."""
    async with (
        cluster.engine() as engine,
        cluster.gateway(REPLY_TIMEOUT="1") as url,
        ready_client(url, ALICE) as alice,
    ):
        assert await _orders_with(alice, "late") == []  # the gateway knows alice's key now
        engine.send_signal(signal.SIGSTOP)
        try:
            answer = await alice.post("/orders", json=limit_order("101", "late"))
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "outcome_unknown"
            await trio.sleep(0.3)
        finally:
            engine.send_signal(signal.SIGCONT)
        figures = await scrape(url)
        unanswered = 'te_gateway_calls_unanswered_total{kind="command",reason="%s"}'
        assert figures[unanswered % "timeout"] + figures[unanswered % "engine_stopped"] == 1
        await until_ready(alice)
        assert await _orders_with(alice, "late") == []
        # The engine is not stuck: the next order goes through.
        assert (await alice.post("/orders", json=limit_order("101", "on-time"))).status_code == 201
        assert len(await _orders_with(alice, "late")) == 0


async def test_after_a_sigkill_of_the_engine_gateways_answer_503_then_resume_without_duplicates(
    cluster: Cluster,
) -> None:
    async with (
        cluster.gateway() as url_a,
        cluster.gateway() as url_b,
        client(url_a, ALICE) as alice_a,
        client(url_b, ALICE) as alice_b,
    ):
        async with cluster.engine():
            await until_ready(alice_a)
            placed = await alice_a.post("/orders", json=limit_order("102", "before"))
            assert placed.status_code == 201
        # SIGKILLed: within the heartbeat's life both gateways answer 503 engine_unavailable.
        with trio.fail_after(5):
            for http in (alice_a, alice_b):
                while True:
                    answer = await http.post("/orders", json=limit_order("103", "during"))
                    assert answer.status_code == 503, answer.text
                    if answer.json()["error"]["code"] == "engine_unavailable":
                        break
        # The orders sent before the gateways saw the heartbeat lapse (answered 503
        # outcome_unknown) wait in the stream: the engine, back within their deadline, may
        # place them. Either way, the resends through both gateways find one order.
        async with cluster.engine(demo=False):
            await until_ready(alice_b)
            await until_ready(alice_a)  # each gateway sees the heartbeat in its own time
            first = await alice_b.post("/orders", json=limit_order("103", "during"))
            assert first.status_code in (200, 201), first.text
            again = await alice_a.post("/orders", json=limit_order("103", "during"))
            assert again.status_code == 200, again.text
            assert again.json()["order_id"] == first.json()["order_id"]
            assert len(await _orders_with(alice_a, "during")) == 1
            before = await _orders_with(alice_b, "before")
            assert [o["order_id"] for o in before] == [placed.json()["order_id"]]


async def test_an_order_list_placed_through_one_gateway_is_shown_and_cancelled_through_the_other(
    cluster: Cluster,
) -> None:
    oto = {"type": "oto", "orders": [limit_order("100", "working"), limit_order("101", "pending")]}
    async with (
        cluster.engine(),
        cluster.gateway() as url_a,
        cluster.gateway() as url_b,
        ready_client(url_a, ALICE) as alice_a,
        ready_client(url_b, ALICE) as alice_b,
    ):
        placed = await alice_a.post("/order-lists", json=oto)
        assert placed.status_code == 201, placed.text
        list_id = placed.json()["list_id"]
        shown = await alice_b.get(f"/order-lists/{list_id}")
        assert shown.status_code == 200, shown.text
        assert [o["status"] for o in shown.json()["orders"]] == ["open", "pending_new"]
        # Over the feed of gateway B: the WebSocket op, answered as REST answers it.
        async with feed(url_b) as ws:
            await authenticate(ws, ALICE)
            await send(ws, {"op": "order_list.cancel", "id": 7, "args": {"list_id": list_id}})
            with trio.fail_after(5):
                while (answer := await receive(ws)).get("id") != 7:
                    pass
        assert answer["status"] == 200, answer
        assert answer["data"]["status"] == "cancelled"
        assert [o["status"] for o in answer["data"]["orders"]] == ["cancelled", "cancelled"]
        again = await alice_a.get(f"/order-lists/{list_id}")
        assert again.json()["status"] == "cancelled"


async def test_a_heartbeat_the_gateway_cannot_read_leaves_it_serving_what_it_knew(
    cluster: Cluster, redis_url: str
) -> None:
    """An engine of another version (here: a heartbeat of garbage, the engine frozen so
    that it does not beat over it) is logged; the gateway keeps the instruments it knew."""
    async with (
        cluster.engine() as engine,
        cluster.gateway() as url,
        ready_client(url, ALICE) as alice,
    ):
        engine.send_signal(signal.SIGSTOP)
        try:
            redis.Redis.from_url(redis_url).set("te:engine:main:alive", b"\xc1garbage", px=2000)
            await trio.sleep(0.6)  # read at least twice
            async with httpx.AsyncClient(base_url=url + "/api/v1/trading") as anonymous:
                symbols = await anonymous.get("/symbols")  # the gateway's own answer
            assert symbols.status_code == 200, symbols.text
            assert {s["symbol"] for s in symbols.json()["symbols"]} == {"BTC_AIT", "ETH_AIT"}
        finally:
            engine.send_signal(signal.SIGCONT)
        await until_ready(alice)
        assert (await alice.post("/orders", json=limit_order("98"))).status_code == 201


async def test_a_message_on_redis_the_gateway_cannot_read_is_dropped_and_its_book_fetched_again(
    cluster: Cluster, redis_url: str
) -> None:
    """The message is counted (``te_gateway_feed_malformed_total``), and so is the book
    fetched again (``te_gateway_feed_resyncs_total``)."""
    async with (
        cluster.engine(),
        cluster.gateway() as url,
        ready_client(url, ALICE) as alice,
        feed(url) as ws,
    ):
        await subscribe(ws, "book.BTC_AIT")
        snapshot = await receive(ws)
        figures = await scrape(url)
        assert figures["te_gateway_feed_malformed_total"] == 0
        assert figures["te_gateway_feed_resyncs_total"] == 0
        fresh = snapshot
        # One bad message at a time: each resyncs, and a second one sent at once could
        # resync again after the first snapshot, so the next message would be no delta.
        for bad in ("not json", json.dumps({"type": "delta", "seq": 1})):
            with redis.Redis.from_url(redis_url) as direct:
                direct.publish("te:book.BTC_AIT", bad)
            with trio.fail_after(5):  # the book fetched again, and sent again
                while (message := await receive(ws))["type"] != "snapshot":
                    pass
            assert message["seq"] >= fresh["seq"]
            fresh = message
        figures = await scrape(url)
        assert figures["te_gateway_feed_malformed_total"] >= 2
        assert figures["te_gateway_feed_resyncs_total"] >= 2
        assert (await alice.post("/orders", json=limit_order("97"))).status_code == 201
        delta = await receive(ws)  # and the chain goes on from it
        assert (delta["type"], delta["prev_seq"], delta["bids"]) == (
            "delta", fresh["seq"], [["97", "0.01"]],
        )  # fmt: skip
