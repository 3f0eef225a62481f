"""Take-profit, trailing-stop, iceberg and quote-sized market orders over real HTTP, with
real PostgreSQL: placed, shown (live, in the feed and in the read tables), cancelled."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

from tests.api.conftest import Server
from tests.api.test_orders import held, orders_snapshot, with_reference
from tests.api.test_rest import ALICE, BOB, order
from tests.api.test_ws import receive
from trading_engine.api.app import OPENAPI_PATH
from trading_engine.storage.postgres import PostgresJournal


async def project(server: Server) -> None:
    journal = server.engine.journal
    assert isinstance(journal, PostgresJournal)
    await journal.project()


async def history(client: httpx.AsyncClient, user: str) -> dict[str, dict[str, Any]]:
    """The user's orders as the read tables show them, by order id."""
    rows = (await client.get(f"/users/{user}/history/orders")).json()["orders"]
    return {row["order_id"]: row for row in rows}


async def test_take_profit_orders_are_placed_shown_and_cancelled(server: Server) -> None:
    """The reference is bob's 30000 ask: a buy take-profit at 29000 may trade up to 31900
    (10% above its stop price), and holds for that."""
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        assert (await bob.post("/orders", json=order("sell", "1", "30000"))).status_code == 201
        await with_reference(alice, "BTC_AIT")
        before = await held(alice, ALICE, "AIT")
        base = {"symbol": "BTC_AIT", "side": "buy", "quantity": "0.1", "stop_price": "29000"}
        placed = {}
        for kind, extra in (("take_profit", {}), ("take_profit_limit", {"price": "28900"})):
            response = await alice.post("/orders", json=base | {"type": kind} | extra)
            assert response.status_code == 201, response.text
            placed[kind] = response.json()
        shown = {
            kind: (o["type"], o["status"], o["price"], o["stop_price"], o["protection_price"])
            for kind, o in placed.items()
        }
        assert shown == {
            "take_profit": ("take_profit", "pending_trigger", None, "29000", "31900"),
            "take_profit_limit": ("take_profit_limit", "pending_trigger", "28900", "29000", None),
        }
        # 0.1 at 31900 and at 28900, each with the worst fee (10 bps), rounded up.
        assert await held(alice, ALICE, "AIT") != before
        waiting = {o["order_id"] for o in await orders_snapshot(server, server.keys[ALICE])}
        assert waiting == {o["order_id"] for o in placed.values()}
        for body in placed.values():
            cancelled = await alice.delete(f"/orders/{body['order_id']}")
            assert cancelled.status_code == 200, cancelled.text
        assert await held(alice, ALICE, "AIT") == before
        await project(server)
        rows = await history(alice, ALICE)
        for kind, body in placed.items():
            row = rows[body["order_id"]]
            assert (row["type"], row["price"], row["stop_price"], row["protection_price"]) == (
                shown[kind][0],
                *shown[kind][2:],
            )
            assert row["status"] == "cancelled"


