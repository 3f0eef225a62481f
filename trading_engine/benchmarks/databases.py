"""A fresh PostgreSQL database for one benchmark run, dropped afterwards."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trading_engine.storage.local_pg import LocalPostgres
from trading_engine.storage.postgres import create_database, drop_database, with_database

__all__ = ["fresh_database"]


@contextmanager
def fresh_database(database_url: str | None, prefix: str) -> Iterator[str]:
    """The DSN of a new database named ``<prefix>_<random>`` on ``database_url``'s server,
    else on a throwaway local server (durable: fsync on, as in production); the database
    is dropped, and the local server stopped, when the block ends."""
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp:
        server = None
        if database_url is None:
            server = LocalPostgres(Path(tmp) / "data", durable=True)
            database_url = server.start()
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        try:
            create_database(database_url, name)
            yield with_database(database_url, name)
        finally:
            drop_database(database_url, name)
            if server is not None:
                server.stop()
