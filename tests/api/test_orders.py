"""What the order routes answer, over real HTTP: resends of a client order id, the
client's price beside the engine's protection price, an order's fills, and the
figures of a rejection."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.api.conftest import Server
from tests.api.test_rest import ALICE, BOB, order
from trading_engine.actors.risk import state as risk_state
from trading_engine.storage.postgres import log as postgres_log


@asynccontextmanager
async def journal_writes_held(dsn: str) -> AsyncIterator[None]:
    """Hold the journal writers' advisory lock on a connection of its own: every write
    waits (nothing is acknowledged) until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        async def run() -> None:
            connection = await asyncpg.connect(dsn, timeout=10)
            try:
                await connection.execute("SELECT pg_advisory_lock($1)", postgres_log._LOCK_KEY)
                locked.set()
                await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
            finally:
                await connection.close()

        asyncio.run(run())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: trio.to_thread.run_sync(hold))
        try:
            assert await trio.to_thread.run_sync(locked.wait, 10), "the lock was not taken"
            yield
        finally:
            release.set()


async def held(client: httpx.AsyncClient, user: str, asset: str) -> str:
    balances = (await client.get(f"/users/{user}/balances")).json()["balances"]
    return str(balances[asset]["held"])


async def test_a_resend_that_differs_from_the_original_is_409_naming_each_field(
    server: Server,
) -> None:
    original = order("sell", "1", "31000", client_order_id="c-1")
    async with server.client(server.keys[BOB]) as bob:
        first = await bob.post("/orders", json=original)
        assert first.status_code == 201, first.text
        resend = original | {"side": "buy", "quantity": "2", "price": "30000"}
        refused = await bob.post("/orders", json=resend)
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "client_order_id_reused"
        assert error["field"] == "client_order_id"
        assert error["order_id"] == first.json()["order_id"]
        assert error["differs"] == ["side", "quantity", "price"]
        for shown in ("side buy (the original's: sell)", "quantity 2 (the original's: 1)",
                      "price 30000 (the original's: 31000)"):  # fmt: skip
            assert shown in error["message"], error["message"]
        for field, value in (("stp", "cancel_oldest"), ("time_in_force", "IOC"),
                             ("post_only", True), ("symbol", "ETH_AIT")):  # fmt: skip
            other = await bob.post("/orders", json=original | {field: value})
            assert other.status_code == 409, (field, other.text)
            assert other.json()["error"]["differs"] == [field]
        again = await bob.post("/orders", json=original)
        assert again.status_code == 200, again.text
        assert again.json() == first.json() | {"updated_at": again.json()["updated_at"]}
        mine = (await bob.get(f"/users/{BOB}/orders", params={"status": "all"})).json()["orders"]
        assert [o["order_id"] for o in mine] == [first.json()["order_id"]]
        assert await held(bob, BOB, "BTC") == "1"


async def test_a_market_order_resent_as_sent_is_its_original_and_changed_is_409(
    server: Server,
) -> None:
    market = {"symbol": "BTC_AIT", "side": "buy", "type": "market", "quantity": "0.1",
              "client_order_id": "m-1"}  # fmt: skip
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        assert (await bob.post("/orders", json=order("sell", "1", "30000"))).status_code == 201
        await with_reference(alice, "BTC_AIT")
        first = await alice.post("/orders", json=market)
        assert first.status_code == 201, first.text
        # Placed as IOC (a market order never rests); the resend says GTC, as the first did.
        assert first.json()["time_in_force"] == "IOC"
        again = await alice.post("/orders", json=market)
        assert again.status_code == 200, again.text
        assert again.json()["order_id"] == first.json()["order_id"]
        changed = await alice.post("/orders", json=market | {"quantity": "0.2"})
        assert changed.status_code == 409, changed.text
        assert changed.json()["error"]["differs"] == ["quantity"]