async def test_a_bad_take_profit_is_a_400_naming_the_field(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        body = {"symbol": "BTC_AIT", "side": "sell", "type": "take_profit", "quantity": "0.1"}
        refused = await alice.post("/orders", json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["field"] == "stop_price"


async def test_the_openapi_document_lists_the_new_order_types(server: Server) -> None:
    async with server.client() as anonymous:
        document = (await anonymous.get(server.url + OPENAPI_PATH)).json()
    kinds = document["components"]["schemas"]["OrderType"]["enum"]
    assert {"take_profit", "take_profit_limit"} <= set(kinds)


async def test_a_quote_sized_market_buy_spends_at_most_its_quote_amount(server: Server) -> None:
    """Bob asks 0.5 at 30000; alice spends at most 10000 AIT, fees included."""
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        assert (await bob.post("/orders", json=order("sell", "0.5", "30000"))).status_code == 201
        await with_reference(alice, "BTC_AIT")
        before = (await alice.get(f"/users/{ALICE}/balances")).json()["balances"]["AIT"]
        body = {"symbol": "BTC_AIT", "side": "buy", "type": "market", "quote_quantity": "10000"}
        placed = await alice.post("/orders", json=body)
        assert placed.status_code == 201, placed.text
        shown = placed.json()
        assert shown["quote_quantity"] == "10000"
        assert shown["reason"] == "quote_quantity_reached"
        cost = sum(Decimal(t["price"]) * Decimal(t["quantity"]) + Decimal(t["fee"])
                   for t in shown["trades"])  # fmt: skip
        assert Decimal(shown["filled_quantity"]) == Decimal("0.3330")
        assert cost <= Decimal("10000")
        after = (await alice.get(f"/users/{ALICE}/balances")).json()["balances"]["AIT"]
        assert Decimal(after["available"]) == Decimal(before["available"]) - cost
        assert after["held"] == before["held"]
        await project(server)
        row = (await history(alice, ALICE))[shown["order_id"]]
        assert (row["quote_quantity"], row["filled_quantity"]) == ("10000", "0.333")


async def test_a_bad_quote_quantity_is_a_400_naming_the_field(server: Server) -> None:
    market = {"symbol": "BTC_AIT", "side": "buy", "type": "market"}
    async with server.client(server.keys[ALICE]) as alice:
        for body, field in (
            (market | {"quote_quantity": "10", "quantity": "1"}, "quote_quantity"),
            (order("buy", "1", "30000") | {"quote_quantity": "10"}, "quote_quantity"),
            (market | {"quote_quantity": "0.000000001"}, "quote_quantity"),
            (market | {"quote_quantity": "-5"}, "quote_quantity"),
            (market, "quantity"),
        ):
            refused = await alice.post("/orders", json=body)
            assert refused.status_code == 400, (body, refused.text)
            assert refused.json()["error"]["field"] == field, body


async def trade(seller: httpx.AsyncClient, buyer: httpx.AsyncClient, price: str) -> None:
    """The seller rests 0.1 at ``price`` and the buyer takes it."""
    assert (await seller.post("/orders", json=order("sell", "0.1", price))).status_code == 201
    taken = await buyer.post("/orders", json=order("buy", "0.1", price))
    assert taken.json()["status"] == "filled", taken.text


async def test_a_trailing_stop_shows_its_terms_and_moves_its_stop_on_the_feed(
    server: Server,
) -> None:
    """Armed against the last trade (30000) 500 below it; a trade at 31000 moves it to
    30500, and its owner's ``orders`` channel says so."""
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
        body = {"symbol": "BTC_AIT", "side": "sell", "type": "trailing_stop_limit",
                "quantity": "0.05", "trailing_delta": "500", "limit_offset": "10"}  # fmt: skip
        placed = await alice.post("/orders", json=body)
        assert placed.status_code == 201, placed.text
        shown = placed.json()
        assert (shown["status"], shown["stop_price"], shown["price"]) == (
            "pending_trigger", "29500", "29490",
        )  # fmt: skip
        assert (shown["trailing_delta"], shown["limit_offset"]) == ("500", "10")
        assert (shown["trailing_bps"], shown["activation_price"]) == (None, None)
        await trade(bob, alice, "31000")
        with trio.fail_after(10):
            while True:
                message = json.loads(await ws.get_message())
                if message.get("event") == "StopMoved" and message["stop_price"] == "30500":
                    assert message["order_id"] == shown["order_id"]
                    break
        got = (await alice.get(f"/orders/{shown['order_id']}")).json()
        assert (got["stop_price"], got["price"]) == ("30500", "30490")
        await project(server)
        row = (await history(alice, ALICE))[shown["order_id"]]
        assert (row["type"], row["stop_price"], row["trailing_delta"], row["limit_offset"]) == (
            "trailing_stop_limit", "30500", "500", "10",
        )  # fmt: skip
        before = await held(alice, ALICE, "BTC")
        cancelled = await alice.delete(f"/orders/{shown['order_id']}")
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["status"], cancelled.json()["stop_price"]) == (
            "cancelled",
            "30500",
        )
        assert Decimal(before) - Decimal(await held(alice, ALICE, "BTC")) == Decimal("0.05")


async def unchanged(client: httpx.AsyncClient, user: str) -> tuple[Any, Any]:
    """The user's balances and open orders: what a refused order must leave as it was."""
    balances = (await client.get(f"/users/{user}/balances")).json()
    orders = (await client.get(f"/users/{user}/orders?status=open")).json()
    return balances, orders


async def test_a_bad_trailing_stop_is_a_400_naming_the_field(server: Server) -> None:
    base = {"symbol": "BTC_AIT", "side": "sell", "type": "trailing_stop", "quantity": "0.1"}
    async with server.client(server.keys[ALICE]) as alice:
        before = await unchanged(alice, ALICE)
        for extra, field in (
            ({}, "trailing_delta"),
            ({"trailing_delta": "0"}, "trailing_delta"),
            ({"trailing_delta": "0.001"}, "trailing_delta"),
            ({"trailing_delta": "5", "trailing_bps": 10}, "trailing_delta"),
            ({"trailing_bps": 1.5}, "trailing_bps"),
            ({"trailing_bps": 10_000}, "trailing_bps"),
            ({"trailing_delta": "5", "limit_offset": "1"}, "limit_offset"),
            ({"trailing_delta": "5", "stop_price": "30000"}, "stop_price"),
        ):
            refused = await alice.post("/orders", json=base | extra)
            assert refused.status_code == 400, (extra, refused.text)
            assert refused.json()["error"]["field"] == field, extra
        assert await unchanged(alice, ALICE) == before


async def test_an_iceberg_shows_its_slice_in_the_book_and_both_parts_to_its_owner(
    server: Server,
) -> None:
    url = server.url.replace("http", "ws", 1) + "/api/v1/trading/ws"
    async with (
        open_websocket_url(url) as ws,
        server.client(server.keys[BOB]) as bob,
        server.client(server.keys[ALICE]) as alice,
    ):
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
        assert (await receive(ws, "snapshot"))["asks"] == []
        body = order("sell", "1", "30000", display_quantity="0.2")
        placed = await bob.post("/orders", json=body)
        assert placed.status_code == 201, placed.text
        shown = placed.json()
        assert (shown["display_quantity"], shown["hidden_quantity"]) == ("0.2", "0.8")
        assert (await receive(ws, "delta"))["asks"] == [["30000", "0.2"]]
        depth = (await alice.get("/orderbook/BTC_AIT")).json()
        assert depth["asks"] == [["30000", "0.2"]]
        # A taker of 0.3: the slice, then 0.1 of the next one, shown at the back.
        taken = await alice.post("/orders", json=order("buy", "0.3", "30000"))
        assert taken.json()["filled_quantity"] == "0.3", taken.text
        assert (await receive(ws, "delta"))["asks"] == [["30000", "0.1"]]
        got = (await bob.get(f"/orders/{shown['order_id']}")).json()
        assert (got["remaining_quantity"], got["hidden_quantity"]) == ("0.7", "0.6")
        # Amended to 0.35 in all (0.05 left): below its slice, which shrinks to it.
        amended = await bob.patch(f"/orders/{shown['order_id']}", json={"quantity": "0.35"})
        assert amended.status_code == 200, amended.text
        assert (await receive(ws, "delta"))["asks"] == [["30000", "0.05"]]
        async with open_websocket_url(url) as late:
            await late.send_message(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
            assert (await receive(late, "snapshot"))["asks"] == [["30000", "0.05"]]
        await project(server)
        row = (await history(bob, BOB))[shown["order_id"]]
        assert (row["display_quantity"], row["remaining_quantity"]) == ("0.2", "0.05")


async def test_a_bad_display_quantity_is_a_400_naming_the_field(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        before = await unchanged(alice, ALICE)
        for extra in (
            {"display_quantity": "1"},
            {"display_quantity": "2"},
            {"display_quantity": "0.00001"},
            {"display_quantity": "0.2", "time_in_force": "IOC"},
        ):
            refused = await alice.post("/orders", json=order("sell", "1", "30000") | extra)
            assert refused.status_code == 400, (extra, refused.text)
            assert refused.json()["error"]["field"] == "display_quantity", extra
        assert await unchanged(alice, ALICE) == before
