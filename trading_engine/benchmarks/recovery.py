"""``trading-engine bench recovery``: how long a restart takes after N journaled events.

It first makes a realistic journal: the engine benchmark's workload runs
in-process on an in-memory journal until it holds at least ``events``
events. Those events are then written to a fresh PostgreSQL database (or a
fresh in-memory journal with ``--journal memory``), and the clock measures
``open_engine`` on that journal until the engine is ready: every book,
account, hold, position and sequence number rebuilt, every actor running.

With ``--snapshot-tail N`` (the default, 100,000) a snapshot is taken when
all but the last N events are written (``snapshot_journal``, as
``trading-engine snapshot`` does; its time is reported too), so the start
restores it and replays N events. ``--snapshot-tail -1`` takes none: the
start replays the whole journal.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from trading_engine.actors.engine import open_engine, snapshot_journal
from trading_engine.benchmarks.databases import fresh_database
from trading_engine.benchmarks.engine import bench
from trading_engine.config import EngineConfig
from trading_engine.core.events import Journaled
from trading_engine.storage.journal import InMemoryJournal, Journal
from trading_engine.storage.postgres import open_postgres_journal

__all__ = ["run_recovery_bench"]

_CONFIG = EngineConfig(expire_every=float("inf"))


async def _fill(journal: InMemoryJournal, events: int) -> None:
    async with open_engine(_CONFIG, journal) as engine:
        seed = 1
        while journal.events < events:
            await bench(engine, orders=20_000, symbols=4, users=200, concurrency=400, seed=seed)
            seed += 1


async def _time_recovery(journal: Journal) -> dict[str, Any]:
    started = time.perf_counter()
    async with open_engine(_CONFIG, journal) as engine:
        seconds = time.perf_counter() - started
        symbols = len(engine.instruments())
        recovered = engine.recovered
    assert recovered is not None
    return {
        "ready_seconds": round(seconds, 3),
        "symbols": symbols,
        "replayed_events": recovered.replayed,
        "from_snapshot": recovered.snapshot is not None,
    }


async def _load(log: list[tuple[str, Journaled]], journal: Journal, tail: int) -> dict[str, Any]:
    """Write ``log`` to ``journal``, with a snapshot before its last ``tail`` events if
    ``tail >= 0``; returns how long the writes and the snapshot took."""
    cut = len(log) - tail if 0 <= tail <= len(log) else len(log)
    started = time.perf_counter()
    await _copy(log[:cut], journal)
    result: dict[str, Any] = {}
    if tail >= 0:
        before = time.perf_counter()
        snapshot = await snapshot_journal(_CONFIG, journal)
        await journal.save_snapshot(snapshot)
        result["snapshot_seconds"] = round(time.perf_counter() - before, 3)
        result["snapshot_bytes"] = len(snapshot.state)
        result["snapshot_events"] = snapshot.events
        del snapshot
    await _copy(log[cut:], journal)
    result["load_seconds"] = round(time.perf_counter() - started, 3)
    return result


async def _copy(source: list[tuple[str, Journaled]], target: Journal, batch: int = 10_000) -> None:
    start = 0
    while start < len(source):
        chunk = source[start : start + batch]
        grouped: list[tuple[str, list[Journaled]]] = []
        for stream, event in chunk:
            if grouped and grouped[-1][0] == stream:
                grouped[-1][1].append(event)
            else:
                grouped.append((stream, [event]))
        await target.append(grouped)
        start += batch


def run_recovery_bench(
    *,
    events: int = 1_000_000,
    journal: str = "postgres",
    snapshot_tail: int = 100_000,
    database_url: str | None = None,
) -> dict[str, Any]:
    memory = InMemoryJournal()
    trio.run(_fill, memory, events)
    log = trio.run(memory.read_all)
    del memory
    result: dict[str, Any] = {"events": len(log), "journal": journal}
    if journal == "memory":

        async def load_then_recover_memory() -> None:
            target = InMemoryJournal()
            result.update(await _load(log, target, snapshot_tail))
            result.update(await _time_recovery(target))

        trio.run(load_then_recover_memory)
        return result
    with fresh_database(database_url, "recovery_bench") as dsn:

        async def load_then_recover() -> None:
            async with open_postgres_journal(dsn) as pg:
                result.update(await _load(log, pg, snapshot_tail))
                result.update(await _time_recovery(pg))

        trio.run(load_then_recover)
    return result
