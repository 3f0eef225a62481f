"""The engine and two gateways as real processes over real Redis and PostgreSQL."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import redis
import trio
from trio_websocket import open_websocket_url

from tests.gateway.processes import ADMIN, Cluster, client, scrape, until_ready
from trading_engine.serve import demo_key

ALICE, BOB = "demo_alice", "demo_bob"


def _order(price: str, client_order_id: str | None = None, side: str = "buy") -> dict[str, Any]:
    body = {"symbol": "BTC_AIT", "side": side, "type": "limit", "quantity": "0.01",
            "price": price}  # fmt: skip
    if client_order_id is not None:
        body["client_order_id"] = client_order_id
    return body


async def _orders_with(http: Any, client_order_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/users/{ALICE}/orders?limit=1000")
    assert response.status_code == 200, response.text
    return [o for o in response.json()["orders"] if o["client_order_id"] == client_order_id]


async def test_an_order_placed_through_one_gateway_is_seen_and_cancelled_through_the_other(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine(),
        cluster.gateway() as url_a,
        cluster.gateway() as url_b,
        client(url_a, ALICE) as alice_a,
        client(url_b, ALICE) as alice_b,
        client(url_a, BOB) as bob_a,
    ):
        # The engine prints the demo users' keys, as `serve --demo` does.
        assert f"  {ALICE} key: {demo_key(ADMIN, ALICE)}\n" in cluster.engine_banner + "\n"
        await until_ready(alice_a)
        await until_ready(alice_b)
        placed = await alice_a.post("/orders", json=_order("100", "across"))
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order_id"]
        seen = await alice_b.get(f"/orders/{order_id}")
        assert seen.status_code == 200
        assert seen.json()["client_order_id"] == "across"
        assert seen.json()["status"] == "open"
        # A WebSocket client of gateway B gets the book from B, then B relays A's changes.
        async with open_websocket_url(url_b.replace("http", "ws", 1) + "/api/v1/trading/ws") as ws:
            await ws.send_message(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
            with trio.fail_after(5):
                assert json.loads(await ws.get_message())["type"] == "subscribed"
                snapshot = json.loads(await ws.get_message())
            assert snapshot["type"] == "snapshot"
            assert snapshot["bids"] == [["100", "0.01"]]
            sell = _order("100", side="sell") | {"quantity": "0.004"}
            sold = await bob_a.post("/orders", json=sell)
            assert sold.status_code == 201, sold.text
            with trio.fail_after(5):
                while (delta := json.loads(await ws.get_message()))["type"] != "delta":
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
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """A delta published on Redis that the engine never made stands for one the gateway
    got wrong: the engine's next delta does not follow it, so the gateway fetches the book
    again and its subscriber gets the engine's book, not the one it was told."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine(),
        cluster.gateway() as url,
        client(url, ALICE) as alice,
    ):
        await until_ready(alice)
        async with open_websocket_url(url.replace("http", "ws", 1) + "/api/v1/trading/ws") as ws:
            await ws.send_message(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
            with trio.fail_after(5):
                assert json.loads(await ws.get_message())["type"] == "subscribed"
                snapshot = json.loads(await ws.get_message())
            seq = snapshot["seq"]
            wrong = {"channel": "book.BTC_AIT", "type": "delta", "seq": seq + 1,
                     "prev_seq": seq, "ts": "1", "bids": [["1", "5"]], "asks": []}  # fmt: skip
            redis.Redis.from_url(redis_url).publish("te:book.BTC_AIT", json.dumps(wrong))
            with trio.fail_after(5):
                assert json.loads(await ws.get_message())["bids"] == [["1", "5"]]
            assert (await alice.post("/orders", json=_order("99"))).status_code == 201
            with trio.fail_after(5):
                fresh = json.loads(await ws.get_message())
            assert fresh["type"] == "snapshot"
            assert fresh["bids"] == [["99", "0.01"]]
            assert fresh["seq"] > seq


async def test_a_command_read_after_its_deadline_is_answered_503_and_never_run(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """The engine is frozen (SIGSTOP) while the gateway sends an order, and longer than the
    gateway waits: the gateway answers 503 ``outcome_unknown`` (at its deadline, or when
    the heartbeat lapses), and the engine, thawed, reads the order late and drops it."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine() as engine,
        cluster.gateway(REPLY_TIMEOUT="1") as url,
        client(url, ALICE) as alice,
    ):
        await until_ready(alice)
        assert await _orders_with(alice, "late") == []  # the gateway knows alice's key now
        engine.send_signal(signal.SIGSTOP)
        try:
            answer = await alice.post("/orders", json=_order("101", "late"))
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
        assert (await alice.post("/orders", json=_order("101", "on-time"))).status_code == 201
        assert len(await _orders_with(alice, "late")) == 0


async def test_after_a_sigkill_of_the_engine_gateways_answer_503_then_resume_without_duplicates(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.gateway() as url_a,
        cluster.gateway() as url_b,
        client(url_a, ALICE) as alice_a,
        client(url_b, ALICE) as alice_b,
    ):
        async with cluster.engine():
            await until_ready(alice_a)
            placed = await alice_a.post("/orders", json=_order("102", "before"))
            assert placed.status_code == 201
        # SIGKILLed: within the heartbeat's life both gateways answer 503 engine_unavailable.
        with trio.fail_after(5):
            for http in (alice_a, alice_b):
                while True:
                    answer = await http.post("/orders", json=_order("103", "during"))
                    assert answer.status_code == 503, answer.text
                    if answer.json()["error"]["code"] == "engine_unavailable":
                        break
        # The orders sent before the gateways saw the heartbeat lapse (answered 503
        # outcome_unknown) wait in the stream: the engine, back within their deadline, may
        # place them. Either way, the resends through both gateways find one order.
        async with cluster.engine(demo=False):
            await until_ready(alice_b)
            await until_ready(alice_a)  # each gateway sees the heartbeat in its own time
            first = await alice_b.post("/orders", json=_order("103", "during"))
            assert first.status_code in (200, 201), first.text
            again = await alice_a.post("/orders", json=_order("103", "during"))
            assert again.status_code == 200, again.text
            assert again.json()["order_id"] == first.json()["order_id"]
            assert len(await _orders_with(alice_a, "during")) == 1
            before = await _orders_with(alice_b, "before")
            assert [o["order_id"] for o in before] == [placed.json()["order_id"]]


async def test_an_order_list_placed_through_one_gateway_is_shown_and_cancelled_through_the_other(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    oto = {"type": "oto", "orders": [_order("100", "working"), _order("101", "pending")]}
    async with (
        cluster.engine(),
        cluster.gateway() as url_a,
        cluster.gateway() as url_b,
        client(url_a, ALICE) as alice_a,
        client(url_b, ALICE) as alice_b,
    ):
        await until_ready(alice_a)
        await until_ready(alice_b)
        placed = await alice_a.post("/order-lists", json=oto)
        assert placed.status_code == 201, placed.text
        list_id = placed.json()["list_id"]
        shown = await alice_b.get(f"/order-lists/{list_id}")
        assert shown.status_code == 200, shown.text
        assert [o["status"] for o in shown.json()["orders"]] == ["open", "pending_new"]
        # Over the feed of gateway B: the WebSocket op, answered as REST answers it.
        async with open_websocket_url(url_b.replace("http", "ws", 1) + "/api/v1/trading/ws") as ws:
            await ws.send_message(json.dumps({"op": "auth", "api_key": demo_key(ADMIN, ALICE)}))
            cancel = {"op": "order_list.cancel", "id": 7, "args": {"list_id": list_id}}
            await ws.send_message(json.dumps(cancel))
            with trio.fail_after(5):
                while (answer := json.loads(await ws.get_message())).get("id") != 7:
                    pass
        assert answer["status"] == 200, answer
        assert answer["data"]["status"] == "cancelled"
        assert [o["status"] for o in answer["data"]["orders"]] == ["cancelled", "cancelled"]
        again = await alice_a.get(f"/order-lists/{list_id}")
        assert again.json()["status"] == "cancelled"


async def test_a_heartbeat_the_gateway_cannot_read_leaves_it_serving_what_it_knew(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """An engine of another version (here: a heartbeat of garbage, the engine frozen so
    that it does not beat over it) is logged; the gateway keeps the instruments it knew."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine() as engine,
        cluster.gateway() as url,
        client(url, ALICE) as alice,
    ):
        await until_ready(alice)
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
        assert (await alice.post("/orders", json=_order("98"))).status_code == 201


async def test_a_message_on_redis_the_gateway_cannot_read_is_dropped_and_its_book_fetched_again(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """The message is counted (``te_gateway_feed_malformed_total``), and so is the book
    fetched again (``te_gateway_feed_resyncs_total``)."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine(),
        cluster.gateway() as url,
        client(url, ALICE) as alice,
    ):
        await until_ready(alice)
        async with open_websocket_url(url.replace("http", "ws", 1) + "/api/v1/trading/ws") as ws:
            await ws.send_message(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
            with trio.fail_after(5):
                assert json.loads(await ws.get_message())["type"] == "subscribed"
                snapshot = json.loads(await ws.get_message())
            figures = await scrape(url)
            assert figures["te_gateway_feed_malformed_total"] == 0
            assert figures["te_gateway_feed_resyncs_total"] == 0
            direct = redis.Redis.from_url(redis_url)
            direct.publish("te:book.BTC_AIT", "not json")
            direct.publish("te:book.BTC_AIT", json.dumps({"type": "delta", "seq": 1}))
            with trio.fail_after(5):  # the book fetched again, and sent again
                while (fresh := json.loads(await ws.get_message()))["type"] != "snapshot":
                    pass
            assert fresh["seq"] >= snapshot["seq"]
            figures = await scrape(url)
            assert figures["te_gateway_feed_malformed_total"] >= 1
            assert figures["te_gateway_feed_resyncs_total"] >= 1
            assert (await alice.post("/orders", json=_order("97"))).status_code == 201
            with trio.fail_after(5):  # and the chain goes on from it
                delta = json.loads(await ws.get_message())
            assert (delta["type"], delta["prev_seq"], delta["bids"]) == (
                "delta", fresh["seq"], [["97", "0.01"]],
            )  # fmt: skip
