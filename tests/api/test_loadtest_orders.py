"""``trading-engine loadtest``'s order-entry modes against a real server: every order it
counts is one the engine took, and every latency it times is real."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from tests.api.conftest import ADMIN, Server
from tests.api.test_rest import ALICE, BOB
from trading_engine.api.auth import hash_key
from trading_engine.benchmarks.accounts import markets
from trading_engine.benchmarks.batches import batch_orders
from trading_engine.benchmarks.disconnect import cancel_on_disconnect
from trading_engine.benchmarks.loadtest import order_entry
from trading_engine.benchmarks.orderflow import Market, OrderFlow
from trading_engine.benchmarks.users import _keys
from trading_engine.benchmarks.ws_orders import ws_orders
from trading_engine.core.ids import UserId


@pytest.fixture
async def demo_markets(server: Server) -> AsyncIterator[list[Market]]:
    async with server.client(ADMIN) as admin:
        yield await markets(admin, ["BTC_AIT", "ETH_AIT"])


async def _placed(server: Server) -> int:
    """Orders the engine holds, open or finished, of the demo users."""
    count = 0
    for user in (UserId(ALICE), UserId(BOB)):
        count += len(await server.engine.user_orders(user, limit=100_000))
    return count


def _flows(markets: list[Market]) -> list[OrderFlow]:
    return [OrderFlow.seeded(markets, seed) for seed in (1, 2)]


async def _ws_orders(
    server: Server, markets: list[Market], *, rate: float, max_resting: int, batch_size: int = 1
) -> dict[str, Any]:
    """A second of orders over two connections, alice's and bob's."""
    keys = [server.keys[ALICE], server.keys[BOB]]
    with trio.fail_after(20):
        return await ws_orders(
            server.url, keys, _flows(markets), duration=1.0, in_flight=8, rate=rate,
            max_resting=max_resting, batch_size=batch_size,
        )  # fmt: skip


async def test_closed_loop_counts_every_order_the_engine_took_and_cancels_its_oldest(
    server: Server, demo_markets: list[Market]
) -> None:
    result = await _ws_orders(server, demo_markets, rate=0, max_resting=3)
    assert result["loop"] == "closed"
    assert result["orders"] == result["statuses"]["order 201"] == await _placed(server)
    assert result["orders"] > 20
    assert result["unanswered"] == 0
    assert sum(result["order_statuses"].values()) == result["orders"]
    assert result["cancels"] > 0  # three resting orders a connection at most
    cancels = sum(v for k, v in result["statuses"].items() if k.startswith("order.cancel "))
    assert cancels == result["cancels"]
    assert result["requests"] == result["orders"] + result["cancels"]
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["orders_per_sec"] > 0


async def test_open_loop_sends_the_rate_by_the_clock_and_times_each_answer(
    server: Server, demo_markets: list[Market]
) -> None:
    result = await _ws_orders(server, demo_markets, rate=150, max_resting=1_000)
    assert result["loop"] == "open"
    assert result["orders"] == result["statuses"]["order 201"] == 150 == await _placed(server)
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["send_lag_max_ms"] >= 0
    assert result["seconds"] >= 0.99  # the last order is sent at 149/150 s


async def test_ws_batches_count_each_order_and_pull_the_book_with_cancel_all(
    server: Server, demo_markets: list[Market]
) -> None:
    result = await _ws_orders(server, demo_markets, rate=0, max_resting=30, batch_size=10)
    assert result["mode"] == "ws-batch"
    batches = result["statuses"]["orders.place_batch 200"]
    assert result["orders"] == 10 * batches == result["statuses"]["order 201"]
    assert result["orders"] == await _placed(server)
    assert result["statuses"]["orders.cancel_all 200"] == result["cancels"] > 0
    assert result["cancelled_by_cancel_all"] > 0
    assert result["requests"] == batches + result["cancels"]
    assert 0 < result["p50_ms"] <= result["max_ms"]


async def test_batches_place_every_order_of_every_batch(
    server: Server, demo_markets: list[Market]
) -> None:
    keys = [server.keys[ALICE], server.keys[BOB]]
    with trio.fail_after(20):
        result = await batch_orders(
            server.url, keys, _flows(demo_markets), duration=0.5, batch_size=20, max_resting=30
        )
    assert result["orders"] == 20 * result["batches"] == result["statuses"]["order 201"]
    assert result["orders"] == await _placed(server)
    assert result["statuses"].get("cancel_all 200", 0) > 0  # over 30 resting: pulled
    assert result["cancelled"] > 0
    assert 0 < result["batch_p50_ms"] <= result["batch_max_ms"]


@pytest.mark.parametrize("cut", [True, False])
async def test_cancel_on_disconnect_times_the_cancels_of_a_dropped_connection(
    server: Server, demo_markets: list[Market], cut: bool
) -> None:
    with trio.fail_after(20):
        result = await cancel_on_disconnect(
            server.url, server.keys[ALICE], demo_markets[0], orders=10, cut=cut, wait=5
        )
    assert result["closed_by"] == ("tcp reset" if cut else "close frame")
    assert result["acknowledged"]["cancel_on_disconnect"] is True
    assert (result["orders"], result["cancelled"], result["all_cancelled"]) == (10, 10, True)
    assert 0 < result["close_to_first_cancel_ms"] <= result["close_to_last_cancel_ms"]
    _, still_open = await server.engine.open_orders(UserId(ALICE))
    assert still_open == []


async def test_each_mode_runs_on_fresh_users_funded_in_every_asset_it_trades(
    server: Server,
) -> None:
    with trio.fail_after(20):
        result = await order_entry(
            server.url, ADMIN, mode="ws", symbols=["BTC_AIT", "ETH_AIT"], users=2,
            duration=0.3, rate=0, connections=2, in_flight=4, batch_size=1, max_resting=50,
            orders=0, cut=True, seed=1,
        )  # fmt: skip
    assert result["orders"] == result["statuses"]["order 201"] > 0


async def test_users_prints_keys_of_users_funded_in_the_symbols_assets(server: Server) -> None:
    with trio.fail_after(20):
        keys = await _keys(server.url, ADMIN, 3, "BTC_AIT")
    assert len(set(keys)) == 3
    user = await server.engine.user_by_key(hash_key(keys[2]))
    async with server.client(keys[2]) as client:
        balances = (await client.get(f"/users/{user}/balances")).json()["balances"]
    assert balances["AIT"]["available"] == "100000000"
    assert balances["BTC"]["available"] == "100000"
