"""Rate limits in a real Redis, behind the real server: what Redis holds of them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.api.binance_client import send, signed
from tests.api.conftest import ADMIN, Server, redis_limiter
from trading_engine.serve import demo_secret
from trading_engine.storage.bridge import open_bridge
from trading_engine.storage.limits import Limiter, Limits


@pytest.fixture
async def limiter(redis_url: str) -> AsyncIterator[Limiter]:
    async with redis_limiter(redis_url, Limits(rate=100, burst=100)) as limiter:
        yield limiter


_COUNTER = re.compile(r"(?P<bucket>.*):[123]:[0-9]+")
"""A bucket's usage counter (weight a minute, orders in 10 s and a day)."""


async def _bucket_names(url: str) -> list[str]:
    """The buckets in Redis; their usage counters (``_COUNTER``) left out."""
    return [name for name in await _redis_names(url) if not _COUNTER.fullmatch(name)]


async def _redis_names(url: str) -> list[str]:
    async def scan() -> list[str]:
        client = aioredis.Redis.from_url(url)
        try:
            return [key.decode() async for key in client.scan_iter("te:rl:*")]
        finally:
            await client.aclose()

    async with open_bridge("scan") as bridge:
        return await bridge.call(scan)


async def test_redis_bucket_names_hold_no_api_key(server: Server, redis_url: str) -> None:
    """Anyone who can read Redis (``SCAN te:rl:*``) must not learn a key from it."""
    alice = server.keys["demo_alice"]
    for key in (alice, ADMIN, "te_not_a_key_at_all"):
        async with server.client(key) as client:
            await client.get("/users/demo_alice/balances")
    names = await _redis_names(redis_url)
    buckets = ["te:rl:admin", "te:rl:ip:127.0.0.1", "te:rl:user:demo_alice"]
    assert sorted(await _bucket_names(redis_url)) == buckets
    counters = {m["bucket"] for name in names if (m := _COUNTER.fullmatch(name))}
    assert counters == set(buckets)  # each bucket's usage counters, named after it
    for key in (alice, ADMIN, "te_not_a_key_at_all"):
        assert not any(key in name for name in names)


class TestABatchInRedis:
    @pytest.fixture
    async def limiter(self, redis_url: str) -> AsyncIterator[Limiter]:
        async with redis_limiter(redis_url, Limits(rate=0.001, burst=8)) as limiter:
            yield limiter

    async def test_a_refused_batch_takes_no_token_from_the_bucket_in_redis(
        self, server: Server
    ) -> None:
        body = {"symbol": "BTC_AIT", "side": "buy", "type": "limit", "price": "29000"}
        async with server.client(server.keys["demo_alice"]) as alice:
            nine = {"orders": [body | {"quantity": "0.1"}] * 9}
            assert (await alice.post("/orders/batch", json=nine)).status_code == 429
            seven = {"orders": [body | {"quantity": "0.1"}] * 7}
            placed = await alice.post("/orders/batch", json=seven)
            assert placed.status_code == 200, placed.text


async def test_the_binance_dialects_buckets_hold_no_key_or_secret(
    server: Server, redis_url: str
) -> None:
    alice, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    for key in (alice, "te_not_a_key_at_all"):
        await send(server, "GET", "account", query=signed({}, secret), key=key)
    names = await _redis_names(redis_url)
    assert sorted(await _bucket_names(redis_url)) == ["te:rl:ip:127.0.0.1", "te:rl:user:demo_alice"]
    for text in (alice, "te_not_a_key_at_all", secret):
        assert not any(text in name for name in names)
