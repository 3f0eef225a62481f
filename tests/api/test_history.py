"""History from the read tables: every order and fill, paged, as the live views show them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import trio

from tests.api.conftest import ADMIN, Server
from tests.api.test_orders import with_reference
from tests.api.test_rest import ALICE, BOB, list_perp_and_fund, order
from trading_engine.storage.postgres import PostgresJournal

_SAME = (
    "order_id", "client_order_id", "symbol", "side", "type", "time_in_force", "price",
    "stop_price", "protection_price", "quantity", "filled_quantity", "remaining_quantity",
    "average_price", "status", "reason", "reduce_only", "post_only",
)  # fmt: skip


async def pages(client: httpx.AsyncClient, path: str, key: str, limit: int) -> list[Any]:
    """Every item of a history, walked ``limit`` at a time through ``next``."""
    items: list[Any] = []
    before: str | None = None
    while True:
        params = {"limit": str(limit)} | ({"before": before} if before else {})
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body[key]) <= limit
        items += body[key]
        before = body["next"]
        if before is None:
            return items


async def trade_a_little(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        for price in ("30000", "30010", "30020"):
            assert (await bob.post("/orders", json=order("sell", "0.5", price))).status_code == 201
        taker = await alice.post("/orders", json=order("buy", "0.7", "30010", client_order_id="a1"))
        assert len(taker.json()["trades"]) == 2
        rest = (
            await alice.post("/orders", json=order("buy", "0.2", "29000", post_only=True))
        ).json()
        assert rest["post_only"] is True
        assert (await alice.delete(f"/orders/{rest['order_id']}")).status_code == 200


async def caught_up(server: Server, user: str) -> None:
    """Wait until the read tables show `user`'s orders as the engine does (they trail by 0.1 s)."""

    def states(orders: list[Any]) -> list[tuple[str, str, str]]:
        return [(o["order_id"], o["status"], o["filled_quantity"]) for o in orders]

    async with server.client(ADMIN) as admin:
        with trio.fail_after(10):
            while True:
                live = await admin.get(f"/users/{user}/orders", params={"status": "all"})
                history = await admin.get(f"/users/{user}/history/orders")
                if states(history.json()["orders"]) == states(live.json()["orders"]):
                    return
                await trio.sleep(0.05)


async def test_order_history_pages_through_what_the_live_view_shows(server: Server) -> None:
    await trade_a_little(server)
    await caught_up(server, ALICE)
    async with server.client(server.keys[ALICE]) as alice:
        live = (await alice.get(f"/users/{ALICE}/orders", params={"status": "all"})).json()
        history = await pages(alice, f"/users/{ALICE}/history/orders", "orders", limit=1)
    assert [o["order_id"] for o in history] == [o["order_id"] for o in live["orders"]]
    for old, new in zip(history, live["orders"], strict=True):
        assert {k: old[k] for k in _SAME} == {k: new[k] for k in _SAME}
        # The tables keep microseconds; the engine, nanoseconds.
        assert abs(Decimal(old["created_at"]) - Decimal(new["created_at"])) < Decimal("1e-6")
    assert history[0]["status"] == "cancelled"
    assert [o["post_only"] for o in history] == [True, False]
    assert history[1]["client_order_id"] == "a1"
    assert history[1]["average_price"] is not None


