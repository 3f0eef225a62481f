"""``allOrders`` and ``myTrades`` reach back past what the engine keeps, through the read
tables, over real HTTP and PostgreSQL, raw and through the real ccxt."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.api.binance_client import call, client, limit_order, send, signed
from tests.api.conftest import ADMIN, Server
from trading_engine.actors.risk import RiskConfig
from trading_engine.actors.risk import state as risk_state
from trading_engine.config import EngineConfig
from trading_engine.core.ids import OrderId, UserId
from trading_engine.serve import demo_secret

_DAY_MS = 86_400_000


@pytest.fixture
def engine_config() -> EngineConfig:
    """The engine keeps its last 2 finished orders: older ones only the read tables have."""
    return EngineConfig(expire_every=float("inf"), risk=RiskConfig(keep_finished=2))


async def _raw(server: Server, user: str, path: str, **params: Any) -> tuple[int, Any]:
    query = signed(params, demo_secret(ADMIN, user))
    response = await send(server, "GET", path, query=query, key=server.keys[user])
    return response.status_code, response.json()


async def _ok(server: Server, path: str, **params: Any) -> list[dict[str, Any]]:
    status, body = await _raw(server, "demo_alice", path, symbol="BTCAIT", **params)
    assert status == 200, body
    assert isinstance(body, list)
    return body


async def _history(server: Server, user: str, orders: int, fills: int) -> None:
    """Wait until the read tables hold ``user``'s ``orders`` orders and ``fills`` fills
    (they trail the journal by about 0.1 s)."""
    async with server.client(ADMIN) as admin:
        with trio.fail_after(10):
            while True:
                held = (await admin.get(f"/users/{user}/history/orders")).json()["orders"]
                done = (await admin.get(f"/users/{user}/history/trades")).json()["trades"]
                if len(held) == orders and len(done) == fills:
                    return
                await trio.sleep(0.05)


async def _trade_four_times(server: Server) -> None:
    """Bob sells 0.1 at 101..104; Alice buys each with an order of her own (all filled),
    then leaves one buy open at 100."""
    for price in ("101", "102", "103", "104"):
        await limit_order(server, "demo_bob", "sell", price)
    for n in range(4):
        await limit_order(server, "demo_alice", "buy", "104", client_order_id=f"buy-{n}")
    await limit_order(server, "demo_alice", "buy", "100")
    await _history(server, "demo_alice", orders=5, fills=4)


async def test_all_orders_reach_back_past_the_orders_the_engine_keeps(server: Server) -> None:
    await _trade_four_times(server)
    kept = await server.engine.user_orders(UserId("demo_alice"), limit=100)
    assert len(kept) < 5  # the engine has forgotten some
    every = await _ok(server, "allOrders")
    ids = [o["orderId"] for o in every]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    assert [o["status"] for o in every] == ["FILLED"] * 4 + ["NEW"]
    assert [o["price"] for o in every] == ["104.00000000"] * 4 + ["100.00000000"]
    assert [o["executedQty"] for o in every] == ["0.10000000"] * 4 + ["0.00000000"]
    assert [o["cummulativeQuoteQty"] for o in every[:4]] == [
        "10.10000000", "10.20000000", "10.30000000", "10.40000000",
    ]  # fmt: skip

    # GET order reads the database for what the engine has forgotten, as Binance's.
    assert await server.engine.order(OrderId(ids[0])) is None
    status, oldest = await _raw(server, "demo_alice", "order", symbol="BTCAIT", orderId=ids[0])
    assert (status, oldest) == (200, every[0])
    status, body = await _raw(server, "demo_bob", "order", symbol="BTCAIT", orderId=ids[0])
    assert (status, body["code"]) == (400, -2013)  # another user's
    by_client_id = {"origClientOrderId": "buy-0"}
    status, oldest = await _raw(server, "demo_alice", "order", symbol="BTCAIT", **by_client_id)
    assert (status, oldest) == (200, every[0])
    status, body = await _raw(server, "demo_bob", "order", symbol="BTCAIT", **by_client_id)
    assert (status, body["code"]) == (400, -2013)

    assert await _ok(server, "allOrders", orderId=ids[1]) == every[1:]
    assert await _ok(server, "allOrders", orderId=ids[1], limit=2) == every[1:3]
    assert await _ok(server, "allOrders", limit=2) == every[-2:]
    first, last = every[0]["time"], every[-1]["time"]
    assert await _ok(server, "allOrders", startTime=first, limit=3) == every[:3]
    assert await _ok(server, "allOrders", endTime=last, limit=3) == every[-3:]
    assert await _ok(server, "allOrders", startTime=last + 1) == []
    assert await _ok(server, "allOrders", startTime=first, endTime=first) == [
        o for o in every if o["time"] == first
    ]
    status, body = await _raw(
        server, "demo_alice", "allOrders", symbol="BTCAIT", startTime=first,
        endTime=first + _DAY_MS + 1,
    )  # fmt: skip
    assert (status, body["code"]) == (400, -1127)

    with trio.fail_after(30):
        alice = client(server)
        await call(alice.load_markets)
        fetched = await call(alice.fetch_orders, "BTC/AIT", first)
        closed = await call(alice.fetch_closed_orders, "BTC/AIT", first)
        fetched_oldest = await call(alice.fetch_order, str(ids[0]), "BTC/AIT")
    assert [o["id"] for o in fetched] == [str(i) for i in ids]
    assert [o["id"] for o in closed] == [str(i) for i in ids[:4]]
    assert [o["average"] for o in closed] == [101, 102, 103, 104]
    assert (fetched_oldest["status"], fetched_oldest["filled"]) == ("closed", 0.1)


async def test_my_trades_reach_back_past_the_fills_the_engine_keeps(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(risk_state, "_KEEP_USER_TRADES", 2)
    await _trade_four_times(server)
    every = await _ok(server, "myTrades")
    ids = [t["id"] for t in every]
    assert len(ids) == 4
    assert ids == sorted(ids)
    assert [t["price"] for t in every] == ["101.00000000", "102.00000000", "103.00000000",
                                           "104.00000000"]  # fmt: skip
    assert all(t["isBuyer"] and not t["isMaker"] for t in every)
    assert [t["commission"] for t in every] == ["0.01010000", "0.01020000", "0.01030000",
                                                "0.01040000"]  # fmt: skip

    assert await _ok(server, "myTrades", fromId=ids[1]) == every[1:]
    assert await _ok(server, "myTrades", fromId=ids[1], limit=1) == every[1:2]
    assert await _ok(server, "myTrades", limit=2) == every[-2:]
    assert await _ok(server, "myTrades", orderId=every[0]["orderId"]) == every[:1]
    first, last = every[0]["time"], every[-1]["time"]
    assert await _ok(server, "myTrades", startTime=first, limit=2) == every[:2]
    assert await _ok(server, "myTrades", endTime=last, limit=3) == every[-3:]
    assert await _ok(server, "myTrades", startTime=first, endTime=last) == every
    for bad, code in (
        ({"startTime": first, "endTime": first + _DAY_MS + 1}, -1127),
        ({"startTime": first, "fromId": ids[0]}, -1128),
        ({"endTime": last, "orderId": every[0]["orderId"]}, -1128),
    ):
        status, body = await _raw(server, "demo_alice", "myTrades", symbol="BTCAIT", **bad)
        assert (status, body["code"]) == (400, code), bad

    with trio.fail_after(30):
        alice = client(server)
        await call(alice.load_markets)
        trades = await call(alice.fetch_my_trades, "BTC/AIT", first)
    assert [t["id"] for t in trades] == [str(i) for i in ids]
    assert [t["price"] for t in trades] == [101, 102, 103, 104]
