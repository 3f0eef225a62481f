"""Numbers past the usual sizes over HTTP: accepted, so handled exactly, never a 500."""

from __future__ import annotations

from tests.api.conftest import ADMIN, Server
from tests.api.test_rest import ALICE, list_perp_and_fund


async def test_orders_holding_more_than_2_62_minor_units_pass_the_funds_check(
    server: Server,
) -> None:
    """Margin orders and amends skip the funds check (margin and the new hold are checked
    instead): it once stood at 2**62 minor units, about 46 billion AIT, and refused more
    as insufficient_funds."""
    key = await list_perp_and_fund(server, "dave", "1e30")
    async with server.client(ADMIN) as admin:
        move = {"user_id": ALICE, "asset": "AIT", "amount": "1e20"}
        assert (await admin.post("/admin/deposits", json=move)).status_code == 200
    # 1e12 AIT for each: 1e20 minor units.
    async with server.client(key) as dave:
        perp = {"symbol": "PERP_AIT", "type": "limit", "side": "buy", "quantity": "0.001"}
        placed = await dave.post("/orders", json=perp | {"price": "1e15"})
        assert placed.status_code == 201, placed.text
    async with server.client(server.keys[ALICE]) as alice:
        spot = {"symbol": "BTC_AIT", "type": "limit", "side": "buy", "quantity": "0.001"}
        resting = await alice.post("/orders", json=spot | {"price": "1e15"})
        assert resting.status_code == 201, resting.text
        amended = await alice.patch(
            f"/orders/{resting.json()['order_id']}", json={"price": "1.05e15"}
        )
        assert amended.status_code == 200, amended.text
        assert amended.json()["price"] == "1050000000000000"
        balances = (await alice.get(f"/users/{ALICE}/balances")).json()["balances"]
    # 0.001 x 1.05e15, and the worst case of the 10 bps taker fee.
    assert balances["AIT"]["held"] == "1051050000000"
