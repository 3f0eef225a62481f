"""Redis fan-out of market data, so that other front-end processes can serve subscribers.

With ``REDIS_URL`` set, the market-data actor hands every message it renders
(book snapshots are not published; deltas, trades, tickers, candles,
order updates, deposits and withdrawals are) to the fan-out actor
(``actors/fanout.py``), which publishes each through ``RedisPublisher`` on the
Redis channel ``te:<channel>`` (``te:book.BTC_AIT``, ``te:trades.BTC_AIT``,
``te:ticker.BTC_AIT``, ``te:candles.BTC_AIT.1m``, ``te:orders.<user_id>``,
``te:balances.<user_id>``), the message being exactly the JSON text a
WebSocket subscriber receives. A gateway that subscribes to Redis
(``gateway/feed.py``) gets the same ``seq`` and ``prev_seq`` chain and takes
its snapshots from the engine (``Engine.market_snapshot``).

Publishing runs through the asyncio bridge, one call per batch: a Lua script
that publishes every message of the batch, one command where a pipeline of
``PUBLISH`` costs redis-py about six times the CPU per message (measured in
``docs/decisions/0020-redis-takes-gathered.md``). If Redis is slow or down,
the outbox fills and messages are dropped (counted in ``dropped``): market
data never stalls the engine, and subscribers detect the gap by ``seq`` and
resubscribe.

The asyncio bridge stays, rather than a Trio-native client (coredis): one
round trip carries a whole batch of messages or of rate-limit takes, and a
coredis call cost the Trio thread several times what a bridge round trip
does (the same record).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from trading_engine.storage.bridge import Bridge, BridgeClosed, open_bridge
from trading_engine.storage.journal import StorageUnavailable

__all__ = [
    "PREFIX",
    "RedisPublisher",
    "close_client",
    "connect_client",
    "open_redis_publisher",
    "redis_call",
    "run_script",
    "shown_url",
]

PREFIX = "te:"

_DRIVER_ERRORS: Final = (redis.exceptions.RedisError, OSError)

_PUBLISH: Final = "for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end"
"""Publish ``ARGV`` taken as channel, message, channel, message..."""


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
        """Publish each ``(channel, text)`` on ``te:<channel>``, in order; raises
        ``StorageUnavailable``."""
        args = [part for channel, text in batch for part in (PREFIX + channel, text)]
        await redis_call(
            self._bridge, "Redis publish failed", _eval, self._client, _PUBLISH, [], args
        )

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
    """A ``redis.asyncio`` client on the bridge's loop; raises ``StorageUnavailable``.

    It never retries: a command (or a subscription's read) on a broken connection
    raises, so that its caller sees the break, as a gateway's feed must (messages may
    have been lost: it drops its subscribers), rather than reconnecting silently."""
    return await redis_call(bridge, f"Redis at {shown_url(url)} is unavailable", _connect, url)


def shown_url(url: str) -> str:
    """``url`` as messages and logs may show it: its password, if any, masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}"))


async def run_script(
    bridge: Bridge, client: Any, script: str, keys: list[str], *args: object
) -> Any:
    """Run the Lua ``script`` on ``keys`` with ``args`` (``EVALSHA``, loading it if Redis
    does not have it); its reply, or ``StorageUnavailable``."""
    return await redis_call(bridge, "Redis script failed", _eval, client, script, keys, args)


async def close_client(bridge: Bridge, client: Any) -> None:
    """Close a client made by ``connect_client``; errors on the way out are ignored."""
    with contextlib.suppress(BridgeClosed, *_DRIVER_ERRORS):
        await bridge.call(_close, client)


async def redis_call(
    bridge: Bridge, failed: str, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any
) -> Any:
    """``fn(*args)`` on the bridge's loop; Redis's driver errors raise
    ``StorageUnavailable``, its message ``failed`` and the error."""
    try:
        return await bridge.call(fn, *args)
    except _DRIVER_ERRORS as exc:
        raise StorageUnavailable(f"{failed}: {exc}") from exc


async def _connect(url: str) -> Any:
    client = aioredis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
    )
    await client.ping()
    return client


async def _eval(client: Any, script: str, keys: list[str], args: Sequence[object]) -> Any:
    # The script object only hashes the text; it sends EVALSHA, and the text once Redis
    # answers NOSCRIPT (after a restart).
    return await client.register_script(script)(keys=keys, args=list(args))


async def _close(client: Any) -> None:
    await client.aclose()
