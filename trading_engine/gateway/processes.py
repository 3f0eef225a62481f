"""``trading-engine engine`` and ``trading-engine gateway``: the engine and its front
ends as separate processes, talking over Redis (``REDIS_URL``, required by both).

- ``run_engine``: the engine alone (actors, journal, recovery, snapshots, the
  market-data publisher) and its ``CommandServer``, which runs the gateways'
  calls; no API. It prints ``trading engine running`` (with the command
  stream's key) on its first line once it takes calls. With a metrics port it
  listens there from its start on (``api/probe.py``): ``/metrics`` (the
  journal, the command server, market data published, the read tables),
  ``/health``, and ``/ready`` (200 once recovered and taking calls); the first
  line then ends with that listener's address (``listening on http://...``).
- ``run_gateway``: the REST API, the WebSocket feed and the web page over a
  ``RemoteEngine``; any number of them, anywhere Redis is reachable. It prints
  the banner ``serve`` prints. Each needs the same ``EXCHANGE_API_KEY`` and
  ``API_SECRETS_KEY`` as the engine (else the keys kept in its ``--data-dir``).
  With ``DATABASE_URL`` it answers history from the read tables there, on
  read-only sessions (it never writes, migrates nor projects); without one,
  history is 503 ``history_unavailable``. Its ``/metrics`` has its own figures
  and its link to the engine (``te_gateway_*``), not the engine's.

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
from typing import Any

import hypercorn.trio
import trio
from quart_trio import QuartTrio

from trading_engine.actors.engine import Engine, open_engine
from trading_engine.api.http_server import server_config
from trading_engine.api.probe import create_probe_app
from trading_engine.api.secrets import SecretBox
from trading_engine.config import EngineConfig
from trading_engine.gateway.feed import GatewayFeed
from trading_engine.gateway.metrics import CommandFigures, GatewayFigures
from trading_engine.gateway.protocol import EngineUnavailable
from trading_engine.gateway.remote import RemoteEngine
from trading_engine.gateway.server import CommandServer
from trading_engine.gateway.transport import EngineKeys, EngineSide, GatewaySide
from trading_engine.metrics import (
    Figures,
    ReadTablesFigures,
    Scrape,
    SubscriberFigures,
    engine_figures,
)
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
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the engine and its command server until SIGINT/SIGTERM; with ``metrics_port``
    (0: a free one), its listener on ``metrics_host`` too."""
    config = EngineConfig.from_env()
    if not config.redis_url:
        raise RedisRequired("engine")
    probe = _Probe()
    async with trio.open_nursery() as outer:
        listening = ""
        if metrics_port is not None:
            app = create_probe_app(probe.scrape, probe.ready, config.metrics_token)
            address = await outer.start(_listen, app, f"{metrics_host}:{metrics_port}")
            listening = f"; listening on {address} (/metrics, /health, /ready)"
        await _run_engine(
            config, config.redis_url, probe, listening, demo, data_dir, database_url, task_status
        )
        outer.cancel_scope.cancel()


class _Probe:
    """What the engine's listener shows: the figures of what runs so far, and whether the
    engine takes calls."""

    def __init__(self) -> None:
        self.scrape = Scrape()
        self.engine: Engine | None = None
        self.server: CommandServer | None = None

    async def ready(self) -> dict[str, Any]:
        if self.engine is None or self.server is None:
            raise EngineUnavailable("the engine is starting: recovering its state")
        await self.server.check_ready()
        return {"status": "ready", "symbols": len(self.engine.instruments())}


async def _listen(app: QuartTrio, bind: str, task_status: trio.TaskStatus[str]) -> None:
    """Serve ``app`` on ``bind`` as the API is served, until cancelled; ``task_status``
    gets its address."""
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: hypercorn.trio.serve(
                app, server_config(bind), task_status=task_status
            )
        )
        task_status.started(binds[0])


async def _run_engine(
    config: EngineConfig,
    redis_url: str,
    probe: _Probe,
    listening: str,
    demo: bool,
    data_dir: Path,
    database_url: str | None,
    task_status: trio.TaskStatus[None],
) -> None:
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
        probe.engine = engine
        probe.scrape.add(*engine_figures(engine, journal))
        demo_keys = await started(engine, admin_key, box, demo=demo)
        redis = await EngineSide.connect(bridge, redis_url, keys)
        try:
            async with trio.open_nursery() as nursery:
                if config.snapshot_every > 0:
                    nursery.start_soon(keep_snapshotting, engine, url, config.snapshot_every)
                server = CommandServer(engine, redis)
                probe.scrape.add(CommandFigures(server))
                await nursery.start(server.run)
                probe.server = server
                lines = [f"trading engine running: commands on {keys.commands}{listening}"]
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
                figures: list[Figures] = [SubscriberFigures(engine), GatewayFigures(engine, feed)]
                if tables is not None:
                    figures.append(ReadTablesFigures(tables))
                await serve_http(
                    engine, admin_key, box, limiter, tables, config, host, port, {}, task_status,
                    figures,
                )  # fmt: skip
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
