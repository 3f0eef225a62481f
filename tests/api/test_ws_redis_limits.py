"""WebSocket messages under rate limits kept in a real Redis: the buckets HTTP uses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from trio_websocket import open_websocket_url

from tests.api.conftest import Server, redis_limiter
from tests.api.test_redis_limits import _bucket_names
from tests.api.test_ws import _ws_url, receive
from trading_engine.storage.limits import Limiter, Limits

ALICE = "demo_alice"


@pytest.fixture
async def limiter(redis_url: str) -> AsyncIterator[Limiter]:
    async with redis_limiter(redis_url, Limits(rate=0.5, burst=5)) as limiter:
        yield limiter


async def test_a_users_messages_and_requests_share_one_bucket_in_redis(
    server: Server, redis_url: str
) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        await ws.send_message(json.dumps({"op": "auth", "api_key": server.keys[ALICE]}))
        assert (await receive(ws))["type"] == "authenticated"
        async with server.client(server.keys[ALICE]) as alice:
            assert (await alice.get(f"/users/{ALICE}/balances")).status_code == 200
            for _ in range(5):  # the four tokens left, and one more
                await ws.send_message(json.dumps({"op": "ping"}))
            answers = [await receive(ws) for _ in range(5)]
            assert (await alice.get(f"/users/{ALICE}/balances")).status_code == 429
    assert [a["type"] for a in answers] == ["pong"] * 4 + ["error"]
    assert answers[-1]["error"]["code"] == "rate_limited"
    names = await _bucket_names(redis_url)
    assert sorted(names) == ["te:rl:ip:127.0.0.1", "te:rl:user:demo_alice"]
    assert not any(server.keys[ALICE] in name for name in names)
