"""A real PostgreSQL for the tests that need one, and a fresh database for each test.

The server: ``$DATABASE_URL`` if set (its role must be allowed to create
databases), else a local server (``LocalPostgres``, fsync off) in a
temporary directory, started once per session. The fixtures are
synchronous because pytest-trio runs each test in its own ``trio.run``, so
an async fixture cannot outlive one test.

Each test gets a database copied from a template that already has the
migrations applied (``CREATE DATABASE ... TEMPLATE``, tens of milliseconds),
and it is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import trio

from tests.redis_server import RedisServer
from trading_engine.storage.local_pg import LocalPostgres, find_bin_dir
from trading_engine.storage.migrate import migrate
from trading_engine.storage.postgres import create_database, drop_database, with_database


def run_sql(dsn: str, *statements: str) -> list[Any]:
    """Run statements on a connection of their own (blocking); the last one's rows."""

    async def run() -> list[Any]:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            rows: list[Any] = []
            for statement in statements:
                rows = await connection.fetch(statement)
            return rows
        finally:
            await connection.close()

    return asyncio.run(run())


async def sql(dsn: str, *statements: str) -> list[Any]:
    """``run_sql`` from a Trio test, in a worker thread."""
    return await trio.to_thread.run_sync(lambda: run_sql(dsn, *statements))


def run_migrations(dsn: str, *, upto: int | None = None) -> list[int]:
    """``migrate`` the database at ``dsn`` up to ``upto`` (blocking); the versions applied."""

    async def run() -> list[int]:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            return await migrate(connection, upto=upto)
        finally:
            await connection.close()

    return asyncio.run(run())


@asynccontextmanager
async def other_database(server_dsn: str, prefix: str) -> AsyncIterator[str]:
    """A new empty database on the test server, dropped afterwards; its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await trio.to_thread.run_sync(create_database, server_dsn, name)
    try:
        yield with_database(server_dsn, name)
    finally:
        await trio.to_thread.run_sync(drop_database, server_dsn, name)


async def copy_journal(source: str, target: str) -> None:
    """The journal's rows alone into ``target``, as a backup restores them.

    ``pg_dump --data-only -t journal_batches`` of ``source``; for a ``target`` that
    an older build migrated (before 0009, one row per event in a table ``journal``),
    the events of ``source``'s ``journal`` view in their order, numbered from 1.
    """
    [(batches,)] = await sql(target, "SELECT to_regclass('journal_batches') IS NOT NULL")
    if not batches:
        await trio.to_thread.run_sync(_copy_events, source, target)
        return
    bin_dir = find_bin_dir()
    dump = await trio.run_process(
        [bin_dir / "pg_dump", "--data-only", "-t", "journal_batches", source],
        capture_stdout=True,
    )
    await trio.run_process(
        [bin_dir / "psql", "-q", "-v", "ON_ERROR_STOP=1", target], stdin=dump.stdout
    )


def _copy_events(source: str, target: str) -> None:
    columns = ("stream", "seq", "type", "payload", "ts", "hash")
    rows = run_sql(source, f"SELECT {', '.join(columns)} FROM journal ORDER BY id")

    async def run() -> None:
        connection = await asyncpg.connect(target, timeout=10)
        try:
            await connection.copy_records_to_table("journal", records=rows, columns=columns)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The DSN of a running server: ``$DATABASE_URL``, or a local one for this session."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    server = LocalPostgres(tmp_path_factory.mktemp("postgres") / "data", durable=False)
    server.start()
    try:
        yield server.dsn
    finally:
        server.stop(mode="immediate")


@pytest.fixture(scope="session")
def template_database(server_dsn: str) -> Iterator[str]:
    """A database with the migrations applied, to copy for each test."""
    name = f"te_template_{uuid.uuid4().hex[:12]}"
    run_sql(server_dsn, f"CREATE DATABASE {name}")
    try:
        run_migrations(with_database(server_dsn, name))
        yield name
    finally:
        run_sql(server_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_numbers = itertools.count()


@pytest.fixture
def database_url(server_dsn: str, template_database: str) -> Iterator[str]:
    """A DSN of a new database of this test's own, schema included."""
    name = f"{template_database.replace('template', 'test')}_{next(_numbers)}"
    run_sql(server_dsn, f"CREATE DATABASE {name} TEMPLATE {template_database}")
    try:
        yield with_database(server_dsn, name)
    finally:
        run_sql(server_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LocalPostgres]:
    """A server of this test's own, for tests that stop it: never the shared one."""
    server = LocalPostgres(tmp_path / "data", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop(mode="immediate")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own on a loopback port (it may stop and start it)."""
    server = RedisServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
