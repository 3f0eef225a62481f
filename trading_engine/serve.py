"""``trading-engine serve``: the engine and the HTTP/WebSocket server, side by side.

Both run in one nursery: if either crashes, both stop, loudly (Quart's own
``app.nursery`` would swallow an engine crash). SIGINT or SIGTERM stops
accepting connections, lets requests in flight finish, then closes the
engine, whose journal actor has written every acknowledged event.

It listens where ``--host`` and ``--port`` say (the command's defaults:
127.0.0.1, and ``$PORT`` else 8000) and prints a banner to stdout: the URLs
of the web UI, the API, the feed and health, the admin key and the demo
users' keys. Log lines go to stderr through the root logger, whose format
the command chooses (text on a terminal, else JSON).

With no ``DATABASE_URL`` it starts a local PostgreSQL in ``--data-dir``
(default ``.data``), kept across runs and stopped on exit. The admin key is
``EXCHANGE_API_KEY``, else one generated once and kept in the data
directory; so is the server key that seals API secrets (``secrets_key_for``).
``--demo`` lists BTC_AIT and ETH_AIT and funds two demo users; run again, it
adds only what is missing, and the demo users' keys and API secrets (for the
Binance dialect, ``/api/v3``) are derived from the admin key, so they are the
same every run.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import hypercorn.trio
import trio

from trading_engine.actors.engine import Engine, open_engine
from trading_engine.api.app import create_app
from trading_engine.api.auth import hash_key
from trading_engine.api.drain import Drain
from trading_engine.api.http_server import server_config
from trading_engine.api.secrets import HMAC_SCHEME, SecretBox
from trading_engine.config import EngineConfig
from trading_engine.core.ids import UserId
from trading_engine.core.instruments import Instrument
from trading_engine.metrics import Figures
from trading_engine.runtime import tune_gc
from trading_engine.snapshots import keep_snapshotting
from trading_engine.storage.bridge import open_bridge
from trading_engine.storage.limits import (
    Leases,
    Limiter,
    LocalLimiter,
    connect_redis_limiter,
    limits_from_env,
)
from trading_engine.storage.local_pg import LocalPostgres
from trading_engine.storage.postgres import open_postgres_journal
from trading_engine.storage.publisher import Publisher
from trading_engine.storage.read_tables import ReadTables
from trading_engine.storage.redis import open_redis_publisher

__all__ = [
    "credential_lines",
    "database",
    "open_limiter",
    "publisher_for",
    "serve",
    "serve_http",
    "started",
]

log = logging.getLogger("trading_engine.serve")

DEMO_SYMBOLS = (
    Instrument.create("BTC_AIT", "BTC", "AIT", "0.01", "0.0001", maker_fee_bps=-2,
                      taker_fee_bps=10, price_band_pct="10"),
    Instrument.create("ETH_AIT", "ETH", "AIT", "0.01", "0.001", maker_fee_bps=-2,
                      taker_fee_bps=10, price_band_pct="10"),
)  # fmt: skip
DEMO_FUNDS = {"AIT": 1_000_000 * 10**8, "BTC": 100 * 10**8, "ETH": 1_000 * 10**8}
DEMO_USERS = (UserId("demo_alice"), UserId("demo_bob"))


def admin_key_for(data_dir: Path) -> str:
    key = os.environ.get("EXCHANGE_API_KEY")
    if key:
        return key
    path = data_dir / "admin_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = "te_admin_" + secrets.token_urlsafe(24)
    path.write_text(key + "\n", encoding="utf-8")
    path.chmod(0o600)
    return key


def secrets_key_for(data_dir: Path) -> str:
    """The server key that seals API secrets (``api/secrets.py``): ``API_SECRETS_KEY``,
    else one generated once and kept in the data directory (``secrets_key``, mode 600).
    Back it up with the data directory: without it no stored secret opens."""
    key = os.environ.get("API_SECRETS_KEY")
    if key:
        return key
    path = data_dir / "secrets_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = SecretBox.new_key()
    path.write_text(key + "\n", encoding="utf-8")
    path.chmod(0o600)
    return key


def demo_secret(admin_key: str, user_id: str) -> str:
    """A demo user's API secret, derived from the admin key as its key is."""
    return hmac.new(admin_key.encode(), f"secret:{user_id}".encode(), hashlib.sha256).hexdigest()