async def test_a_resend_while_the_original_is_in_flight_is_compared_too(
    server: Server, database_url: str
) -> None:
    original = order("sell", "1", "31000", client_order_id="c-2")
    answers: dict[str, httpx.Response] = {}
    async with server.client(server.keys[BOB]) as bob:

        async def send(name: str, body: dict[str, Any]) -> None:
            answers[name] = await bob.post("/orders", json=body)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery, journal_writes_held(database_url):
                nursery.start_soon(send, "original", original)
                while await held(bob, BOB, "BTC") != "1":  # taken, sent, not yet written
                    await trio.sleep(0.01)
                # Answered at once: it needs nothing from the journal.
                refused = await bob.post("/orders", json=original | {"quantity": "3"})
                nursery.start_soon(send, "identical", original)
                await trio.sleep(0.2)
                assert not answers, "nothing was written yet"
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "client_order_id_reused"
        assert error["differs"] == ["quantity"]
        assert "quantity 3 (the original's: 1)" in error["message"]
        assert answers["original"].status_code == 201, answers["original"].text
        assert answers["identical"].status_code == 200, answers["identical"].text
        assert answers["identical"].json()["order_id"] == answers["original"].json()["order_id"]
        assert error["order_id"] == answers["original"].json()["order_id"]
        mine = (await bob.get(f"/users/{BOB}/orders", params={"status": "all"})).json()["orders"]
        assert len(mine) == 1


async def with_reference(client: httpx.AsyncClient, symbol: str) -> None:
    """Wait until ``symbol`` has a reference price (a market order's check passes it)."""
    probe = {"order": {"symbol": symbol, "side": "sell", "type": "market", "quantity": "0.0001"}}
    with trio.fail_after(10):
        while (
            "no_reference_price" in (await client.post("/risk/check", json=probe)).json()["reasons"]
        ):
            await trio.sleep(0.02)


async def test_market_and_stop_orders_show_the_clients_price_and_the_protection_price_apart(
    server: Server,
) -> None:
    """The band is 10% around the reference (bob's 30000 ask): a market sell may go down to
    27000, a market buy up to 33000, and a stop buy at 31000 up to 34100."""
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        assert (await bob.post("/orders", json=order("sell", "1", "30000"))).status_code == 201
        await with_reference(alice, "BTC_AIT")
        market = {"symbol": "BTC_AIT", "type": "market", "quantity": "0.1"}
        stop = market | {"type": "stop", "side": "buy", "stop_price": "31000"}
        stop_limit = stop | {"type": "stop_limit", "price": "31500"}
        placed = {}
        for name, body in (("sell", market | {"side": "sell"}), ("buy", market | {"side": "buy"}),
                           ("stop", stop), ("stop_limit", stop_limit)):  # fmt: skip
            response = await alice.post("/orders", json=body)
            assert response.status_code == 201, response.text
            placed[name] = response.json()
        shown = {
            name: (o["price"], o["stop_price"], o["protection_price"]) for name, o in placed.items()
        }
        assert shown == {
            "sell": (None, None, "27000"),
            "buy": (None, None, "33000"),
            "stop": (None, "31000", "34100"),
            "stop_limit": ("31500", "31000", None),
        }
        for name, body in placed.items():
            got = (await alice.get(f"/orders/{body['order_id']}")).json()
            assert (got["price"], got["stop_price"], got["protection_price"]) == shown[name]
        waiting = {o["order_id"]: o for o in await orders_snapshot(server, server.keys[ALICE])}
        rest = (await alice.get(f"/users/{ALICE}/orders", params={"status": "open"})).json()
        assert sorted(waiting) == sorted(o["order_id"] for o in rest["orders"])
        assert sorted(waiting) == sorted([placed["stop"]["order_id"],
                                          placed["stop_limit"]["order_id"]])  # fmt: skip
        assert waiting[placed["stop"]["order_id"]]["protection_price"] == "34100"
        assert waiting[placed["stop"]["order_id"]]["price"] is None
        assert waiting[placed["stop_limit"]["order_id"]]["protection_price"] is None


async def test_a_rejection_states_its_figures_in_the_message_and_as_fields(
    server: Server,
) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        assert (await bob.post("/orders", json=order("sell", "1", "30000"))).status_code == 201
        await with_reference(alice, "BTC_AIT")
        # 1000 BTC at 40000: outside 30000's 10% band, and 40,040,000 AIT with the
        # 10 bps taker fee, of alice's 1,000,000.
        wanted = order("buy", "1000", "40000")
        rejected = await alice.post("/orders", json=wanted)
        assert rejected.status_code == 422, rejected.text
        error = rejected.json()["error"]
        assert error["reasons"] == ["outside_price_band", "insufficient_funds"]
        assert error["figures"] == {
            "outside_price_band": {
                "price": "40000", "low": "27000", "high": "33000", "reference": "30000",
            },
            "insufficient_funds": {
                "asset": "AIT", "needed": "40040000", "available": "1000000",
            },
        }  # fmt: skip
        assert error["message"] == (
            "order rejected: outside_price_band (price 40000 is outside the band 27000 to "
            "33000 around the reference price 30000); insufficient_funds (needs 40040000 AIT, "
            "1000000 AIT available)"
        )
        check = (await alice.post("/risk/check", json={"order": wanted})).json()
        assert check["allowed"] is False
        assert (check["reasons"], check["figures"]) == (error["reasons"], error["figures"])
        assert check["message"] == error["message"]
        fine = (await alice.post("/risk/check", json={"order": order("buy", "1", "30000")})).json()
        assert (fine["allowed"], fine["message"], fine["figures"]) == (True, None, {})
        assert (await alice.get(f"/users/{ALICE}/orders")).json()["orders"] == []


