"""Amends, cancel-all and batches over the WebSocket, and cancel-on-disconnect."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url
from wsproto.events import CloseConnection

from tests.api.conftest import ADMIN, Server
from tests.api.rawws import RawClient, raw_client
from tests.api.test_rest import ALICE, BOB, order
from tests.api.test_ws import _ws_url, receive
from tests.api.test_ws_orders import _answers, _authed
from trading_engine.storage.limits import Limiter, Limits, LocalLimiter


async def _op(ws: WebSocketConnection, op: str, request_id: object, **args: Any) -> None:
    await ws.send_message(json.dumps({"op": op, "id": request_id, "args": args}))


async def _open_orders(server: Server, user: str) -> list[dict[str, Any]]:
    async with server.client(ADMIN) as admin:
        listed = await admin.get(f"/users/{user}/orders", params={"status": "open"})
    orders: list[dict[str, Any]] = listed.json()["orders"]
    return orders


async def test_orders_are_amended_over_the_feed_as_patch_amends_them(server: Server) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[BOB])
        await _op(ws, "order.place", 0, **order("sell", "0.5", "31000", client_order_id="q"))
        order_id = (await _answers(ws, 1))[0]["data"]["order_id"]
        await _op(ws, "order.amend", "price", order_id=order_id, price="31500")
        await _op(ws, "order.amend", "size", client_order_id="q", quantity="0.3")
        answers = await _answers(ws, 2)
        await _op(ws, "order.amend", "none", order_id=order_id)
        await _op(ws, "order.amend", "same", order_id=order_id, price="31500")
        await _op(ws, "order.amend", "bad", order_id=order_id, price="31500.001")
        await _op(ws, "order.amend", "odd", order_id=order_id, price="31600", side="buy")
        answers |= await _answers(ws, 4)
    assert (answers["price"]["status"], answers["price"]["data"]["price"]) == (200, "31500")
    assert (answers["size"]["status"], answers["size"]["data"]["quantity"]) == (200, "0.3")
    refused = {key: answers[key] for key in ("none", "same", "bad", "odd")}
    assert {key: (a["status"], a["error"]["field"]) for key, a in refused.items()} == {
        "none": (400, "args"), "same": (400, "args.price"),
        "bad": (400, "args.price"), "odd": (400, "args.side"),
    }  # fmt: skip
    [resting] = await _open_orders(server, BOB)
    assert (resting["price"], resting["quantity"]) == ("31500", "0.3")


async def test_cancel_all_over_the_feed_cancels_the_users_orders_in_one_symbol_or_all(
    server: Server,
) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        kept = await alice.post("/orders", json=order("buy", "0.1", "29000"))
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[BOB])
        await _op(ws, "order.place", 0, **order("sell", "0.1", "31000"))
        eth = order("sell", "1", "2100") | {"symbol": "ETH_AIT"}
        await _op(ws, "order.place", 1, **eth)
        await _answers(ws, 2)
        await _op(ws, "orders.cancel_all", "nope", symbol="NOPE_AIT")
        await _op(ws, "orders.cancel_all", "btc", symbol="BTC_AIT")
        first = await _answers(ws, 2)
        left = await _open_orders(server, BOB)
        await _op(ws, "orders.cancel_all", "all")
        rest = (await _answers(ws, 1))["all"]
    assert (first["nope"]["status"], first["nope"]["error"]["field"]) == (404, "args.symbol")
    assert [o["symbol"] for o in first["btc"]["data"]["cancelled"]] == ["BTC_AIT"]
    assert [o["symbol"] for o in left] == ["ETH_AIT"]
    assert [o["status"] for o in rest["data"]["cancelled"]] == ["cancelled"]
    assert await _open_orders(server, BOB) == []
    assert [o["order_id"] for o in await _open_orders(server, ALICE)] == [kept.json()["order_id"]]


async def test_a_batch_over_the_feed_answers_each_order_in_order_and_one_bad_sinks_none(
    server: Server,
) -> None:
    batch = [
        order("sell", "0.1", "31000", client_order_id="b-0"),
        order("sell", "0.1", "31000.001"),  # off the tick
        order("buy", "0.1", "29000"),
        {"symbol": "NOPE_AIT", "side": "buy", "type": "limit", "quantity": "1", "price": "1"},
    ]
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[BOB])
        await _op(ws, "orders.place_batch", "b", orders=batch)
        await _op(ws, "orders.place_batch", "again", orders=batch[:1])
        await _op(ws, "orders.place_batch", "huge", orders=[order("buy", "0.1", "1")] * 101)
        await _op(ws, "orders.place_batch", "empty", orders=[])
        await _op(ws, "orders.place_batch", "odd", orders=batch[:1], side="buy")
        answers = await _answers(ws, 5)
    results = answers["b"]["data"]["results"]
    assert answers["b"]["status"] == 200
    assert [r["status"] for r in results] == [201, 400, 201, 404]
    assert [r["error"]["field"] for r in (results[1], results[3])] == [
        "args.orders.1.price",
        "args.orders.3.symbol",
    ]
    assert int(results[0]["data"]["order_id"]) < int(results[2]["data"]["order_id"])
    again = answers["again"]["data"]["results"][0]
    assert (again["status"], again["data"]["order_id"]) == (200, results[0]["data"]["order_id"])
    for key, field in (("huge", "args.orders"), ("empty", "args.orders"), ("odd", "args.side")):
        assert (answers[key]["status"], answers[key]["error"]["field"]) == (400, field), key
    assert len(await _open_orders(server, BOB)) == 2


class TestRateLimits:
    @pytest.fixture
    def limiter(self) -> Limiter:
        return LocalLimiter(Limits(rate=0.001, burst=6))

    async def test_a_batch_over_the_feed_counts_each_order_and_over_the_limit_places_none(
        self, server: Server
    ) -> None:
        async with open_websocket_url(_ws_url(server)) as ws:
            await _authed(ws, server.keys[ALICE])  # from the address's bucket, not Alice's
            await _op(ws, "orders.place_batch", "7", orders=[order("buy", "0.1", "29000")] * 7)
            refused = (await _answers(ws, 1))["7"]
        assert (refused["status"], refused["error"]["code"]) == (429, "rate_limited")
        assert await _open_orders(server, ALICE) == []


async def _place_and_drop(server: Server, drop: str, count: int) -> list[str]:
    """Authenticate Bob with cancel_on_disconnect, place one resting order and wait for
    its answer, then ``count`` - 1 more without waiting (in flight), then drop the
    connection (``close`` it or ``cut`` it); their client order ids."""
    ids = [f"cod-{drop}-{i}" for i in range(count)]
    async with raw_client(_ws_url(server)) as client:
        auth = {"op": "auth", "api_key": server.keys[BOB], "cancel_on_disconnect": True}
        await client.send_text(json.dumps(auth))
        assert json.loads(await client.text())["cancel_on_disconnect"] is True
        for i, client_id in enumerate(ids):
            body = order("sell", "0.01", str(31000 + i), client_order_id=client_id)
            await client.send_text(json.dumps({"op": "order.place", "id": i, "args": body}))
            while i == 0 and (answer := json.loads(await client.text()))["type"] != "result":
                pass  # a heartbeat
            if i == 0:
                assert answer["status"] == 201
        await _drop(client, drop)
    return ids


async def _drop(client: RawClient, how: str) -> None:
    if how == "cut":
        client.cut()
    else:
        await client.send(CloseConnection(code=1000))


async def _wait_for_no_open_orders(server: Server, user: str, keep: int) -> list[dict[str, Any]]:
    with trio.fail_after(10):
        while len(still := await _open_orders(server, user)) > keep:
            await trio.sleep(0.05)
    return still


@pytest.mark.parametrize("drop", ["close", "cut"])
async def test_a_dropped_connection_cancels_the_orders_placed_through_it(
    server: Server, drop: str
) -> None:
    """Every order placed through the connection, in flight when it dropped included, is
    cancelled; Bob's order placed over REST and Alice's stay."""
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        rest = (await bob.post("/orders", json=order("sell", "0.01", "31500"))).json()
        alices = (await alice.post("/orders", json=order("buy", "0.01", "30000"))).json()
    ids = await _place_and_drop(server, drop, 50)
    still = await _wait_for_no_open_orders(server, BOB, keep=1)
    assert [o["order_id"] for o in still] == [rest["order_id"]]
    assert [o["order_id"] for o in await _open_orders(server, ALICE)] == [alices["order_id"]]
    async with server.client(server.keys[BOB]) as bob:
        listed = (await bob.get(f"/users/{BOB}/orders", params={"limit": 100})).json()["orders"]
    placed = [o["status"] for o in listed if o.get("client_order_id") in ids]
    # What the server had not read when the connection ended (a reset discards it, and
    # a close ends the handler) was never placed.
    assert placed
    assert set(placed) == {"cancelled"}
    await server.engine.check_invariants()


async def test_without_the_flag_a_dropped_connection_leaves_its_orders(server: Server) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[BOB])
        await _op(ws, "order.place", 0, **order("sell", "0.01", "31000"))
        await _answers(ws, 1)
    await trio.sleep(0.2)
    assert len(await _open_orders(server, BOB)) == 1


async def test_cancel_on_disconnect_must_be_true_or_false(server: Server) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        auth = {"op": "auth", "api_key": server.keys[BOB], "cancel_on_disconnect": "yes"}
        await ws.send_message(json.dumps(auth))
        error = await receive(ws, "error")
        await _op(ws, "order.place", 0, **order("sell", "0.01", "31000"))
        refused = (await _answers(ws, 1))[0]
    assert error["error"]["field"] == "cancel_on_disconnect"
    assert refused["status"] == 401  # not authenticated


async def test_the_dead_mans_switch_is_armed_over_the_feed_and_fires(server: Server) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[BOB])
        await _op(ws, "order.place", 0, **order("sell", "0.01", "31000"))
        await _op(ws, "orders.cancel_after", "bad", timeout_ms=-1)
        await _op(ws, "orders.cancel_after", "arm", timeout_ms=300)
        answers = await _answers(ws, 3)
        armed = answers["arm"]["data"]
        assert (answers["bad"]["status"], answers["bad"]["error"]["field"]) == (
            400,
            "args.timeout_ms",
        )
        assert (answers["arm"]["status"], armed["timeout_ms"]) == (200, 300)
        assert Decimal(armed["cancel_at"]) - Decimal(armed["now"]) == Decimal("0.3")
        # The connection stays open: the switch, not a disconnect, cancels the order.
        await _wait_for_no_open_orders(server, BOB, keep=0)
    async with server.client(server.keys[BOB]) as bob:
        profile = (await bob.get(f"/users/{BOB}/risk-profile")).json()
    assert profile["cancel_all_after"] is None
