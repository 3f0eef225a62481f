"""Order lists over real HTTP with real PostgreSQL: placed, shown (live and on the feed),
cancelled, refused with a 400 naming the field, and surviving a SIGKILL of ``serve``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.api.conftest import Server
from tests.api.rawws import raw_client
from tests.api.test_algo_sigkill import P, client, funded_user, serving
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


@asynccontextmanager
async def alice_on_her_feed(
    server: Server,
) -> AsyncIterator[tuple[WebSocketConnection, httpx.AsyncClient, httpx.AsyncClient]]:
    """Alice's ``orders`` channel, and Bob's and Alice's clients, after a trade at 30000
    that gives BTC_AIT its reference price."""
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
        yield ws, bob, alice


async def test_an_oco_is_placed_shown_on_the_feed_and_resolved_by_a_fill(server: Server) -> None:
    async with alice_on_her_feed(server) as (ws, bob, alice):
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
        amended = await alice.patch(f"/orders/{legs[0]}", json={"quantity": "0.1"})
        assert (amended.status_code, amended.json()["error"]["code"]) == (400, "invalid_amend")
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
            # A slice above its quantity, which the engine refuses as it builds the leg.
            ({"type": "oco", "orders": [order("sell", "0.1", "31000", display_quantity="0.2"),
                                        stop_loss]}, "orders.0.display_quantity"),
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
    assert set(paths["/api/v1/trading/order-lists"]) == {"post", "get"}
    assert set(paths["/api/v1/trading/order-lists/{list_id}"]) == {"get", "delete"}


async def test_an_otoco_survives_a_sigkill_and_its_pair_works_after_it(
    database_url: str, tmp_path: Path
) -> None:
    body = {"type": "otoco", "orders": [
        order("buy", "0.0002", "1000"), order("sell", "0.0002", "1100"),
        stop("sell", "0.0002", "900"),
    ], "list_client_id": "kept"}  # fmt: skip
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
        assert after["list_client_id"] == "kept"
        found = await alice.get("/order-lists", params={"list_client_id": "kept"})
        assert found.json() == after
        assert (await alice.post("/order-lists", json=body)).status_code == 409
        assert (await alice.get(f"/users/{ALICE}/balances")).json() == balances
        # The take-profit leg trades: the stop leg is cancelled, the list is done.
        assert (await bob.post("/orders", json=order("buy", "0.0001", "1100"))).status_code == 201
        done = (await alice.get(f"/order-lists/{list_id}")).json()
        assert done["status"] == "done"
        assert [(o["status"], o["reason"]) for o in done["orders"]] == [
            ("filled", None), ("partially_filled", None), ("cancelled", "oco"),
        ]  # fmt: skip


def _balances(shown: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        asset: (Decimal(b["available"]), Decimal(b["held"]))
        for asset, b in shown["balances"].items()
        if Decimal(b["available"]) or Decimal(b["held"])
    }


async def test_a_bracket_is_funded_by_its_working_buy_across_a_sigkill(
    database_url: str, tmp_path: Path
) -> None:
    """Dan owns only AIT: the take-profit and stop-loss sells of the 0.1 BTC his working
    buy buys are held from what it buys, each fill's BTC at once, and a restart in the
    middle rebuilds the same holds. Fees: maker -2 bps (a rebate), taker 10 bps; the
    buy holds its lots at the worst fee, 0.05005 AIT a lot."""
    body = {"type": "otoco", "orders": [
        order("buy", "0.1", "500"), order("sell", "0.1", "550"), stop("sell", "0.1", "450"),
    ]}  # fmt: skip
    dan = "bracket_dan"
    headers = {"X-API-Key": await funded_user(database_url, tmp_path, dan, "AIT", "60")}

    async def balances(client: httpx.AsyncClient) -> dict[str, tuple[Decimal, Decimal]]:
        return _balances((await client.get(f"/users/{dan}/balances")).json())

    async with (
        serving(database_url, tmp_path) as url,
        client(url, BOB) as bob,
        httpx.AsyncClient(base_url=url + P, headers=headers, timeout=10) as dan_client,
    ):
        placed = await dan_client.post("/order-lists", json=body)
        assert placed.status_code == 201, placed.text
        list_id = placed.json()["list_id"]
        # The working buy holds 1000 lots at the worst fee; the pair nothing yet.
        assert await balances(dan_client) == {"AIT": (Decimal("9.95"), Decimal("50.05"))}
        # 400 lots bought as the maker (a 0.004 AIT rebate): the pair holds their 0.04 BTC.
        assert (await bob.post("/orders", json=order("sell", "0.04", "500"))).status_code == 201
        middle = await balances(dan_client)
        assert middle == {
            "AIT": (Decimal("9.974"), Decimal("30.03")),
            "BTC": (Decimal(0), Decimal("0.04")),
        }
        # What the pair holds is not Dan's to spend.
        spent = await dan_client.post("/orders", json=order("sell", "0.01", "600"))
        assert spent.status_code == 422, spent.text
        shown = (await dan_client.get(f"/order-lists/{list_id}")).json()
    async with (
        serving(database_url, tmp_path) as url,
        client(url, BOB) as bob,
        httpx.AsyncClient(base_url=url + P, headers=headers, timeout=10) as dan_client,
    ):
        assert await balances(dan_client) == middle
        assert (await dan_client.get(f"/order-lists/{list_id}")).json() == shown
        # The rest of the working buy: the pair is placed, holding the 0.1 BTC bought.
        assert (await bob.post("/orders", json=order("sell", "0.06", "500"))).status_code == 201
        after = (await dan_client.get(f"/order-lists/{list_id}")).json()
        assert [o["status"] for o in after["orders"]] == ["filled", "open", "pending_trigger"]
        assert await balances(dan_client) == {
            "AIT": (Decimal("10.01"), Decimal(0)),
            "BTC": (Decimal(0), Decimal("0.1")),
        }
        # The take-profit leg sells it all (a 0.011 AIT rebate); the stop leg is cancelled.
        assert (await bob.post("/orders", json=order("buy", "0.1", "550"))).status_code == 201
        done = (await dan_client.get(f"/order-lists/{list_id}")).json()
        assert done["status"] == "done"
        assert [(o["status"], o["reason"]) for o in done["orders"]] == [
            ("filled", None), ("filled", None), ("cancelled", "oco"),
        ]  # fmt: skip
        assert await balances(dan_client) == {"AIT": (Decimal("65.021"), Decimal(0))}


async def test_lists_are_placed_and_cancelled_over_the_feed_as_rest_does(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        await trade(bob, alice, "30000")
        await with_reference(alice, "BTC_AIT")
    stop_loss = stop("sell", "0.1", "29000")
    oco = {"type": "oco", "orders": [order("sell", "0.1", "31000"), stop_loss]}
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[ALICE])
        await _op(ws, "order_list.place", "oco", **oco)
        bad = {"type": "oco", "orders": [oco["orders"][0], stop("sell", "0.1", "30000")]}
        await _op(ws, "order_list.place", "bad", **bad)
        sliced = order("sell", "0.1", "31000", display_quantity="0.2")
        await _op(ws, "order_list.place", "sliced", type="oco", orders=[sliced, stop_loss])
        answers = await _answers(ws, 3)
        placed = answers["oco"]
        assert placed["status"] == 201, placed
        assert [o["list_id"] for o in placed["data"]["orders"]] == [placed["data"]["list_id"]] * 2
        assert (answers["bad"]["status"], answers["bad"]["error"]["field"]) == (
            400, "args.orders.1.stop_price",
        )  # fmt: skip
        assert (answers["sliced"]["status"], answers["sliced"]["error"]["field"]) == (
            400, "args.orders.0.display_quantity",
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


async def test_a_list_client_id_is_kept_shown_found_and_not_reused_while_open(
    server: Server,
) -> None:
    async with alice_on_her_feed(server) as (ws, bob, alice):
        legs = [order("sell", "0.2", "31000"), stop("sell", "0.3", "29000")]
        body = {"type": "oco", "orders": legs, "list_client_id": "bracket-1"}
        placed = await alice.post("/order-lists", json=body)
        assert placed.status_code == 201, placed.text
        shown = placed.json()
        assert shown["list_client_id"] == "bracket-1"
        before = await held(alice, ALICE, "BTC")
        again = await alice.post("/order-lists", json=body)
        assert again.status_code == 409, again.text
        error = again.json()["error"]
        assert (error["code"], error["field"]) == ("list_client_id_reused", "list_client_id")
        assert shown["list_id"] in error["message"]
        assert await held(alice, ALICE, "BTC") == before  # nothing placed
        found = await alice.get("/order-lists", params={"list_client_id": "bracket-1"})
        assert found.status_code == 200, found.text
        assert found.json() == (await alice.get(f"/order-lists/{shown['list_id']}")).json()
        assert found.json()["list_client_id"] == "bracket-1"
        for params, status in (
            ({"list_client_id": "bracket-2"}, 404),
            ({"list_client_id": "bad id!"}, 400),
            ({}, 400),
        ):
            refused = await alice.get("/order-lists", params=params)
            assert refused.status_code == status, (params, refused.text)
        assert (
            await bob.get("/order-lists", params={"list_client_id": "bracket-1"})
        ).status_code == 404
        bad = await alice.post("/order-lists", json=body | {"list_client_id": "x" * 65})
        assert (bad.status_code, bad.json()["error"]["field"]) == (400, "list_client_id")
        # Ended, its client id is free again; the lookup finds the newest list.
        assert (await alice.delete(f"/order-lists/{shown['list_id']}")).status_code == 200
        other = await alice.post("/order-lists", json=body)
        assert other.status_code == 201, other.text
        newest = await alice.get("/order-lists", params={"list_client_id": "bracket-1"})
        assert newest.json()["list_id"] == other.json()["list_id"] != shown["list_id"]
        assert (await alice.get(f"/order-lists/{shown['list_id']}")).json()["list_client_id"] == (
            "bracket-1"
        )
        seen: dict[str, Any] = {}
        with trio.fail_after(10):
            while "OrderListUpdated" not in seen:
                message = json.loads(await ws.get_message())
                if message.get("list_id") == shown["list_id"]:
                    seen.setdefault(message["event"], message)
        assert seen["OrderListPlaced"]["list_client_id"] == "bracket-1"
        assert seen["OrderListUpdated"]["list_client_id"] == "bracket-1"
        assert seen["OrderListUpdated"]["status"] == "cancelled"


async def test_two_lists_sent_at_once_with_one_list_client_id_place_one(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        await trade(bob, alice, "30000")
        await with_reference(alice, "BTC_AIT")
        legs = [order("sell", "0.1", "31000"), stop("sell", "0.1", "29000")]
        body = {"type": "oco", "orders": legs, "list_client_id": "twice"}
        statuses: list[int] = []

        async def send() -> None:
            statuses.append((await alice.post("/order-lists", json=body)).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(send)
        assert sorted(statuses) == [201, 409, 409, 409]
        open_ = (await alice.get(f"/users/{ALICE}/orders", params={"status": "open"})).json()
        assert len([o for o in open_["orders"] if o["list_id"]]) == 2  # one list's two legs
