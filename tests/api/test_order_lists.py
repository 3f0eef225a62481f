"""Order lists over real HTTP with real PostgreSQL: placed, shown (live and on the feed),
cancelled, refused with a 400 naming the field, and surviving a SIGKILL of ``serve``."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio
from trio_websocket import open_websocket_url

from tests.api.conftest import Server
from tests.api.rawws import raw_client
from tests.api.test_algo_sigkill import client, serving
from tests.api.test_order_types import history, project, trade
from tests.api.test_orders import held, with_reference
from tests.api.test_rest import ALICE, BOB, order
from tests.api.test_ws import _ws_url
from tests.api.test_ws_order_ops import _op
from tests.api.test_ws_orders import _answers, _authed
from trading_engine.api.app import OPENAPI_PATH


def stop(side: str, quantity: str, stop_price: str) -> dict[str, Any]:
    return {"symbol": "BTC_AIT", "side": side, "type": "stop", "quantity": quantity,
            "stop_price": stop_price}  # fmt: skip


async def test_an_oco_is_placed_shown_on_the_feed_and_resolved_by_a_fill(server: Server) -> None:
    url = server.url.replace("http", "ws", 1) + "/api/v1/trading/ws"
    async with (
        open_websocket_url(url) as ws,
        server.client(server.keys[BOB]) as bob,
        server.client(server.keys[ALICE]) as alice,
    ):
        await ws.send_message(json.dumps({"op": "auth", "api_key": server.keys[ALICE]}))
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["orders"]}))
        await trade(bob, alice, "30000")
        await with_reference(alice, "BTC_AIT")
        before = await held(alice, ALICE, "BTC")
        body = {
            "type": "oco",
            "orders": [order("sell", "0.2", "31000"), stop("sell", "0.3", "29000")],
        }
        placed = await alice.post("/order-lists", json=body)
        assert placed.status_code == 201, placed.text
        shown = placed.json()
        list_id = shown["list_id"]
        assert (shown["type"], shown["status"], shown["symbol"]) == ("oco", "open", "BTC_AIT")
        assert [(o["type"], o["status"], o["list_id"]) for o in shown["orders"]] == [
            ("limit", "open", list_id), ("stop", "pending_trigger", list_id),
        ]  # fmt: skip
        # One hold for both legs: the larger, 0.3 BTC, not 0.5.
        assert Decimal(await held(alice, ALICE, "BTC")) - Decimal(before) == Decimal("0.3")
        legs = [o["order_id"] for o in shown["orders"]]
        got = (await alice.get(f"/orders/{legs[1]}")).json()
        assert got["list_id"] == list_id
        filled = await bob.post("/orders", json=order("buy", "0.1", "31000"))
        assert filled.status_code == 201, filled.text
        after = (await alice.get(f"/order-lists/{list_id}")).json()
        assert after["status"] == "done"
        assert [(o["status"], o["reason"]) for o in after["orders"]] == [
            ("partially_filled", None), ("cancelled", "oco"),
        ]  # fmt: skip
        assert Decimal(await held(alice, ALICE, "BTC")) - Decimal(before) == Decimal("0.1")
        seen: dict[str, Any] = {}
        with trio.fail_after(10):
            while "OrderListUpdated" not in seen:
                message = json.loads(await ws.get_message())
                if message.get("list_id") == list_id:
                    seen.setdefault(message["event"], message)
        assert seen["OrderListPlaced"]["list_type"] == "oco"
        assert seen["OrderAccepted"]["type"] == "order"
        assert seen["OrderListUpdated"] == seen["OrderListUpdated"] | {
            "type": "list", "status": "done",
        }  # fmt: skip
        cancelled = await alice.delete(f"/order-lists/{list_id}")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["orders"][0]["status"] == "cancelled"
        assert await held(alice, ALICE, "BTC") == before
        again = await alice.delete(f"/order-lists/{list_id}")
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "order_list_not_open"
        other = await bob.get(f"/order-lists/{list_id}")
        assert other.status_code == 404


async def test_an_otoco_waits_for_its_working_order_then_places_its_pair(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        await trade(bob, alice, "30000")
        await with_reference(alice, "BTC_AIT")
        body = {"type": "otoco", "orders": [
            order("buy", "0.2", "29900"), order("sell", "0.2", "31000"),
            stop("sell", "0.2", "29000"),
        ]}  # fmt: skip
        placed = await alice.post("/order-lists", json=body)
        assert placed.status_code == 201, placed.text
        shown = placed.json()
        assert [o["status"] for o in shown["orders"]] == ["open", "pending_new", "pending_new"]
        pending = shown["orders"][1]["order_id"]
        assert (await alice.get(f"/orders/{pending}")).status_code == 404  # not an order yet
        assert (await bob.post("/orders", json=order("sell", "0.2", "29900"))).status_code == 201
        after = (await alice.get(f"/order-lists/{shown['list_id']}")).json()
        assert after["status"] == "open"
        assert [o["status"] for o in after["orders"]] == ["filled", "open", "pending_trigger"]
        placed_leg = (await alice.get(f"/orders/{pending}")).json()
        assert (placed_leg["status"], placed_leg["list_id"]) == ("open", shown["list_id"])
        await project(server)
        rows = await history(alice, ALICE)
        members = [o["order_id"] for o in shown["orders"]]
        assert [rows[m]["list_id"] for m in members] == [shown["list_id"]] * 3
        assert {row["list_id"] for key, row in rows.items() if key not in members} == {None}


async def test_a_bad_list_is_a_400_naming_the_field_and_changes_nothing(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        await trade(bob, alice, "30000")
        await with_reference(alice, "BTC_AIT")
        assert (await bob.post("/orders", json=order("buy", "1", "30500"))).status_code == 201
        balances = (await alice.get(f"/users/{ALICE}/balances")).json()
        eth = {**order("sell", "0.1", "3000"), "symbol": "ETH_AIT"}
        take_profit, stop_loss = order("sell", "0.1", "31000"), stop("sell", "0.1", "29000")
        cases = [
            ({"type": "oco", "orders": [take_profit]}, "orders"),
            ({"type": "oco", "orders": [take_profit, eth]}, "orders.1.symbol"),
            # The limit leg would trade with bob's bid at once.
            ({"type": "oco", "orders": [order("sell", "0.1", "30500"), stop_loss]},
             "orders.0.price"),
            # The last trade (30000) is already at or below the stop.
            ({"type": "oco", "orders": [take_profit, stop("sell", "0.1", "30000")]},
             "orders.1.stop_price"),
            ({"type": "oco", "orders": [stop_loss, take_profit]}, "orders.0.type"),
            ({"type": "oco", "orders": [take_profit, stop("buy", "0.1", "32000")]},
             "orders.1.side"),
            ({"type": "oto", "orders": [order("buy", "0.1", "29000"),
                                        order("sell", "0.10001", "31000")]},
             "orders.1.quantity"),
            ({"type": "bracket", "orders": [take_profit, stop_loss]}, "type"),
        ]  # fmt: skip
        for body, field in cases:
            refused = await alice.post("/order-lists", json=body)
            assert refused.status_code == 400, (field, refused.text)
            assert refused.json()["error"]["field"] == field, refused.text
        assert (await alice.get(f"/users/{ALICE}/balances")).json() == balances
        assert (await alice.get(f"/users/{ALICE}/orders?status=open")).json()["orders"] == []


async def test_the_openapi_document_has_the_order_list_routes(server: Server) -> None:
    async with server.client() as anyone:
        document = (await anyone.get(server.url + OPENAPI_PATH)).json()
    paths = document["paths"]
    assert set(paths["/api/v1/trading/order-lists"]) == {"post"}
    assert set(paths["/api/v1/trading/order-lists/{list_id}"]) == {"get", "delete"}


async def test_an_otoco_survives_a_sigkill_and_its_pair_works_after_it(
    database_url: str, tmp_path: Path
) -> None:
    body = {"type": "otoco", "orders": [
        order("buy", "0.0002", "1000"), order("sell", "0.0002", "1100"),
        stop("sell", "0.0002", "900"),
    ]}  # fmt: skip
    async with (
        serving(database_url, tmp_path) as url,
        client(url, BOB) as bob,
        client(url, ALICE) as alice,
    ):
        placed = await alice.post("/order-lists", json=body)
        assert placed.status_code == 201, placed.text
        list_id = placed.json()["list_id"]
        assert (await bob.post("/orders", json=order("sell", "0.0002", "1000"))).status_code == 201
        before = (await alice.get(f"/order-lists/{list_id}")).json()
        assert [o["status"] for o in before["orders"]] == ["filled", "open", "pending_trigger"]
        balances = (await alice.get(f"/users/{ALICE}/balances")).json()
    async with (
        serving(database_url, tmp_path) as url,
        client(url, BOB) as bob,
        client(url, ALICE) as alice,
    ):
        after = (await alice.get(f"/order-lists/{list_id}")).json()
        assert after == before
        assert (await alice.get(f"/users/{ALICE}/balances")).json() == balances
        # The take-profit leg trades: the stop leg is cancelled, the list is done.
        assert (await bob.post("/orders", json=order("buy", "0.0001", "1100"))).status_code == 201
        done = (await alice.get(f"/order-lists/{list_id}")).json()
        assert done["status"] == "done"
        assert [(o["status"], o["reason"]) for o in done["orders"]] == [
            ("filled", None), ("partially_filled", None), ("cancelled", "oco"),
        ]  # fmt: skip


async def test_lists_are_placed_and_cancelled_over_the_feed_as_rest_does(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        await trade(bob, alice, "30000")
        await with_reference(alice, "BTC_AIT")
    oco = {"type": "oco", "orders": [order("sell", "0.1", "31000"), stop("sell", "0.1", "29000")]}
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[ALICE])
        await _op(ws, "order_list.place", "oco", **oco)
        bad = {"type": "oco", "orders": [oco["orders"][0], stop("sell", "0.1", "30000")]}
        await _op(ws, "order_list.place", "bad", **bad)
        answers = await _answers(ws, 2)
        placed = answers["oco"]
        assert placed["status"] == 201, placed
        assert [o["list_id"] for o in placed["data"]["orders"]] == [placed["data"]["list_id"]] * 2
        assert (answers["bad"]["status"], answers["bad"]["error"]["field"]) == (
            400, "args.orders.1.stop_price",
        )  # fmt: skip
        await _op(ws, "order_list.cancel", "x", list_id=placed["data"]["list_id"])
        await _op(ws, "order_list.cancel", "y", list_id="999999")
        answers = await _answers(ws, 2)
    assert answers["x"]["status"] == 200, answers["x"]
    assert answers["x"]["data"]["status"] == "cancelled"
    assert [o["status"] for o in answers["x"]["data"]["orders"]] == ["cancelled"] * 2
    assert (answers["y"]["status"], answers["y"]["error"]["code"]) == (404, "unknown_order_list")


async def test_a_dropped_connection_cancels_the_lists_placed_through_it(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        await trade(bob, alice, "30000")
        await with_reference(alice, "BTC_AIT")
    otoco = {"type": "otoco", "orders": [
        order("buy", "0.1", "29000"), order("sell", "0.1", "31000"), stop("sell", "0.1", "28000"),
    ]}  # fmt: skip
    async with raw_client(_ws_url(server)) as raw:
        auth = {"op": "auth", "api_key": server.keys[ALICE], "cancel_on_disconnect": True}
        await raw.send_text(json.dumps(auth))
        assert json.loads(await raw.text())["cancel_on_disconnect"] is True
        await raw.send_text(json.dumps({"op": "order_list.place", "id": 1, "args": otoco}))
        while (answer := json.loads(await raw.text()))["type"] != "result":
            pass  # a heartbeat
        assert answer["status"] == 201, answer
        raw.cut()
    list_id = answer["data"]["list_id"]
    async with server.client(server.keys[ALICE]) as alice:
        with trio.fail_after(10):
            while (shown := (await alice.get(f"/order-lists/{list_id}")).json())[
                "status"
            ] == "open":
                await trio.sleep(0.05)
    assert shown["status"] == "cancelled"
    assert [o["status"] for o in shown["orders"]] == ["cancelled"] * 3
    await server.engine.check_invariants()