def trade_ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code in (200, 201), answer.text
    return [t["trade_id"] for t in answer.json()["trades"]]


async def test_every_view_of_an_order_shows_its_fills(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        makers = [
            await bob.post("/orders", json=order("sell", "0.1", p)) for p in ("30000", "30010")
        ]
        taker = order("buy", "0.3", "30010", client_order_id="t-1")
        placed = await alice.post("/orders", json=taker)
        assert placed.status_code == 201, placed.text
        first_two = trade_ids(placed)
        assert len(first_two) == 2
        mine = f"/orders/{placed.json()['order_id']}"
        assert trade_ids(await alice.get(mine)) == first_two
        # A maker's fills come after its own answer.
        assert trade_ids(makers[0]) == []
        assert trade_ids(await bob.get(f"/orders/{makers[0].json()['order_id']}")) == first_two[:1]
        late = await bob.post("/orders", json=order("sell", "0.05", "30010"))
        all_three = first_two + trade_ids(late)
        got = await alice.get(mine)
        assert trade_ids(got) == all_three
        assert got.json()["filled_quantity"] == "0.25"
        assert sum(Decimal(t["quantity"]) for t in got.json()["trades"]) == Decimal("0.25")
        assert trade_ids(await alice.post("/orders", json=taker)) == all_three  # the resend
        listed = (await alice.get(f"/users/{ALICE}/orders")).json()["orders"]
        assert [t["trade_id"] for t in listed[0]["trades"]] == all_three
        [snapshot] = await orders_snapshot(server, server.keys[ALICE])
        assert snapshot == listed[0]
        assert trade_ids(await alice.delete(mine)) == all_three


async def orders_snapshot(server: Server, key: str) -> list[dict[str, Any]]:
    """The orders in the feed's ``orders`` snapshot for the user of ``key``."""
    async with open_websocket_url(server.url.replace("http", "ws", 1) + "/api/v1/trading/ws") as ws:
        await ws.send_message(json.dumps({"op": "auth", "api_key": key}))
        await ws.send_message(json.dumps({"op": "subscribe", "channels": ["orders"]}))
        with trio.fail_after(5):
            while (message := json.loads(await ws.get_message())).get("type") != "snapshot":
                pass
    orders: list[dict[str, Any]] = message["orders"]
    return orders


async def test_fills_older_than_the_engine_keeps_come_from_the_read_tables(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for each user's last 2 fills, an order filled 3 times still shows all 3."""
    monkeypatch.setattr(risk_state, "_KEEP_USER_TRADES", 2)
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        for price in ("30000", "30010", "30020"):
            assert (await bob.post("/orders", json=order("sell", "0.1", price))).is_success
        placed = await alice.post("/orders", json=order("buy", "0.3", "30020"))
        fills = trade_ids(placed)
        assert len(fills) == 3
        kept = (await alice.get(f"/users/{ALICE}/trades")).json()["trades"]
        assert [t["trade_id"] for t in kept] == fills[:0:-1]  # newest first
        with trio.fail_after(10):  # the read tables trail the journal by about 0.1 s
            while (
                shown := trade_ids(await alice.get(f"/orders/{placed.json()['order_id']}"))
            ) != fills:
                assert set(shown) <= set(fills)
                await trio.sleep(0.05)
        got = (await alice.get(f"/orders/{placed.json()['order_id']}")).json()["trades"]
    for old, new in zip(got, placed.json()["trades"], strict=True):
        assert {k: v for k, v in old.items() if k != "time"} == {
            k: v for k, v in new.items() if k != "time"
        }
        # The tables keep microseconds; the engine, nanoseconds.
        assert abs(Decimal(old["time"]) - Decimal(new["time"])) < Decimal("1e-6")