async def test_order_history_shows_reduce_only_as_the_live_order_does(server: Server) -> None:
    key = await list_perp_and_fund(server, "dave", "200")
    perp = {"symbol": "PERP_AIT", "type": "limit", "quantity": "1"}
    close = perp | {"side": "sell", "price": "1050", "reduce_only": True}
    async with server.client(server.keys[BOB]) as bob, server.client(key) as dave:
        assert (await bob.post("/orders", json=perp | {"side": "sell", "price": "1000"})).is_success
        assert (await dave.post("/orders", json=perp | {"side": "buy", "price": "1000"})).is_success
        with trio.fail_after(10):
            while (placed := await dave.post("/orders", json=close)).status_code == 422:
                await trio.sleep(0.01)  # risk sees the position once the trade is applied
        assert placed.status_code == 201, placed.text
        await caught_up(server, "dave")
        live = (await dave.get("/users/dave/orders", params={"status": "all"})).json()["orders"]
        history = (await dave.get("/users/dave/history/orders")).json()["orders"]
        document = (await dave.get(server.url + "/api/v1/openapi.json")).json()
    assert [{k: o[k] for k in _SAME} for o in history] == [{k: o[k] for k in _SAME} for o in live]
    assert [o["reduce_only"] for o in history] == [True, False]
    schemas = document["components"]["schemas"]
    assert "reduce_only" in schemas["HistoryOrder"]["required"]
    assert schemas["HistoryOrder"]["properties"]["reduce_only"]["type"] == "boolean"


async def test_order_history_shows_the_protection_price_as_the_live_order_does(
    server: Server,
) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        assert (await bob.post("/orders", json=order("sell", "1", "30000"))).status_code == 201
        await with_reference(alice, "BTC_AIT")
        market = {"symbol": "BTC_AIT", "type": "market", "quantity": "0.1"}
        for body in (market | {"side": "buy"}, market | {"side": "sell"},
                     market | {"side": "buy", "type": "stop", "stop_price": "31000"}):  # fmt: skip
            assert (await alice.post("/orders", json=body)).status_code == 201
        await caught_up(server, ALICE)
        live = (await alice.get(f"/users/{ALICE}/orders", params={"status": "all"})).json()
        history = (await alice.get(f"/users/{ALICE}/history/orders")).json()["orders"]
    assert [{k: o[k] for k in _SAME} for o in history] == [
        {k: o[k] for k in _SAME} for o in live["orders"]
    ]
    assert [(o["type"], o["price"], o["protection_price"]) for o in history] == [
        ("stop", None, "34100"), ("market", None, "27000"), ("market", None, "33000"),
    ]  # fmt: skip


async def test_trade_history_shows_each_side_with_its_role_fee_and_settlement(
    server: Server,
) -> None:
    await trade_a_little(server)
    await caught_up(server, ALICE)
    async with server.client(ADMIN) as admin:
        live = (await admin.get(f"/users/{BOB}/trades")).json()["trades"]
        keys = [t["trade_id"] for t in live]
        settled = (await admin.post("/settlement/trigger", json={"trade_ids": keys})).json()
        assert sorted(settled["settled"] + settled["already_settled"]) == sorted(keys)
        with trio.fail_after(10):
            while True:
                fills = await pages(admin, f"/users/{BOB}/history/trades", "trades", limit=1)
                if len(fills) == 2 and all(f["settlement_status"] == "settled" for f in fills):
                    break
                await trio.sleep(0.05)
        taker = await pages(admin, f"/users/{ALICE}/history/trades", "trades", limit=5)
    assert [f["trade_id"] for f in fills] == keys
    for fill, trade in zip(fills, live, strict=True):
        assert (fill["role"], fill["side"]) == ("maker", "sell")
        assert (fill["price"], fill["quantity"]) == (trade["price"], trade["quantity"])
        assert (fill["fee"], fill["order_id"]) == (trade["fee"], trade["order_id"])
        assert fill["settled_at"] is not None
    assert [(f["role"], f["side"]) for f in taker] == [("taker", "buy")] * len(live)


