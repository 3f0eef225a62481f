"""Algorithms over real HTTP, on the real PostgreSQL journal: start, read, list, stop."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.api.conftest import ADMIN, Server
from tests.api.test_order_lists import stop
from tests.api.test_order_types import trade
from tests.api.test_orders import with_reference
from tests.api.test_rest import order
from tests.api.test_ws import _ws_url, receive

ALICE, BOB = "demo_alice", "demo_bob"


def twap(**extra: Any) -> dict[str, Any]:
    body = {"type": "twap", "symbol": "BTC_AIT", "side": "buy", "quantity": "0.001",
            "duration_s": "1", "slices": 4, "limit_price": "1000"}  # fmt: skip
    return {**body, **extra}


async def until_final(client: httpx.AsyncClient, algo_id: str) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            algo: dict[str, Any] = (await client.get(f"/algos/{algo_id}")).json()
            if algo["status"] in ("completed", "cancelled", "failed"):
                return algo
            await trio.sleep(0.05)


async def test_a_twap_works_its_quantity_in_child_orders_that_carry_its_id(
    server: Server,
) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        ask = await bob.post("/orders", json={"symbol": "BTC_AIT", "side": "sell",
                             "type": "limit", "quantity": "1", "price": "1000"})  # fmt: skip
        assert ask.status_code == 201, ask.text
        started = await alice.post("/algos", json=twap())
        assert started.status_code == 201, started.text
        algo = started.json()
        assert algo["type"] == "twap"
        assert algo["status"] == "running"
        assert (algo["quantity"], algo["duration_s"], algo["slices"]) == ("0.001", "1", 4)
        done = await until_final(alice, algo["algo_id"])
        assert done["status"] == "completed"
        assert (done["filled_quantity"], done["remaining_quantity"]) == ("0.001", "0")
        assert done["average_price"] == "1000"
        assert len(done["children"]) == 4
        quantities = []
        for order_id in done["children"]:
            child = (await alice.get(f"/orders/{order_id}")).json()
            assert child["algo_id"] == algo["algo_id"]
            assert child["time_in_force"] == "IOC"
            quantities.append(child["quantity"])
        assert quantities == ["0.0002", "0.0002", "0.0002", "0.0004"]
        listed = (await alice.get(f"/users/{ALICE}/algos")).json()["algos"]
        assert [a["algo_id"] for a in listed] == [algo["algo_id"]]
        assert (await bob.get(f"/algos/{algo['algo_id']}")).status_code == 404
        assert (await bob.get(f"/users/{ALICE}/algos")).status_code == 403
    await server.engine.check_invariants()


async def test_delete_stops_the_algo_and_nothing_more_is_sent(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice, server.client(server.keys[BOB]) as bob:
        body = twap(duration_s="60", slices=2)  # the second slice is due in 30 s
        algo = (await alice.post("/algos", json=body)).json()
        assert (await bob.delete(f"/algos/{algo['algo_id']}")).status_code == 404
        stopped = await alice.delete(f"/algos/{algo['algo_id']}")
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "cancelled"
        assert stopped.json()["reason"] == "cancelled"
        again = await alice.delete(f"/algos/{algo['algo_id']}")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "algo_not_running"
        opened = (await alice.get(f"/users/{ALICE}/orders?status=open")).json()["orders"]
        assert opened == []  # its child (an IOC with nothing to meet) is not working
    await server.engine.check_invariants()


async def test_an_admin_starts_an_algo_for_a_user_and_reads_it(server: Server) -> None:
    async with server.client(ADMIN) as admin:
        missing = await admin.post("/algos", json=twap())
        assert missing.status_code == 400
        assert missing.json()["error"]["field"] == "user_id"
        started = await admin.post("/algos", json=twap(user_id=ALICE, duration_s=60))
        assert started.status_code == 201, started.text
        algo_id = started.json()["algo_id"]
        assert (await admin.get(f"/algos/{algo_id}")).json()["user_id"] == ALICE
        assert (await admin.delete(f"/algos/{algo_id}")).json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration_s": "0"}, "duration_s"),
        ({"duration_s": 0}, "duration_s"),
        ({"duration_s": "1e3"}, "duration_s"),
        ({"duration_s": True}, "duration_s"),
        ({"duration_s": "0.0000000001"}, "duration_s"),
        ({"quantity": "0.00001"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"slices": 0}, "slices"),
        ({"slices": 11}, "slices"),  # 10 lots: a slice would be below one lot
        ({"slices": "4"}, "slices"),
        ({"limit_price": "1000.001"}, "limit_price"),
        ({"participation": "0.5"}, "participation"),  # only for vwap
        ({"type": "vwap", "participation": "1.5"}, "participation"),
        ({"type": "vwap", "participation": "0"}, "participation"),
        ({"type": "iceberg"}, "type"),
        ({"side": "up"}, "side"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field_and_starts_nothing(
    server: Server, change: dict[str, Any], field: str
) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        response = await alice.post("/algos", json=twap(**change))
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] in ("invalid_input", "off_grid")
        assert error["field"] == field
        assert (await alice.get(f"/users/{ALICE}/algos")).json()["algos"] == []


async def test_unknown_symbol_and_algo_are_404s(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        response = await alice.post("/algos", json=twap(symbol="NOPE_AIT"))
        assert response.status_code == 404
        assert response.json()["error"]["field"] == "symbol"
        for algo_id in ("999", "x", "1" * 40):
            unknown = await alice.get(f"/algos/{algo_id}")
            assert unknown.status_code == 404
            assert unknown.json()["error"]["code"] == "unknown_algo"


async def test_a_vwap_with_an_exact_participation_starts(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        body = twap(type="vwap", participation="0.125", duration_s="30.5", limit_price=None)
        response = await alice.post("/algos", json=body)
        assert response.status_code == 201, response.text
        algo = response.json()
        assert (algo["type"], algo["participation"], algo["duration_s"]) == (
            "vwap", "0.125", "30.5",
        )  # fmt: skip
        assert algo["limit_price"] is None
        assert (await alice.delete(f"/algos/{algo['algo_id']}")).status_code == 200


async def test_the_orders_snapshot_shows_running_algos_and_open_lists_then_their_updates(
    server: Server,
) -> None:
    """Subscribed after the fact, Alice's ``orders`` channel starts with her running TWAP
    and her open OCO as GET shows them, then streams the algorithm's later events."""
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        await trade(bob, alice, "30000")
        await with_reference(alice, "BTC_AIT")
        assert (await bob.post("/orders", json=order("sell", "0.001", "30000"))).is_success
        legs = [order("sell", "0.1", "31000"), stop("sell", "0.1", "29000")]
        listed = await alice.post("/order-lists", json={"type": "oco", "orders": legs})
        assert listed.status_code == 201, listed.text
        body = twap(duration_s="2", slices=2, limit_price="30000")
        started = await alice.post("/algos", json=body)
        assert started.status_code == 201, started.text
        algo_id = started.json()["algo_id"]
        async with open_websocket_url(_ws_url(server)) as ws:
            await ws.send_message(json.dumps({"op": "auth", "api_key": server.keys[ALICE]}))
            await ws.send_message(json.dumps({"op": "subscribe", "channels": ["orders"]}))
            snapshot = await receive(ws, "snapshot")
            shown_list = (await alice.get(f"/order-lists/{listed.json()['list_id']}")).json()
            assert snapshot["lists"] == [shown_list]
            assert [o["order_id"] for o in snapshot["orders"]] == [
                o["order_id"] for o in shown_list["orders"]
            ]
            [algo] = snapshot["algos"]
            assert algo["algo_id"] == algo_id
            assert algo["status"] == "running"
            got = (await alice.get(f"/algos/{algo_id}")).json()  # its slices go on meanwhile
            assert set(algo) == set(got)
            terms = ("type", "user_id", "symbol", "side", "quantity", "limit_price", "slices")
            assert [algo[k] for k in terms] == [got[k] for k in terms]
            # The updates past ``algos_seq`` (those at or below it are in the snapshot)
            # follow it without a gap: the only algorithm of the engine, to its end.
            seqs = [snapshot["algos_seq"]]
            with trio.fail_after(10):
                while (update := json.loads(await ws.get_message())).get("status") != ("completed"):
                    if update.get("type") == "algo" and update["seq"] > seqs[0]:
                        seqs.append(update["seq"])
            assert (update["type"], update["algo_id"]) == ("algo", algo_id)
            seqs.append(update["seq"])
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
