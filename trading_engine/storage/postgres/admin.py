"""Databases on a server: create, drop, and a DSN naming one (for tests and benchmarks)."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import asyncpg.exceptions

if TYPE_CHECKING:
    pass

from trading_engine.storage.postgres.errors import JournalError

__all__ = ["create_database", "drop_database", "with_database"]

_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def with_database(dsn: str, database: str) -> str:
    """``dsn`` with its database replaced by ``database``."""
    return urlunsplit(urlsplit(dsn)._replace(path="/" + database))


def create_database(dsn: str, database: str) -> None:
    """Create ``database`` on ``dsn``'s server; for tools and benchmarks, outside Trio."""
    _admin(dsn, f"CREATE DATABASE {_checked(database)}")


def drop_database(dsn: str, database: str) -> None:
    """Drop ``database`` (closing its connections) if it exists; outside Trio."""
    _admin(dsn, f"DROP DATABASE IF EXISTS {_checked(database)} WITH (FORCE)")


def _checked(database: str) -> str:
    if not _DATABASE_NAME.match(database):
        raise JournalError(f"database name {database!r}: use a-z, 0-9 and _")
    return database


def _admin(dsn: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())
