"""Rate limits: token buckets per key, 429 with Retry-After."""

from __future__ import annotations

import pytest

from tests.api.conftest import Server
from trading_engine.storage.limits import Limiter, Limits, LocalLimiter


@pytest.fixture
def limiter() -> Limiter:
    return LocalLimiter(Limits(rate=1.0, burst=3))


async def test_a_key_past_its_burst_gets_429_with_retry_after(server: Server) -> None:
    async with server.client(server.keys["demo_alice"]) as alice:
        codes = [(await alice.get("/users/demo_alice/balances")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = await alice.get("/users/demo_alice/balances")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
        assert limited.json()["error"]["code"] == "rate_limited"
    async with server.client(server.keys["demo_bob"]) as bob:
        assert (await bob.get("/users/demo_bob/balances")).status_code == 200  # its own bucket


def test_the_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    limiter = LocalLimiter(Limits(rate=2.0, burst=2), clock=lambda: now[0])
    assert [limiter.take_now("k") for _ in range(3)] == [0.0, 0.0, 0.5]
    now[0] += 0.5  # one token back
    assert limiter.take_now("k") == 0.0
    assert limiter.take_now("k") == 0.5


async def test_unknown_keys_share_their_client_address_bucket(server: Server) -> None:
    """A random key per request, each with a bucket of its own, would never be limited."""
    codes = []
    for attempt in range(5):
        async with server.client(f"not-a-key-{attempt}") as guesser:
            codes.append((await guesser.get("/users/demo_alice/balances")).status_code)
    assert codes == [401, 401, 401, 429, 429]
    async with server.client(server.keys["demo_alice"]) as alice:
        assert (await alice.get("/users/demo_alice/balances")).status_code == 200  # its own


def test_buckets_of_idle_keys_are_forgotten_even_if_no_request_is_ever_limited() -> None:
    """One request from each of many addresses: the buckets must not grow without end."""
    now = [100.0]
    limiter = LocalLimiter(Limits(rate=1.0, burst=2), clock=lambda: now[0])
    for i in range(100_000):
        assert limiter.take_now(f"ip:{i}") == 0.0
    now[0] += 61
    assert limiter.take_now("ip:new") == 0.0
    assert len(limiter._buckets) == 1
