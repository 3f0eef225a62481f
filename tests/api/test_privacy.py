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
