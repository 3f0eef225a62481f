"""Numbers past the usual sizes over HTTP: accepted, so handled exactly, never a 500.

Python's default decimal context holds 28 digits: arithmetic in it rounds beyond
them, and ``quantize`` raises there. The API accepts prices, quantities and amounts
of up to 20 digits before the point and 18 after, and sums and averages of them run
longer still, so whatever it shows of them must not go through that context.
"""

from __future__ import annotations

import trio

from tests.api.conftest import ADMIN, Server
from tests.api.test_history import caught_up
from tests.api.test_rest import ALICE, BOB, list_perp_and_fund

BIG = "9999999999999999999.99"
"""A price of 21 digits: its average, to 10 decimal places, has 29."""
AMOUNT = "99999999999999999999.12345678"
"""28 digits, to the satoshi: the largest whole part a request may have."""
MOST = "99999999999999999999"
"""The largest whole amount a request may carry."""


async def test_orders_holding_more_than_2_62_minor_units_pass_the_funds_check(
    server: Server,
) -> None:
    """Margin orders and amends skip the funds check (margin and the new hold are checked
    instead): it once stood at 2**62 minor units, about 46 billion AIT, and refused more
    as insufficient_funds."""
    key = await list_perp_and_fund(server, "dave", MOST)
    async with server.client(ADMIN) as admin:
        move = {"user_id": ALICE, "asset": "AIT", "amount": MOST}
        assert (await admin.post("/admin/deposits", json=move)).status_code == 200
    # 1e12 AIT for each: 1e20 minor units.
    async with server.client(key) as dave:
        perp = {"symbol": "PERP_AIT", "type": "limit", "side": "buy", "quantity": "0.001"}
        placed = await dave.post("/orders", json=perp | {"price": "1000000000000000"})
        assert placed.status_code == 201, placed.text
    async with server.client(server.keys[ALICE]) as alice:
        spot = {"symbol": "BTC_AIT", "type": "limit", "side": "buy", "quantity": "0.001"}
        resting = await alice.post("/orders", json=spot | {"price": "1000000000000000"})
        assert resting.status_code == 201, resting.text
        amended = await alice.patch(
            f"/orders/{resting.json()['order_id']}", json={"price": "1050000000000000"}
        )
        assert amended.status_code == 200, amended.text
        assert amended.json()["price"] == "1050000000000000"
        balances = (await alice.get(f"/users/{ALICE}/balances")).json()["balances"]
    # 0.001 x 1.05e15, and the worst case of the 10 bps taker fee.
    assert balances["AIT"]["held"] == "1051050000000"


async def test_a_fill_at_a_21_digit_price_shows_its_average_everywhere(server: Server) -> None:
    async with server.client(ADMIN) as admin:
        listed = await admin.post(
            "/admin/symbols",
            json={"symbol": "BIG_AIT", "base_asset": "BIG", "quote_asset": "AIT",
                  "tick_size": "0.01", "lot_size": "0.001", "price_band_pct": "0"},
        )  # fmt: skip
        assert listed.status_code == 201, listed.text
        for user, asset in ((BOB, "BIG"), (ALICE, "AIT")):
            move = {"user_id": user, "asset": asset, "amount": MOST}
            assert (await admin.post("/admin/deposits", json=move)).status_code == 200
    big = {"symbol": "BIG_AIT", "type": "limit", "quantity": "0.001", "price": BIG}
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        assert (await bob.post("/orders", json=big | {"side": "sell"})).status_code == 201
        taken = await alice.post("/orders", json=big | {"side": "buy"})
        assert taken.status_code == 201, taken.text
        order_id = taken.json()["order_id"]
        assert (taken.json()["status"], taken.json()["average_price"]) == ("filled", BIG)
        shown = await alice.get(f"/orders/{order_id}")
        assert (shown.status_code, shown.json()["average_price"]) == (200, BIG)
        listed_orders = await alice.get(f"/users/{ALICE}/orders", params={"status": "all"})
        assert listed_orders.status_code == 200, listed_orders.text
        await caught_up(server, ALICE)
        history = await alice.get(f"/users/{ALICE}/history/orders")
        assert history.status_code == 200, history.text
        assert history.json()["orders"][0]["average_price"] == BIG
        balances = (await alice.get(f"/users/{ALICE}/balances")).json()["balances"]
    # MOST and the demo funds of 1,000,000 less 0.001 x BIG, with no fee on this symbol.
    assert balances["AIT"]["available"] == "99990000000000999999.00001"


async def test_a_28_digit_deposit_is_credited_and_shown_to_the_last_unit(server: Server) -> None:
    async with server.client(ADMIN) as admin:
        move = {"user_id": ALICE, "asset": "AIT", "amount": AMOUNT}
        deposited = await admin.post("/admin/deposits", json=move)
        assert deposited.status_code == 200, deposited.text
        # The demo funds of 1,000,000 AIT are there too.
        assert deposited.json()["available"] == "100000000000000999999.12345678"
        back = await admin.post("/admin/withdrawals", json=move)
        assert back.json()["available"] == "1000000"


async def test_a_margin_position_at_a_22_digit_price_shows_its_entry_price(
    server: Server,
) -> None:
    price = "99999999999999999999.99"
    key = await list_perp_and_fund(server, "dave", MOST)
    async with server.client(ADMIN) as admin:
        move = {"user_id": BOB, "asset": "AIT", "amount": MOST}
        assert (await admin.post("/admin/deposits", json=move)).status_code == 200
    perp = {"symbol": "PERP_AIT", "type": "limit", "quantity": "0.001", "price": price}
    async with server.client(server.keys[BOB]) as bob, server.client(key) as dave:
        assert (await bob.post("/orders", json=perp | {"side": "sell"})).status_code == 201
        bought = await dave.post("/orders", json=perp | {"side": "buy"})
        assert bought.status_code == 201, bought.text
        with trio.fail_after(5):
            while True:  # the position follows the trade through the risk actor
                profile = await dave.get("/users/dave/risk-profile")
                assert profile.status_code == 200, profile.text
                positions = profile.json()["margin"]["positions"]
                if "PERP_AIT" in positions and positions["PERP_AIT"]["mark_price"]:
                    break
                await trio.sleep(0.01)
    position = positions["PERP_AIT"]
    assert (position["quantity"], position["entry_price"], position["mark_price"]) == (
        "0.001",
        price,
        price,
    )
    assert position["liquidation_price"] is None  # collateral far beyond the position
