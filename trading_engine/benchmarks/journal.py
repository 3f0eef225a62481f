"""The PostgreSQL journal alone: append latency by batch size, and a full read.

``run_journal_bench(dsn)`` appends batches of book events to a fresh
database on ``dsn``'s server (or on a throwaway local server, fsync off,
when ``dsn`` is None), times each ``append`` through the bridge, then times
``read_all`` and ``verify_chain`` over everything written. Returns one JSON-able
dict (the CLI prints it); ``python -m trading_engine.benchmarks.journal``
runs it with the defaults.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import trio

from trading_engine.core.enums import Side
from trading_engine.core.events import BookLevel, Journaled
from trading_engine.core.ids import Symbol
from trading_engine.storage.local_pg import LocalPostgres
from trading_engine.storage.postgres import (
    create_database,
    drop_database,
    open_postgres_journal,
    with_database,
)

__all__ = ["run_journal_bench"]

_SIZES = (1, 10, 100, 1000, 10_000)


def run_journal_bench(
    dsn: str | None = None, *, total: int = 100_000, rounds: int = 20
) -> dict[str, Any]:
    """Fill the journal with ``total`` events in 10,000-event batches, time ``read_all``
    and ``verify_chain`` over them, then time ``rounds`` appends of each smaller size."""
    with tempfile.TemporaryDirectory(prefix="journal-bench-") as tmp:
        server: LocalPostgres | None = None
        started = time.perf_counter()
        if dsn is None:
            server = LocalPostgres(Path(tmp) / "data", durable=False)
            dsn = server.start()
        start_seconds = time.perf_counter() - started
        database = f"journal_bench_{uuid.uuid4().hex[:8]}"
        create_database(dsn, database)
        try:
            result = trio.run(_bench, with_database(dsn, database), total, rounds)
        finally:
            drop_database(dsn, database)
            if server is not None:
                server.stop()
    if server is not None:
        result["local_server_start_seconds"] = round(start_seconds, 3)
    return result


async def _bench(dsn: str, total: int, rounds: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    seqs: dict[str, int] = {}

    def batch(stream: str, size: int) -> list[tuple[str, list[Journaled]]]:
        symbol = Symbol(stream)
        events: list[Journaled] = []
        for _ in range(size):
            seq = seqs[stream] = seqs.get(stream, 0) + 1
            events.append(BookLevel(seq, time.time_ns(), symbol, Side.BUY, 100_000 + seq % 97, seq))
        return [(stream, events)]

    async def timed_appends(stream: str, size: int, count: int) -> dict[str, float]:
        times = []
        for _ in range(count):
            records = batch(stream, size)
            started = time.perf_counter()
            await journal.append(records)
            times.append(time.perf_counter() - started)
        times.sort()
        return {
            "median": round(times[len(times) // 2] * 1000, 3),
            "min": round(times[0] * 1000, 3),
        }

    async with open_postgres_journal(dsn) as journal:
        # First fill the journal to ``total`` events in 10,000-event batches, and read it back.
        big = _SIZES[-1]
        filled = await timed_appends("BTC_AIT", big, total // big)
        started = time.perf_counter()
        events = await journal.read_all()
        result["read_all_events"] = len(events)
        result["read_all_seconds"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        assert await journal.verify_chain() is None
        result["verify_chain_seconds"] = round(time.perf_counter() - started, 3)
        # Then each smaller batch size, on a stream of its own.
        result["append_ms"] = {
            str(size): await timed_appends(f"S{size}_AIT", size, rounds) for size in _SIZES[:-1]
        }
        result["append_ms"][str(big)] = filled
    return result


if __name__ == "__main__":
    print(json.dumps(run_journal_bench()))
