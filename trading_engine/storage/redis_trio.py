"""SPIKE: Redis through coredis, on Trio (anyio), no thread."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import coredis
import coredis.exceptions
import coredis.retry

from trading_engine.storage.journal import StorageUnavailable
from trading_engine.storage.limits import _SCRIPT, REDIS_RETRY, Limits, LocalLimiter

log = logging.getLogger(__name__)

PREFIX = "te:"
_DRIVER_ERRORS: Final = (coredis.exceptions.RedisError, OSError, TimeoutError)


@asynccontextmanager
async def open_client(url: str) -> AsyncIterator[Any]:
    client: Any = coredis.Redis.from_url(
        url, stream_timeout=5, connect_timeout=5,
        retry_policy=coredis.retry.ConstantRetryPolicy(
            (coredis.exceptions.ConnectionError,), retries=1, delay=0
        ),
    )  # fmt: skip
    try:
        async with client:
            await client.ping()
            yield client
    except _DRIVER_ERRORS as exc:
        raise StorageUnavailable(f"Redis at {url} is unavailable: {exc}") from exc


class CoredisPublisher:
    def __init__(self, client: Any) -> None:
        self._client = client

    async def publish(self, batch: list[tuple[str, str]]) -> None:
        import os  # noqa: PLC0415

        if os.environ.get("REDIS_VARIANT") == "coredis-batch":  # SPIKE
            from trading_engine.storage.redis import PUBLISH_SCRIPT  # noqa: PLC0415

            args = [x for channel, text in batch for x in (PREFIX + channel, text)]
            await run_keys(self._client, PUBLISH_SCRIPT, [], args)
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for channel, text in batch:
                    pipe.publish(PREFIX + channel, text)
        except _DRIVER_ERRORS as exc:
            raise StorageUnavailable(f"Redis publish failed: {exc}") from exc


@asynccontextmanager
async def open_coredis_publisher(url: str) -> AsyncIterator[CoredisPublisher]:
    async with open_client(url) as client:
        yield CoredisPublisher(client)


class CoredisLimiter:
    def __init__(
        self, limits: Limits, client: Any, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limits = limits
        self._script = client.register_script(_SCRIPT)
        self._clock = clock
        self._local = LocalLimiter(limits, clock)
        self._retry_at: float | None = None
        self._probing = False

    async def take(self, key: str) -> float:
        if self._retry_at is not None and (self._probing or self._clock() < self._retry_at):
            return self._local.take_now(key)
        self._probing = self._retry_at is not None
        limits = self._limits
        try:
            wait = await self._script(
                keys=["te:rl:" + key], args=[limits.rate, limits.burst, time.time()]
            )
        except _DRIVER_ERRORS as exc:
            if self._retry_at is None:
                log.warning("rate limits kept in this process until Redis answers: %s", exc)
            self._retry_at = self._clock() + REDIS_RETRY
            return self._local.take_now(key)
        finally:
            self._probing = False
        if self._retry_at is not None:
            log.warning("Redis answers again: rate limits are shared again")
            self._retry_at = None
        return float(wait)


@asynccontextmanager
async def open_coredis_limiter(limits: Limits, url: str) -> AsyncIterator[CoredisLimiter]:
    async with open_client(url) as client:
        yield CoredisLimiter(limits, client)


_SCRIPTS: dict[tuple[int, str], Any] = {}


async def run_keys(client: Any, script: str, keys: list[str], args: list[object]) -> Any:
    registered = _SCRIPTS.get((id(client), script))
    if registered is None:
        registered = _SCRIPTS[id(client), script] = client.register_script(script)
    try:
        return await registered(keys=keys, args=args)
    except _DRIVER_ERRORS as exc:
        raise StorageUnavailable(f"Redis script failed: {exc}") from exc
