"""Versioned schema migrations: the ``.sql`` files in ``migrations/``, applied in order.

A migration is a file ``NNNN_name.sql`` (``NNNN`` its version, a positive
integer). ``migrate(connection)`` applies every version the database has not
recorded in ``schema_migrations``, in version order, all in one transaction,
and records each; a second run finds nothing to do. An advisory lock makes
two processes starting at once take turns rather than both apply. A
database that records a version this build does not know was migrated by a
newer build: ``MigrationError``, rather than running against a schema it
does not understand.

``migrate`` runs on the asyncio side (it takes an asyncpg connection): call
it through the bridge.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING, Final, TypeAlias

import asyncpg
import attrs

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

from trading_engine.errors import TradingEngineError

__all__ = ["Migration", "MigrationError", "load_migrations", "migrate"]

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_LOCK_KEY: Final = 0x7E_5C_4E_3A
"""The advisory lock that serializes migrators (any constant unique to this schema)."""


class MigrationError(TradingEngineError):
    """Raised when the migrations on disk or the versions in the database don't add up."""

    code = "migration_error"


@attrs.frozen
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The migrations shipped in this package, by version; raises ``MigrationError``."""
    found: dict[int, Migration] = {}
    folder = resources.files("trading_engine.storage") / "migrations"
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE.match(entry.name)
        if match is None:
            raise MigrationError(f"{entry.name}: a migration is named NNNN_name.sql")
        version = int(match[1])
        if version in found:
            raise MigrationError(f"{entry.name}: version {version} is already taken")
        found[version] = Migration(version, match[2], entry.read_text(encoding="utf-8"))
    return [found[version] for version in sorted(found)]


if TYPE_CHECKING:
    # A connection of its own or one borrowed from a pool (the stubs' generics
    # exist only for the type checker).
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


async def migrate(connection: Connection, *, upto: int | None = None) -> list[int]:
    """Apply the pending migrations in one transaction; return the versions applied.

    ``upto`` stops after that version (a database as an older build left it,
    for a test of the next migration); by default every one is applied.
    """
    migrations = load_migrations()
    known = {m.version for m in migrations}
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        applied = {row["version"] for row in await connection.fetch(_APPLIED)}
        unknown = applied - known
        if unknown:
            raise MigrationError(
                f"the database has schema versions {sorted(unknown)} that this build does not "
                "know: it was migrated by a newer version"
            )
        done: list[int] = []
        for migration in migrations:
            if migration.version in applied or (upto is not None and migration.version > upto):
                continue
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            done.append(migration.version)
    return done


_APPLIED = "SELECT version FROM schema_migrations"
