"""A real server on an ephemeral port: the engine on PostgreSQL, Hypercorn, real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import hypercorn.trio
import pytest
import trio

from trading_engine.actors.engine import Engine, open_engine
from trading_engine.api.app import create_app
from trading_engine.api.http_server import server_config
from trading_engine.api.secrets import SecretBox
from trading_engine.config import EngineConfig
from trading_engine.serve import setup_demo
from trading_engine.storage.bridge import open_bridge
from trading_engine.storage.limits import Limiter, Limits, connect_redis_limiter
from trading_engine.storage.postgres import open_postgres_journal

ADMIN = "test-admin-key"


@attrs.frozen
class Server:
    url: str
    engine: Engine
    keys: dict[str, str]

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"X-API-Key": key} if key else {}
        return httpx.AsyncClient(base_url=self.url + "/api/v1/trading", headers=headers, timeout=10)


@asynccontextmanager
async def redis_limiter(url: str, limits: Limits) -> AsyncIterator[Limiter]:
    """A limiter whose buckets live in the real Redis at ``url``, closed on exit."""
    async with open_bridge("limits") as bridge:
        limiter = await connect_redis_limiter(limits, bridge, url)
        try:
            yield limiter
        finally:
            await limiter.close()


@pytest.fixture
def limiter() -> Limiter | None:
    """No rate limits, unless a test module overrides this fixture."""
    return None


@pytest.fixture
def engine_config() -> EngineConfig:
    """The server's engine settings, unless a test module overrides this fixture."""
    return EngineConfig(expire_every=float("inf"))


@pytest.fixture
async def server(
    database_url: str, limiter: Limiter | None, engine_config: EngineConfig
) -> AsyncIterator[Server]:
    config = engine_config
    async with (
        open_postgres_journal(database_url) as journal,
        open_engine(config, journal) as engine,
    ):
        box = SecretBox.generate()
        keys = await setup_demo(engine, ADMIN, box)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            app = create_app(engine, ADMIN, limiter, read_tables=journal, secret_box=box)
            url = await serve(nursery, app, stop)
            yield Server(url, engine, keys)
            stop.set()


async def serve(nursery: trio.Nursery, app: Any, stop: trio.Event) -> str:
    """Serve ``app`` with Hypercorn's trio worker, configured as ``serve`` configures it, on
    an ephemeral port until ``stop``: its URL."""
    settings = server_config("127.0.0.1:0")
    binds: list[str] = await nursery.start(
        lambda task_status: hypercorn.trio.serve(
            app, settings, shutdown_trigger=stop.wait, task_status=task_status
        )
    )
    return binds[0]
