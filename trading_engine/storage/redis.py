"""Redis fan-out of market data, so that other front-end processes can serve subscribers.

With ``REDIS_URL`` set, the market-data actor hands every message it renders
(book snapshots are not published; deltas, trades, tickers, candles,
order updates, deposits and withdrawals are) to the fan-out actor
(``actors/fanout.py``), which publishes each through ``RedisPublisher`` on the
Redis channel ``te:<channel>`` (``te:book.BTC_AIT``, ``te:trades.BTC_AIT``,
``te:ticker.BTC_AIT``, ``te:candles.BTC_AIT.1m``, ``te:orders.<user_id>``,
``te:balances.<user_id>``), the message being exactly the JSON text a
WebSocket subscriber receives. A front end that subscribes to Redis gets the
same ``seq`` and ``prev_seq`` chain and takes its snapshots from the engine's
REST API.

Publishing runs through the asyncio bridge, a pipeline per batch. If Redis
is slow or down, the outbox fills and messages are dropped (counted in
``dropped``): market data never stalls the engine, and subscribers detect
the gap by ``seq`` and resubscribe.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Final

import redis.asyncio as aioredis
import redis.exceptions

from trading_engine.storage.bridge import Bridge, BridgeClosed, open_bridge
from trading_engine.storage.journal import StorageUnavailable

__all__ = [
    "PREFIX",
    "RedisPublisher",
    "close_client",
    "connect_client",
    "open_redis_publisher",
    "run_script",
]

PREFIX = "te:"

_DRIVER_ERRORS: Final = (redis.exceptions.RedisError, OSError)


class RedisPublisher:
    """A Redis connection on the bridge's loop that publishes batches of messages."""

    def __init__(self, bridge: Bridge, client: Any) -> None:
        self._bridge = bridge
        self._client = client

    @classmethod
    async def connect(cls, bridge: Bridge, url: str) -> RedisPublisher:
        """Raises ``StorageUnavailable`` if Redis does not answer."""
        return cls(bridge, await connect_client(bridge, url))

    async def publish(self, batch: list[tuple[str, str]]) -> None:
        """Publish each ``(channel, text)`` on ``te:<channel>``; raises ``StorageUnavailable``."""
        await _call(self._bridge, "Redis publish failed", _publish, self._client, batch)

    async def close(self) -> None:
        await close_client(self._bridge, self._client)


@asynccontextmanager
async def open_redis_publisher(url: str) -> AsyncIterator[RedisPublisher]:
    """A publisher on Redis at ``url``, on a bridge of its own, closed on exit.

    Raises ``StorageUnavailable`` if Redis does not answer at the start.
    """
    async with open_bridge("redis-bridge") as bridge:
        publisher = await RedisPublisher.connect(bridge, url)
        try:
            yield publisher
        finally:
            await publisher.close()


async def connect_client(bridge: Bridge, url: str) -> Any:
    """A ``redis.asyncio`` client on the bridge's loop; raises ``StorageUnavailable``."""
    return await _call(bridge, f"Redis at {url} is unavailable", _connect, url)


async def run_script(bridge: Bridge, client: Any, script: str, key: str, *args: object) -> Any:
    """Run the Lua ``script`` on ``key`` with ``args``; its reply, or ``StorageUnavailable``."""
    return await _call(bridge, "Redis script failed", _eval, client, script, key, args)


async def close_client(bridge: Bridge, client: Any) -> None:
    """Close a client made by ``connect_client``; errors on the way out are ignored."""
    with contextlib.suppress(BridgeClosed, *_DRIVER_ERRORS):
        await bridge.call(_close, client)


async def _call(
    bridge: Bridge, failed: str, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any
) -> Any:
    """``fn(*args)`` on the bridge's loop, its driver errors as ``StorageUnavailable``."""
    try:
        return await bridge.call(fn, *args)
    except _DRIVER_ERRORS as exc:
        raise StorageUnavailable(f"{failed}: {exc}") from exc


async def _connect(url: str) -> Any:
    client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    await client.ping()
    return client


async def _publish(client: Any, batch: list[tuple[str, str]]) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for channel, text in batch:
            pipe.publish(PREFIX + channel, text)
        await pipe.execute()


async def _eval(client: Any, script: str, key: str, args: tuple[object, ...]) -> Any:
    return await client.eval(script, 1, key, *args)


async def _close(client: Any) -> None:
    await client.aclose()
