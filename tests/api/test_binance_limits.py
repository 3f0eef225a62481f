"""Rate limits on the Binance dialect: the same buckets as /api/v1, -1003 with 429."""

from __future__ import annotations

import ccxt
import httpx
import pytest
import trio

from tests.api.binance_client import call, client, send, signed
from tests.api.conftest import ADMIN, Server
from trading_engine.config import EngineConfig
from trading_engine.core.ids import UserId
from trading_engine.serve import demo_secret
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


class TestAFullInbox:
    @pytest.fixture
    def limiter(self) -> None:
        """No rate limit: only the inbox refuses."""

    @pytest.fixture
    def engine_config(self) -> EngineConfig:
        """A symbol inbox of one batch, which a burst of orders overflows."""
        return EngineConfig(expire_every=float("inf"), symbol_inbox_size=1)

    async def test_an_order_to_a_busy_symbol_is_1015_with_429_and_retry_after(
        self, server: Server
    ) -> None:
        key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
        answers: list[httpx.Response] = []

        order = {"symbol": "BTCAIT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": "0.01", "price": "100"}  # fmt: skip

        async def place() -> None:
            answers.append(await send(server, "POST", "order", body=signed(order, secret),
                                      key=key))  # fmt: skip

        with trio.fail_after(60):
            for _ in range(20):
                async with trio.open_nursery() as nursery:
                    for _ in range(40):
                        nursery.start_soon(place)
                if any(a.status_code == 429 for a in answers):
                    break
        busy = [a for a in answers if a.status_code != 200]
        assert busy, "no order met a full inbox"
        for answer in busy:
            assert answer.status_code == 429, answer.text
            assert answer.json() == {"code": -1015, "msg": "Too many new orders."}
            assert answer.headers["Retry-After"] == "1"
        placed = sum(a.status_code == 200 for a in answers)
        assert len(await server.engine.user_orders(UserId("demo_alice"), limit=10_000)) == placed
