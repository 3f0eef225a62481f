"""Binance's usage headers from the shared limits: X-MBX-USED-WEIGHT-1M on every answer,
X-MBX-ORDER-COUNT-10S and -1D on an order's, in process and with the buckets in Redis."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from tests.api.binance_client import call, client
from tests.api.conftest import Server, redis_limiter
from trading_engine.storage.limits import Limiter, Limits, LocalLimiter


@pytest.fixture(params=["in_process", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    limits = Limits(rate=1000, burst=1000)
    if request.param == "in_process":
        yield LocalLimiter(limits)
        return
    async with redis_limiter(request.getfixturevalue("redis_url"), limits) as shared:
        yield shared


def _counted(counts: list[int], start: int = 1) -> bool:
    """One more each time, from ``start``, but back to 1 where a new window began."""
    return counts[0] in (start, 1) and all(b in (a + 1, 1) for a, b in itertools.pairwise(counts))


async def test_every_answer_tells_the_weight_and_an_orders_the_order_counts(
    server: Server,
) -> None:
    key = server.keys["demo_alice"]
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            pings = [
                await http.get("/api/v3/ping", headers={"X-MBX-APIKEY": key}) for _ in range(3)
            ]
            # The same bucket's weight as /api/v1's.
            await http.get("/api/v1/trading/symbols", headers={"X-API-Key": key})
            after_v1 = await http.get("/api/v3/time", headers={"X-MBX-APIKEY": key})
            anonymous = await http.get("/api/v3/time")
        alice = client(server)
        await call(alice.load_markets)
        placed = []
        for price in (90, 91):
            await call(alice.create_order, "BTC/AIT", "limit", "buy", 0.1, price)
            placed.append({k.upper(): v for k, v in alice.last_response_headers.items()})
        await call(alice.private_post_orderlist_oto, {
            "symbol": "BTCAIT", "workingType": "LIMIT", "workingSide": "BUY",
            "workingPrice": "92", "workingQuantity": "0.1", "workingTimeInForce": "GTC",
            "pendingType": "LIMIT_MAKER", "pendingSide": "SELL", "pendingPrice": "95",
            "pendingQuantity": "0.1",
        })  # fmt: skip
        a_list = {k.upper(): v for k, v in alice.last_response_headers.items()}
        await call(alice.fetch_open_orders, "BTC/AIT")
        listed = {k.upper(): v for k, v in alice.last_response_headers.items()}
    weights = [int(a.headers["X-MBX-USED-WEIGHT-1M"]) for a in pings]
    assert _counted(weights)
    assert int(after_v1.headers["X-MBX-USED-WEIGHT-1M"]) in (weights[-1] + 2, 1, 2)
    assert "X-MBX-ORDER-COUNT-10S" not in pings[0].headers
    assert anonymous.headers["X-MBX-USED-WEIGHT-1M"] == "1"  # its address's own bucket
    assert _counted([int(h["X-MBX-ORDER-COUNT-10S"]) for h in placed])
    assert [int(h["X-MBX-ORDER-COUNT-1D"]) for h in placed] == [1, 2]
    assert int(a_list["X-MBX-ORDER-COUNT-1D"]) == 4  # a list counts its members
    assert "X-MBX-ORDER-COUNT-10S" not in listed
    assert int(listed["X-MBX-USED-WEIGHT-1M"]) > int(placed[-1]["X-MBX-USED-WEIGHT-1M"]) or (
        listed["X-MBX-USED-WEIGHT-1M"] == "1"
    )


async def test_a_refused_take_adds_nothing() -> None:
    """A take that found the bucket empty counts no weight and no order."""
    limits = LocalLimiter(Limits(rate=0.001, burst=2))
    answers = [await limits.take_counted("user:x", 1, orders=1) for _ in range(3)]
    assert [wait > 0 for wait, _ in answers] == [False, False, True]
    assert [(u.weight_1m, u.orders_1d) for _, u in answers] in (
        [(1, 1), (2, 2), (2, 2)],
        [(1, 1), (2, 2), (0, 0)],  # a new minute and day began in between
        [(1, 1), (1, 1), (1, 1)],
    )
