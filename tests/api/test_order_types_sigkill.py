"""Every order type of issue 24 over real HTTP survives a SIGKILL of ``serve``: an iceberg
with its refilled slice's place in the queue, a trailing stop with the stop price it
reached (and amended), a take-profit, a quote-sized market order, an OCO pair; each
shown after the restart as before it, and each working on as it would have."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.api.test_algo_sigkill import P, client, funded_user, serving
from tests.api.test_order_lists import stop
from tests.api.test_rest import order

ALICE, BOB, CAROL = "demo_alice", "demo_bob", "sigkill_carol"


async def placed(client_: httpx.AsyncClient, body: dict[str, Any], path: str = "/orders") -> str:
    response = await client_.post(path, json=body)
    assert response.status_code == 201, response.text
    shown: dict[str, Any] = response.json()
    return str(shown.get("list_id") or shown["order_id"])


async def state(alice: httpx.AsyncClient, ids: dict[str, str]) -> dict[str, Any]:
    """What the clients see: each order (or list) as GET shows it, the book, balances."""
    seen: dict[str, Any] = {
        name: (await alice.get(f"/order-lists/{i}" if name == "oco" else f"/orders/{i}")).json()
        for name, i in ids.items()
        if name != "iceberg"
    }
    seen["book"] = (await alice.get("/orderbook/BTC_AIT")).json()
    seen["balances"] = (await alice.get(f"/users/{ALICE}/balances")).json()
    return seen


async def test_every_order_type_survives_a_sigkill_and_works_on(
    database_url: str, tmp_path: Path
) -> None:
    carol_key = await funded_user(database_url, tmp_path, CAROL, "BTC", "1")
    carol_headers = {"X-API-Key": carol_key}
    ids: dict[str, str] = {}
    async with (
        serving(database_url, tmp_path) as url,
        client(url, BOB) as bob,
        client(url, ALICE) as alice,
        httpx.AsyncClient(base_url=url + P, headers=carol_headers, timeout=10) as carol,
    ):
        await placed(bob, order("sell", "0.1", "30000"))
        await placed(alice, order("buy", "0.1", "30000"))  # the last trade: 30000
        ids["trailing"] = await placed(alice, {"symbol": "BTC_AIT", "side": "sell",
            "type": "trailing_stop", "quantity": "0.05", "trailing_delta": "500"})  # fmt: skip
        ids["take_profit"] = await placed(alice, {"symbol": "BTC_AIT", "side": "sell",
            "type": "take_profit", "quantity": "0.05", "stop_price": "30500"})  # fmt: skip
        legs = [order("sell", "0.1", "31000"), stop("sell", "0.1", "29000")]
        ids["oco"] = await placed(alice, {"type": "oco", "orders": legs}, "/order-lists")
        ids["iceberg"] = await placed(bob, order("sell", "1", "30100", display_quantity="0.2"))
        # The slice and 0.1 of the next (trades at 30100: the trailing stop rises to 29600).
        await placed(alice, order("buy", "0.3", "30100"))
        ids["carol"] = await placed(carol, order("sell", "0.1", "30100"))
        # The iceberg's slice of 0.1 fills; its next slice goes behind carol's order.
        await placed(alice, order("buy", "0.1", "30100"))
        ids["quote"] = await placed(alice, {"symbol": "BTC_AIT", "side": "buy",
            "type": "market", "quote_quantity": "1000"})  # fmt: skip
        amended = await alice.patch(f"/orders/{ids['trailing']}", json={"quantity": "0.04"})
        assert amended.status_code == 200, amended.text
        before = await state(alice, ids)
        before["iceberg"] = (await bob.get(f"/orders/{ids['iceberg']}")).json()
        trailing, iceberg = before["trailing"], before["iceberg"]
        assert (trailing["stop_price"], trailing["quantity"]) == ("29600", "0.04")
        assert (iceberg["remaining_quantity"], iceberg["hidden_quantity"]) == ("0.6", "0.4")
        # Carol's 0.1 less the 0.0331 the quote-sized buy took (1000 AIT at 30100 with the
        # 10 bps taker fee), and the slice.
        assert before["book"]["asks"][0] == ["30100", "0.2669"]
        assert before["quote"]["filled_quantity"] == "0.0331"
        assert before["quote"]["reason"] == "quote_quantity_reached"
        assert before["take_profit"]["status"] == "pending_trigger"
        assert before["oco"]["status"] == "open"
    async with (
        serving(database_url, tmp_path) as url,
        client(url, BOB) as bob,
        client(url, ALICE) as alice,
        httpx.AsyncClient(base_url=url + P, headers=carol_headers, timeout=10) as carol,
    ):
        after = await state(alice, ids)
        after["iceberg"] = (await bob.get(f"/orders/{ids['iceberg']}")).json()
        assert after == before
        # Queue order as before the kill: carol's 0.0669 first, then 0.0831 of the slice.
        await placed(alice, order("buy", "0.15", "30100"))
        assert (await carol.get(f"/orders/{ids['carol']}")).json()["status"] == "filled"
        filled = (await bob.get(f"/orders/{ids['iceberg']}")).json()["filled_quantity"]
        assert Decimal(filled) - Decimal(before["iceberg"]["filled_quantity"]) == Decimal("0.0831")
        # The trailing stop triggers at the stop price it kept: a trade at 29600.
        await placed(bob, order("buy", "0.1", "29600"))
        await placed(carol, order("sell", "0.01", "29600"))
        fired = (await alice.get(f"/orders/{ids['trailing']}")).json()
        assert (fired["status"], fired["filled_quantity"]) == ("filled", "0.04")
        # The iceberg and the take-profit are cancelled: the slice leaves the book.
        for owner, name in ((bob, "iceberg"), (alice, "take_profit")):
            cancelled_order = await owner.delete(f"/orders/{ids[name]}")
            assert cancelled_order.status_code == 200, cancelled_order.text
            assert cancelled_order.json()["status"] == "cancelled"
        asks = (await alice.get("/orderbook/BTC_AIT")).json()["asks"]
        assert [price for price, _ in asks if price == "30100"] == []
        # The OCO is cancelled whole.
        cancelled = await alice.delete(f"/order-lists/{ids['oco']}")
        assert cancelled.status_code == 200, cancelled.text
        assert [o["status"] for o in cancelled.json()["orders"]] == ["cancelled"] * 2