async def test_history_refuses_bad_cursors_other_users_and_no_key(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client() as anonymous:
        for path in ("orders", "trades"):
            url = f"/users/{BOB}/history/{path}"
            for params, field in (
                ({"limit": "0"}, "limit"),
                ({"limit": "x"}, "limit"),
                ({"before": "nope"}, "before"),
                ({"before": "-1"}, "before"),
                ({"before": "1:BTC_AIT:1:owner"}, "before"),
                ({"before": "1e999999:BTC_AIT:1:maker"}, "before"),  # too big for numeric
                ({"before": "NaN:BTC_AIT:1:maker"}, "before"),
            ):
                response = await bob.get(url, params=params)
                assert response.status_code == 400, (path, params, response.text)
                assert response.json()["error"]["field"] == field
            assert (await bob.get(f"/users/{ALICE}/history/{path}")).status_code == 403
            assert (await anonymous.get(url)).status_code == 401


async def test_an_icebergs_history_row_shows_its_hidden_part_as_the_live_order_does(
    server: Server,
) -> None:
    journal = server.engine.journal
    assert isinstance(journal, PostgresJournal)
    fields = ("display_quantity", "hidden_quantity", "remaining_quantity", "status", "price")
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        placed = await bob.post("/orders", json=order("sell", "1", "30000", display_quantity="0.2"))
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order_id"]
        seen: list[tuple[str, ...]] = []

        async def compare() -> None:
            await journal.project()
            live = (await bob.get(f"/orders/{order_id}")).json()
            rows = (await bob.get(f"/users/{BOB}/history/orders")).json()["orders"]
            row = next(r for r in rows if r["order_id"] == order_id)
            assert {k: row[k] for k in fields} == {k: live[k] for k in fields}
            seen.append(tuple(row[k] for k in fields))

        await compare()
        # The slice and 0.1 of the next one.
        assert (await alice.post("/orders", json=order("buy", "0.3", "30000"))).status_code == 201
        await compare()
        # Two cuts that keep its place (the hidden part goes first), in one projection.
        for quantity in ("0.9", "0.7"):
            cut = await bob.patch(f"/orders/{order_id}", json={"quantity": quantity})
            assert cut.status_code == 200, cut.text
        await compare()
        # A new price: a fresh slice at the back, then the slice filled and refilled.
        assert (await bob.patch(f"/orders/{order_id}", json={"price": "30010"})).status_code == 200
        assert (await alice.post("/orders", json=order("buy", "0.2", "30010"))).status_code == 201
        await compare()
        assert (await bob.delete(f"/orders/{order_id}")).status_code == 200
        await compare()
    assert [s[:3] for s in seen] == [
        ("0.2", "0.8", "1"),
        ("0.2", "0.6", "0.7"),
        ("0.2", "0.3", "0.4"),
        ("0.2", "0", "0.2"),
        ("0.2", "0", "0"),
    ]


async def test_an_algos_child_order_shows_its_algo_id_in_the_history(server: Server) -> None:
    journal = server.engine.journal
    assert isinstance(journal, PostgresJournal)
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        ask = await bob.post("/orders", json=order("sell", "1", "30000"))
        assert ask.status_code == 201, ask.text
        body = {"type": "twap", "symbol": "BTC_AIT", "side": "buy", "quantity": "0.2",
                "duration_s": "1", "slices": 1, "limit_price": "30000"}  # fmt: skip
        started = await alice.post("/algos", json=body)
        assert started.status_code == 201, started.text
        algo_id = started.json()["algo_id"]
        with trio.fail_after(10):
            while not (await alice.get(f"/algos/{algo_id}")).json()["children"]:
                await trio.sleep(0.02)
        await journal.project()
        rows = (await alice.get(f"/users/{ALICE}/history/orders")).json()["orders"]
        (child,) = rows
        assert child["algo_id"] == algo_id
        live = (await alice.get(f"/orders/{child['order_id']}")).json()
        assert (child["algo_id"], child["client_order_id"]) == (
            live["algo_id"],
            live["client_order_id"],
        )
        bobs = (await bob.get(f"/users/{BOB}/history/orders")).json()["orders"]
        assert [r["algo_id"] for r in bobs] == [None]
        assert (bobs[0]["display_quantity"], bobs[0]["hidden_quantity"]) == (None, None)