def demo_key(admin_key: str, user_id: str) -> str:
    digest = hmac.new(admin_key.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return f"te_demo_{digest[:32]}"


async def setup_demo(
    engine: Engine, admin_key: str, box: SecretBox | None = None
) -> dict[str, str]:
    """List the demo symbols and fund the demo users, adding only what is missing; with
    ``box``, give each demo user its API secret (``demo_secret``), sealed by ``box``."""
    for instrument in DEMO_SYMBOLS:
        if instrument.symbol not in engine.instruments():
            await engine.add_symbol(instrument)
    keys: dict[str, str] = {}
    for user in DEMO_USERS:
        key = demo_key(admin_key, user)
        keys[user] = key
        if await engine.user_by_key(hash_key(key)) is None:
            await engine.create_user(user, hash_key(key))
            for asset, amount in DEMO_FUNDS.items():
                await engine.deposit(user, asset, amount)
        if box is not None and HMAC_SCHEME not in await engine.credentials(user):
            await engine.set_credential(user, HMAC_SCHEME, box.seal(demo_secret(admin_key, user)))
    return keys


async def serve(
    *,
    host: str,
    port: int,
    demo: bool,
    data_dir: Path,
    database_url: str | None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until SIGINT/SIGTERM; ``task_status`` gets the bound address (for tests)."""
    admin_key = admin_key_for(data_dir)
    box = SecretBox(secrets_key_for(data_dir))
    config = EngineConfig.from_env()
    async with (
        database(data_dir, database_url) as url,
        open_postgres_journal(url) as journal,
        publisher_for(config) as publisher,
        open_engine(config, journal, publisher) as engine,
    ):
        keys = await started(engine, admin_key, box, demo=demo)
        async with open_limiter(config) as limiter, trio.open_nursery() as nursery:
            if config.snapshot_every > 0:
                nursery.start_soon(keep_snapshotting, engine, url, config.snapshot_every)
            await serve_http(
                engine, admin_key, box, limiter, journal, config, host, port, keys,
                task_status,
            )  # fmt: skip
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def database(data_dir: Path, database_url: str | None) -> AsyncIterator[str]:
    """``database_url``, else the URL of the local PostgreSQL in ``data_dir``, started
    for the ``async with`` and stopped after it."""
    if database_url:
        yield database_url
        return
    local = LocalPostgres(data_dir / "postgres")
    url = await trio.to_thread.run_sync(local.start)
    try:
        yield url
    finally:
        await trio.to_thread.run_sync(local.stop)


async def started(engine: Engine, admin_key: str, box: SecretBox, *, demo: bool) -> dict[str, str]:
    """Log what the start recovered and, with ``demo``, set up the demo symbols and
    users (their keys, by user); then tune the collector for serving."""
    if (recovered := engine.recovered) is not None:
        log.info(
            "recovered %d events: snapshot at journal position %s, %d replayed after it",
            recovered.events,
            recovered.snapshot,
            recovered.replayed,
        )
    keys = await setup_demo(engine, admin_key, box) if demo else {}
    tune_gc()
    return keys


@asynccontextmanager
async def publisher_for(config: EngineConfig) -> AsyncIterator[Publisher | None]:
    """Redis's market-data publisher with ``REDIS_URL``; raises ``StorageUnavailable``
    if Redis does not answer at the start."""
    if not config.redis_url:
        yield None
        return
    async with open_redis_publisher(config.redis_url) as publisher:
        yield publisher


@asynccontextmanager
async def open_limiter(config: EngineConfig) -> AsyncIterator[Limiter | None]:
    """Rate limits from the environment: in Redis with ``REDIS_URL``, else in-process."""
    limits = limits_from_env()
    if limits is None:
        yield None
    elif config.redis_url:
        async with open_bridge("rate-limits") as bridge:
            limiter = await connect_redis_limiter(limits, bridge, config.redis_url)
            try:
                yield Leases(limiter)
            finally:
                with trio.CancelScope(shield=True):
                    await limiter.close()
    else:
        yield LocalLimiter(limits)


async def serve_http(
    engine: Engine,
    admin_key: str,
    box: SecretBox,
    limiter: Limiter | None,
    read_tables: ReadTables | None,
    config: EngineConfig,
    host: str,
    port: int,
    keys: dict[str, str],
    task_status: trio.TaskStatus[str],
    figures: Sequence[Figures] | None = None,
) -> None:
    """Serve the API over ``engine`` until SIGINT/SIGTERM, then drain; ``figures``: what
    ``/metrics`` shows beside the HTTP figures (None: the in-process engine's)."""
    drain = Drain()
    app = create_app(
        engine, admin_key, limiter, drain, read_tables, metrics_token=config.metrics_token,
        secret_box=box, figures=figures, max_ws_per_address=config.max_ws_per_address,
        trusted_proxy_hops=config.trusted_proxy_hops,
    )  # fmt: skip
    settings = server_config(f"{host}:{port}")
    stop = trio.Event()
    async with trio.open_nursery() as nursery:

        async def watch_signals() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    log.warning("stopping: draining requests, then closing the engine")
                    stop.set()
                    return

        nursery.start_soon(watch_signals)
        binds = await nursery.start(
            lambda task_status: hypercorn.trio.serve(
                app, settings, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        address = binds[0] if binds else f"http://{host}:{port}"
        _announce(address, admin_key, keys, demo=bool(keys))
        task_status.started(address)
        await stop.wait()
        # Hypercorn has stopped accepting. Requests in flight finish; feeds close (1001);
        # then what is left is idle (api/drain.py), and is closed.
        drain.closing.set()
        with trio.move_on_after(settings.graceful_timeout):
            await drain.wait()
        nursery.cancel_scope.cancel()


def _announce(address: str, admin_key: str, keys: dict[str, str], *, demo: bool) -> None:
    lines = [
        f"trading engine listening on {address}",
        f"  web UI:     {address}/",
        f"  API:        {address}/api/v1/trading",
        f"  Binance:    {address}/api/v3 (ccxt: docs/ccxt.md)",
        f"  WebSocket:  {address.replace('http', 'ws', 1)}/api/v1/trading/ws",
        f"  health:     {address}/health",
        *credential_lines(admin_key, keys, demo=demo),
    ]
    print("\n".join(lines), flush=True)


def credential_lines(admin_key: str, keys: dict[str, str], *, demo: bool) -> list[str]:
    """The banner's lines with the admin key and, by user, each key given (with its API
    secret for the demo users)."""
    lines = [f"  admin key:  {admin_key}"]
    for user, key in keys.items():
        lines.append(f"  {user} key: {key}")
        if demo:
            lines.append(f"  {user} secret: {demo_secret(admin_key, user)}")
    return lines
