"""Batches over real HTTP: up to 100 orders placed in order, or cancelled, one answer each."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import ADMIN, Server
from tests.api.test_rest import ALICE, BOB, order
from trading_engine.storage.limits import Limiter, Limits, LocalLimiter


async def test_a_batch_places_its_orders_in_order_and_answers_each_as_alone(
    server: Server,
) -> None:
    """A bad order gets its own 400 naming the field (under ``orders.N``), a rejected one
    its 422 with figures, an unknown symbol its 404; the others are placed, in the order
    given: the sell rests before the buy behind it takes it."""
    orders: list[dict[str, Any]] = [
        order("sell", "0.5", "30000", client_order_id="b-1"),
        order("buy", "0.2", "30000.001"),  # off the price grid
        # Takes the sell above (bob's own: with stp none, a trade with himself).
        order("buy", "0.2", "30000", client_order_id="b-2", stp="none"),
        order("buy", "100", "29000"),  # 2,900,000 AIT: more than bob has
        {"symbol": "NOPE_AIT", "side": "buy", "type": "limit", "quantity": "1", "price": "1"},
        # A slice above the quantity: the engine refuses it, named as the parser names.
        order("sell", "0.1", "31000", display_quantity="0.2"),
    ]
    async with server.client(server.keys[BOB]) as bob:
        answer = await bob.post("/orders/batch", json={"orders": orders})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        mine = (await bob.get(f"/users/{BOB}/orders", params={"status": "all"})).json()
    assert [r["status"] for r in results] == [201, 400, 201, 422, 404, 400]
    assert results[1]["error"]["field"] == "orders.1.price"
    assert results[5]["error"]["field"] == "orders.5.display_quantity"
    assert results[3]["error"]["code"] == "rejected"
    assert results[3]["error"]["reasons"] == ["insufficient_funds"]
    assert results[3]["error"]["figures"]["insufficient_funds"]["asset"] == "AIT"
    assert results[4]["error"] == {
        "code": "symbol_unknown", "message": "no symbol 'NOPE_AIT'", "field": "orders.4.symbol",
    }  # fmt: skip
    sell, buy = results[0]["data"], results[2]["data"]
    assert (sell["client_order_id"], sell["status"]) == ("b-1", "open")
    assert (buy["status"], buy["trades"][0]["role"]) == ("filled", "taker")
    assert buy["trades"][0]["price"] == "30000"
    assert sorted(o["client_order_id"] for o in mine["orders"]) == ["b-1", "b-2"]


async def test_a_resent_batch_returns_the_originals_and_places_nothing_twice(
    server: Server,
) -> None:
    batch = {"orders": [order("sell", "0.1", "31000", client_order_id=f"r-{i}") for i in range(3)]}
    async with server.client(server.keys[BOB]) as bob:
        first = (await bob.post("/orders/batch", json=batch)).json()["results"]
        again = (await bob.post("/orders/batch", json=batch)).json()["results"]
        mine = (await bob.get(f"/users/{BOB}/orders")).json()["orders"]
    assert [r["status"] for r in first] == [201] * 3
    assert [r["status"] for r in again] == [200] * 3
    assert [r["data"]["order_id"] for r in again] == [r["data"]["order_id"] for r in first]
    assert len(mine) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"orders": []}, "orders"),
        ({"orders": [order("buy", "0.1", "30000")] * 101}, "orders"),
        ({"orders": "all of them"}, "orders"),
        ({"orders": [order("buy", "0.1", "30000")], "colour": "red"}, "colour"),
    ],
)
async def test_a_batch_that_is_not_one_is_a_400_and_places_nothing(
    server: Server, body: dict[str, Any], field: str
) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        answer = await alice.post("/orders/batch", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["field"] == field
        assert (await alice.get(f"/users/{ALICE}/orders")).json()["orders"] == []


async def test_an_order_in_a_batch_may_act_only_for_the_batchs_user(server: Server) -> None:
    async with server.client(ADMIN) as admin:
        answer = await admin.post(
            "/orders/batch",
            json={"user_id": ALICE,
                  "orders": [order("buy", "0.1", "30000"),
                             order("buy", "0.1", "30000", user_id=BOB)]},
        )  # fmt: skip
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 400]
    assert results[0]["data"]["user_id"] == ALICE
    assert results[1]["error"]["field"] == "orders.1.user_id"


async def test_a_batch_cancels_by_order_id_or_client_order_id_each_answered(
    server: Server,
) -> None:
    orders = [order("sell", "0.1", str(31000 + i), client_order_id=f"c-{i}") for i in range(3)]
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        placed = (await bob.post("/orders/batch", json={"orders": orders})).json()["results"]
        ids = [r["data"]["order_id"] for r in placed]
        theirs = (await alice.post("/orders", json=order("buy", "0.1", "29000"))).json()
        by_id = await bob.request(
            "DELETE", "/orders/batch", json={"order_ids": [ids[0], "999999", theirs["order_id"]]}
        )
        by_client = await bob.request(
            "DELETE", "/orders/batch", json={"client_order_ids": ["c-1", "c-2", "c-0", "nope"]}
        )
        still_theirs = (await alice.get(f"/orders/{theirs['order_id']}")).json()
        book = (await bob.get("/orderbook/BTC_AIT")).json()
    assert [r["status"] for r in by_id.json()["results"]] == [200, 404, 404]
    assert by_id.json()["results"][0]["data"]["status"] == "cancelled"
    assert [r["status"] for r in by_client.json()["results"]] == [200, 200, 404, 404]
    assert still_theirs["status"] == "open"  # another user's order is not the caller's to cancel
    assert book["asks"] == []


async def test_a_cancel_batch_names_one_kind_of_id(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob:
        bodies: list[dict[str, list[str]]] = [
            {}, {"order_ids": ["1"], "client_order_ids": ["a"]}, {"order_ids": []},
        ]  # fmt: skip
        for body in bodies:
            answer = await bob.request("DELETE", "/orders/batch", json=body)
            assert answer.status_code == 400, (body, answer.text)


class TestRateLimits:
    @pytest.fixture
    def limiter(self) -> Limiter:
        return LocalLimiter(Limits(rate=0.001, burst=5))

    async def test_each_order_of_a_batch_counts_and_one_over_the_limit_places_none(
        self, server: Server
    ) -> None:
        async with server.client(server.keys[ALICE]) as alice:
            six = {"orders": [order("buy", "0.1", "30000")] * 6}
            refused = await alice.post("/orders/batch", json=six)
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "rate_limited"
        async with server.client(ADMIN) as admin:  # alice's own bucket is spent
            assert (await admin.get(f"/users/{ALICE}/orders")).json()["orders"] == []


class TestABatchTakesItsTokensAtOnce:
    @pytest.fixture
    def limiter(self) -> Limiter:
        return LocalLimiter(Limits(rate=0.001, burst=8))

    async def test_a_refused_batch_takes_no_token_and_a_smaller_one_then_goes(
        self, server: Server
    ) -> None:
        async with server.client(server.keys[ALICE]) as alice:
            nine = {"orders": [order("buy", "0.1", "29000")] * 9}
            assert (await alice.post("/orders/batch", json=nine)).status_code == 429
            seven = {"orders": [order("buy", "0.1", "29000")] * 7}  # 1 + 7 - 1 of the 8 left
            placed = await alice.post("/orders/batch", json=seven)
            assert placed.status_code == 200, placed.text
            assert [r["status"] for r in placed.json()["results"]] == [201] * 7
