"""Rate limits on the Binance dialect: the same buckets as /api/v1, -1003 with 429."""

from __future__ import annotations

import ccxt
import httpx
import pytest
import trio

from tests.api.binance_client import call, client
from tests.api.conftest import Server
from trading_engine.storage.limits import Limiter, Limits, LocalLimiter


@pytest.fixture
def limiter() -> Limiter:
    return LocalLimiter(Limits(rate=0.01, burst=4))


async def test_an_empty_bucket_is_1003_with_429_and_retry_after(server: Server) -> None:
    key = server.keys["demo_alice"]
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            answers = [
                await http.get("/api/v3/ping", headers={"X-MBX-APIKEY": key}) for _ in range(5)
            ]
            # The same user's bucket as /api/v1's: empty there too.
            v1 = await http.get("/api/v1/trading/symbols", headers={"X-API-Key": key})
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert answers[-1].json()["code"] == -1003
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert v1.status_code == 429


async def test_ccxt_sees_binances_429_as_ddos_protection(server: Server) -> None:
    """ccxt's binance raises ``DDoSProtection`` for any 429 (before it reads the code), as
    it does with Binance itself; -1003 is in the message."""
    with trio.fail_after(30):
        exchange = client(server, None)
        for _ in range(4):
            await call(exchange.fetch_time)
        with pytest.raises(ccxt.DDoSProtection, match="-1003"):
            await call(exchange.fetch_time)
