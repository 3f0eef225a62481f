"""The dead man's switch, ``POST /orders/cancel-all-after``, over real HTTP on PostgreSQL:
armed, re-armed, fired, disarmed, refused, shown in the risk profile, and kept across a
restart of the engine."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import trio

from tests.api.conftest import ADMIN, Server, serve
from tests.api.test_rest import ALICE, BOB, order
from trading_engine.actors.engine import open_engine
from trading_engine.api.app import create_app
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import (
    ACCOUNTS_STREAM,
    CancelAllAfterFired,
    CancelAllAfterSet,
)
from trading_engine.serve import setup_demo
from trading_engine.storage.postgres import open_postgres_journal

PATH = "/orders/cancel-all-after"


def seconds(text: str) -> Decimal:
    return Decimal(text)


async def open_ids(client: httpx.AsyncClient, user: str) -> set[str]:
    listed = await client.get(f"/users/{user}/orders", params={"status": "open"})
    assert listed.status_code == 200, listed.text
    return {o["order_id"] for o in listed.json()["orders"]}


async def switch_of(client: httpx.AsyncClient, user: str) -> Any:
    profile = await client.get(f"/users/{user}/risk-profile")
    assert profile.status_code == 200, profile.text
    return profile.json()["cancel_all_after"]


async def place_orders(client: httpx.AsyncClient) -> set[str]:
    """Resting orders in both symbols, a stop order among them."""
    bodies = [
        order("buy", "0.1", "29000"),
        order("sell", "0.1", "31000"),
        {**order("buy", "1", "1900"), "symbol": "ETH_AIT"},
        {"symbol": "ETH_AIT", "side": "sell", "type": "stop_limit", "quantity": "1",
         "price": "1790", "stop_price": "1800"},
    ]  # fmt: skip
    ids = set()
    for body in bodies:
        placed = await client.post("/orders", json=body)
        assert placed.status_code == 201, placed.text
        ids.add(placed.json()["order_id"])
    return ids


async def wait_until_none_open(client: httpx.AsyncClient, user: str, within: float) -> None:
    with trio.fail_after(within):
        while await open_ids(client, user):
            await trio.sleep(0.01)


async def test_arming_answers_the_deadline_and_the_risk_profile_shows_it(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        armed = await alice.post(PATH, json={"timeout_ms": 60_000})
        assert armed.status_code == 200, armed.text
        body = armed.json()
        assert (body["user_id"], body["timeout_ms"]) == (ALICE, 60_000)
        assert seconds(body["cancel_at"]) == seconds(body["now"]) + 60
        assert abs(seconds(body["now"]) - Decimal(time.time_ns()) / 10**9) < 5
        assert await switch_of(alice, ALICE) == {
            "timeout_ms": 60_000, "cancel_at": body["cancel_at"]
        }  # fmt: skip
    async with server.client(server.keys[BOB]) as bob:
        assert await switch_of(bob, BOB) is None


async def test_re_arming_pushes_the_deadline_out(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        ids = await place_orders(alice)
        deadlines = []
        for _ in range(7):  # 1.75 s in all, longer than the timeout
            armed = await alice.post(PATH, json={"timeout_ms": 1_000})
            assert armed.status_code == 200, armed.text
            deadlines.append(seconds(armed.json()["cancel_at"]))
            await trio.sleep(0.25)
        assert deadlines == sorted(deadlines)
        assert len(set(deadlines)) == len(deadlines)
        assert await open_ids(alice, ALICE) == ids
        await wait_until_none_open(alice, ALICE, 3)


async def test_the_switch_fires_and_cancels_every_open_order_of_the_user_in_every_symbol(
    server: Server,
) -> None:
    async with (
        server.client(server.keys[ALICE]) as alice,
        server.client(server.keys[BOB]) as bob,
    ):
        mine = await place_orders(alice)
        theirs = await place_orders(bob)
        armed = await alice.post(PATH, json={"timeout_ms": 300})
        assert armed.status_code == 200, armed.text
        cancel_at = seconds(armed.json()["cancel_at"])
        await wait_until_none_open(alice, ALICE, 3)
        for order_id in mine:
            cancelled = (await alice.get(f"/orders/{order_id}")).json()
            assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "cancel_all_after")
            assert cancel_at <= seconds(cancelled["updated_at"]) < cancel_at + 1
        assert await open_ids(bob, BOB) == theirs
        balances = (await alice.get(f"/users/{ALICE}/balances")).json()["balances"]
        assert {asset: b["held"] for asset, b in balances.items()} == {
            "AIT": "0", "BTC": "0", "ETH": "0"
        }  # fmt: skip
        with trio.fail_after(3):  # the switch is disarmed once the cancels are durable
            while await switch_of(alice, ALICE) is not None:
                await trio.sleep(0.01)
        # Fired once: an order placed afterwards stays.
        again = await alice.post("/orders", json=order("buy", "0.1", "29000"))
        assert again.status_code == 201
        await trio.sleep(0.5)
        assert await open_ids(alice, ALICE) == {again.json()["order_id"]}
    await server.engine.check_invariants()
    fired = [e for e in await server.engine.journal.read(ACCOUNTS_STREAM)
             if isinstance(e, CancelAllAfterFired)]  # fmt: skip
    assert [(e.user_id, e.cancel_at) for e in fired] == [(ALICE, int(cancel_at * 10**9))]


async def test_zero_disarms_the_switch(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        ids = await place_orders(alice)
        assert (await alice.post(PATH, json={"timeout_ms": 1_000})).status_code == 200
        disarmed = await alice.post(PATH, json={"timeout_ms": 0})
        assert disarmed.status_code == 200, disarmed.text
        assert (disarmed.json()["timeout_ms"], disarmed.json()["cancel_at"]) == (0, None)
        assert await switch_of(alice, ALICE) is None
        await trio.sleep(1.3)
        assert await open_ids(alice, ALICE) == ids


async def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        armed = (await alice.post(PATH, json={"timeout_ms": 60_000})).json()
        before = await switch_of(alice, ALICE)
        cases: list[tuple[bytes, str]] = [
            (b'{"timeout_ms": -1}', "timeout_ms"),
            (b'{"timeout_ms": 86400001}', "timeout_ms"),
            (b'{"timeout_ms": "1000"}', "timeout_ms"),
            (b'{"timeout_ms": 1000.5}', "timeout_ms"),
            (b'{"timeout_ms": 1e3}', "body"),  # the JSON reader refuses exponents
            (b'{"timeout_ms": true}', "timeout_ms"),
            (b'{"timeout_ms": false}', "timeout_ms"),
            (b'{"timeout_ms": null}', "timeout_ms"),
            (b"{}", "timeout_ms"),
            (b'{"timeout_ms": 1000, "timeout": 5}', "timeout"),
            (b"[1000]", "body"),
            (b"{not json", "body"),
        ]
        for raw, field in cases:
            response = await alice.post(
                PATH, content=raw, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400, (raw, response.text)
            error = response.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_input", field), (raw, error)
            assert error["message"], raw
        assert await switch_of(alice, ALICE) == before
        assert before["cancel_at"] == armed["cancel_at"]
        # The cap itself is accepted.
        capped = await alice.post(PATH, json={"timeout_ms": 86_400_000})
        assert capped.status_code == 200, capped.text


async def test_admin_sets_a_users_switch_and_a_user_only_their_own(server: Server) -> None:
    async with (
        server.client(ADMIN) as admin,
        server.client(server.keys[ALICE]) as alice,
    ):
        for_bob = await admin.post(PATH, json={"user_id": BOB, "timeout_ms": 60_000})
        assert for_bob.status_code == 200, for_bob.text
        assert for_bob.json()["user_id"] == BOB
        assert (await switch_of(admin, BOB))["cancel_at"] == for_bob.json()["cancel_at"]
        no_one = await admin.post(PATH, json={"timeout_ms": 60_000})
        assert (no_one.status_code, no_one.json()["error"]["field"]) == (400, "user_id")
        unknown = await admin.post(PATH, json={"user_id": "nobody", "timeout_ms": 60_000})
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_user")
        forbidden = await alice.post(PATH, json={"user_id": BOB, "timeout_ms": 1})
        assert forbidden.status_code == 403, forbidden.text
        anonymous = await alice.post(PATH, json={"timeout_ms": 1}, headers={"X-API-Key": ""})
        assert anonymous.status_code == 401
        assert (await switch_of(admin, BOB))["cancel_at"] == for_bob.json()["cancel_at"]
        assert await switch_of(admin, ALICE) is None


@asynccontextmanager
async def served(database_url: str) -> AsyncIterator[Server]:
    """An engine on the journal at ``database_url`` behind a real server, until the block ends."""
    async with (
        open_postgres_journal(database_url) as journal,
        open_engine(EngineConfig(expire_every=float("inf")), journal) as engine,
    ):
        keys = await setup_demo(engine, ADMIN)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            url = await serve(nursery, create_app(engine, ADMIN, read_tables=journal), stop)
            yield Server(url, engine, keys)
            stop.set()


async def test_a_switch_survives_a_restart_and_one_due_while_down_fires_on_start(
    database_url: str,
) -> None:
    with trio.fail_after(30):
        async with served(database_url) as first:
            async with first.client(first.keys[ALICE]) as alice:
                kept = (await alice.post(PATH, json={"timeout_ms": 60_000})).json()
            async with first.client(first.keys[BOB]) as bob:
                bobs = await place_orders(bob)
                due = (await bob.post(PATH, json={"timeout_ms": 1_000})).json()
                assert await open_ids(bob, BOB) == bobs
        # Down past bob's deadline.
        await trio.sleep(float(seconds(due["cancel_at"]) - Decimal(time.time_ns()) / 10**9) + 0.2)
        async with served(database_url) as second:
            async with second.client(second.keys[ALICE]) as alice:
                assert await switch_of(alice, ALICE) == {
                    "timeout_ms": 60_000, "cancel_at": kept["cancel_at"]
                }  # fmt: skip
            async with second.client(second.keys[BOB]) as bob:
                await wait_until_none_open(bob, BOB, 3)
                with trio.fail_after(3):
                    while await switch_of(bob, BOB) is not None:
                        await trio.sleep(0.01)
                for order_id in bobs:
                    assert (await bob.get(f"/orders/{order_id}")).json()["reason"] == (
                        "cancel_all_after"
                    )
            await second.engine.check_invariants()
        async with served(database_url) as third:  # fired once, and not again
            async with third.client(third.keys[BOB]) as bob:
                assert await switch_of(bob, BOB) is None
            async with third.client(third.keys[ALICE]) as alice:
                assert (await switch_of(alice, ALICE))["cancel_at"] == kept["cancel_at"]
            events = await third.engine.journal.read(ACCOUNTS_STREAM)
            fired = [(e.user_id, e.cancel_at) for e in events if isinstance(e, CancelAllAfterFired)]
            assert fired == [(BOB, int(seconds(due["cancel_at"]) * 10**9))]
            armed = [e.user_id for e in events if isinstance(e, CancelAllAfterSet)]
            assert armed == [ALICE, BOB]
