"""``trading-engine engine`` and ``trading-engine gateway``: the engine and its front
ends as separate processes, talking over Redis (``REDIS_URL``, required by both).

- ``run_engine``: the engine alone (actors, journal, recovery, snapshots, the
  market-data publisher) and its ``CommandServer``, which runs the gateways'
  calls; no HTTP. It prints ``trading engine running`` (with the command
  stream's key) on its first line once it takes calls.
- ``run_gateway``: the REST API, the WebSocket feed and the web page over a
  ``RemoteEngine``; any number of them, anywhere Redis is reachable. It prints
  the banner ``serve`` prints. Each needs the same ``EXCHANGE_API_KEY`` and
  ``API_SECRETS_KEY`` as the engine (else the keys kept in its ``--data-dir``).
  With ``DATABASE_URL`` it answers history from the read tables there, on
  read-only sessions (it never writes, migrates nor projects); without one,
  history is 503 ``history_unavailable``.

SIGINT or SIGTERM stops either gracefully: a gateway drains its requests
first, as ``serve`` does; the engine stops taking calls (the gateways refuse
new ones with 503 ``engine_unavailable`` at once) and answers those under way
before it closes.
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from trading_engine.actors.engine import open_engine
from trading_engine.api.secrets import SecretBox
from trading_engine.config import EngineConfig
from trading_engine.gateway.feed import GatewayFeed
from trading_engine.gateway.remote import RemoteEngine
from trading_engine.gateway.server import CommandServer
from trading_engine.gateway.transport import EngineKeys, EngineSide, GatewaySide
from trading_engine.serve import (
    admin_key_for,
    credential_lines,
    database,
    open_limiter,
    publisher_for,
    secrets_key_for,
    serve_http,
    started,
)
from trading_engine.snapshots import keep_snapshotting
from trading_engine.storage.bridge import open_bridge
from trading_engine.storage.postgres import open_postgres_journal
from trading_engine.storage.read_tables import ReadTables

__all__ = ["ENGINE_NAME", "run_engine", "run_gateway"]

log = logging.getLogger("trading_engine.gateway")

ENGINE_NAME = "ENGINE_NAME"
"""The environment variable naming the engine's Redis keys (default ``main``)."""


class RedisRequired(SystemExit):
    def __init__(self, command: str) -> None:
        super().__init__(f"trading-engine {command} needs REDIS_URL: it talks over Redis")


def _keys() -> EngineKeys:
    return EngineKeys(os.environ.get(ENGINE_NAME) or "main")


async def run_engine(
    *,
    demo: bool,
    data_dir: Path,
    database_url: str | None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the engine and its command server until SIGINT/SIGTERM."""
    config = EngineConfig.from_env()
    if not config.redis_url:
        raise RedisRequired("engine")
    admin_key = admin_key_for(data_dir)
    box = SecretBox(secrets_key_for(data_dir))
    keys = _keys()
    async with (
        database(data_dir, database_url) as url,
        open_postgres_journal(url) as journal,
        publisher_for(config) as publisher,
        open_engine(config, journal, publisher) as engine,
        open_bridge("gateway-commands") as bridge,
    ):
        demo_keys = await started(engine, admin_key, box, demo=demo)
        redis = await EngineSide.connect(bridge, config.redis_url, keys)
        try:
            async with trio.open_nursery() as nursery:
                if config.snapshot_every > 0:
                    nursery.start_soon(keep_snapshotting, engine, url, config.snapshot_every)
                server = CommandServer(engine, redis)
                await nursery.start(server.run)
                lines = [f"trading engine running: commands on {keys.commands}"]
                lines += credential_lines(admin_key, demo_keys, demo=demo)
                print("\n".join(lines), flush=True)
                task_status.started()
                await _stopped()
                log.warning("stopping: answering the calls under way, then closing the engine")
                await server.stop(config.reply_timeout)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await redis.close()


async def run_gateway(
    *,
    host: str,
    port: int,
    data_dir: Path,
    database_url: str | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a gateway until SIGINT/SIGTERM; ``task_status`` gets the bound address. With
    ``database_url``, history reads the read tables there (read-only); raises
    ``StorageUnavailable`` if that database or Redis does not answer at the start."""
    config = EngineConfig.from_env()
    if not config.redis_url:
        raise RedisRequired("gateway")
    admin_key = admin_key_for(data_dir)
    box = SecretBox(secrets_key_for(data_dir))
    gateway_id = uuid.uuid4().hex[:12]
    async with open_bridge("gateway") as bridge:
        redis = await GatewaySide.connect(bridge, config.redis_url, _keys(), gateway_id)
        engine = RemoteEngine(config, redis)
        feed = GatewayFeed(engine, bridge, config.redis_url)
        engine.feed = feed
        try:
            async with (
                _read_tables(database_url) as tables,
                open_limiter(config) as limiter,
                trio.open_nursery() as nursery,
            ):
                await nursery.start(engine.run)
                await nursery.start(feed.run)
                await serve_http(
                    engine, admin_key, box, limiter, tables, config, host, port, {}, task_status
                )
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await redis.close()


@asynccontextmanager
async def _read_tables(database_url: str | None) -> AsyncIterator[ReadTables | None]:
    """The read tables at ``database_url``, read-only, or None without one."""
    if not database_url:
        yield None
        return
    async with open_postgres_journal(database_url, read_only=True, project_every=1.0) as tables:
        yield tables


async def _stopped() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return
