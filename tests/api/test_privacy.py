"""What a user may learn of other users: nothing of their ids, orders, counterparties,
fees or balances."""

from __future__ import annotations

from tests.api.conftest import Server
from tests.api.test_history import trade_a_little


async def test_the_public_tape_shows_what_traded_not_who_or_with_which_orders(
    server: Server,
) -> None:
    await trade_a_little(server)  # demo_alice took two of demo_bob's asks
    async with server.client() as anyone:
        tape = await anyone.get("/trades", params={"symbol": "BTC_AIT"})
    assert tape.status_code == 200
    trades = tape.json()["trades"]
    assert len(trades) == 2
    for trade in trades:
        assert set(trade) == {"trade_id", "symbol", "price", "quantity", "side", "time"}
        assert trade["side"] == "buy"
    assert [t["price"] for t in trades] == ["30010", "30000"]  # newest first


async def test_a_users_fills_show_their_own_side_never_the_counterpartys(server: Server) -> None:
    """Every view of a user's fills (the order's answer, the order, the user's trades)
    shows the user's order, role, side and fee: not the other side's order or fee."""
    async with server.client(server.keys["demo_bob"]) as bob:
        rest = await bob.post(
            "/orders",
            json={"symbol": "BTC_AIT", "side": "sell", "type": "limit", "quantity": "0.5",
                  "price": "30000"},
        )  # fmt: skip
    bob_order = rest.json()["order_id"]
    async with server.client(server.keys["demo_alice"]) as alice:
        taken = await alice.post(
            "/orders",
            json={"symbol": "BTC_AIT", "side": "buy", "type": "limit", "quantity": "0.2",
                  "price": "30000"},
        )  # fmt: skip
        order_id = taken.json()["order_id"]
        shown = (await alice.get(f"/orders/{order_id}")).json()
        mine = (await alice.get("/users/demo_alice/trades")).json()["trades"]
    fills = [taken.json()["trades"][0], shown["trades"][0], mine[0]]
    for fill in fills:
        assert set(fill) == {"trade_id", "symbol", "order_id", "role", "side", "price",
                             "quantity", "fee", "time"}  # fmt: skip
        assert (fill["order_id"], fill["role"], fill["side"]) == (order_id, "taker", "buy")
        assert fill["fee"] == "6"  # her 10 bps on 6000 AIT; bob's rebate is his own
        assert bob_order not in fill.values()
