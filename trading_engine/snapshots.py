"""Snapshots of a running engine's journal, taken by a separate process.

``trading-engine snapshot`` reads the newest snapshot and the journal after
it, replays that into actors that never run (``snapshot_journal``), and
saves the result: the running engine is not paused, and its process spends
nothing on it but the database reads. ``keep_snapshotting`` runs that
command from ``serve`` whenever ``SNAPSHOT_EVERY`` events have been
journaled since the state of the last one, so that a restart never replays
much more than that.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import trio

from trading_engine.actors.engine import Engine, snapshot_journal
from trading_engine.config import EngineConfig
from trading_engine.storage.postgres import open_postgres_journal

__all__ = ["keep_snapshotting", "take_snapshot"]

log = logging.getLogger(__name__)


async def take_snapshot(database_url: str, config: EngineConfig) -> dict[str, Any]:
    """Snapshot the journal at ``database_url`` now and save it; returns what was done."""
    started = time.perf_counter()
    async with open_postgres_journal(database_url, project_every=3600.0) as journal:
        snapshot = await snapshot_journal(config, journal)
        built = time.perf_counter() - started
        await journal.save_snapshot(snapshot)
    return {
        "position": snapshot.position,
        "events": snapshot.events,
        "bytes": len(snapshot.state),
        "build_seconds": round(built, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }


async def keep_snapshotting(engine: Engine, database_url: str, every: int) -> None:
    """Run ``trading-engine snapshot`` each time ``every`` events were journaled since the
    state of the newest snapshot (counting what this start replayed). A failure is logged
    and tried again at the next threshold."""
    recovered = engine.recovered
    behind = recovered.replayed if recovered is not None else 0
    counted = engine.journal_stats.events
    env = {**os.environ, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "trading_engine.cli", "snapshot"]
    while True:
        written = engine.journal_stats.events
        behind, counted = behind + written - counted, written
        if behind < every:
            await trio.sleep(1.0)
            continue
        # The snapshot holds at least what was journaled before it started.
        behind = 0
        result = await trio.run_process(
            command, env=env, check=False, capture_stdout=True, capture_stderr=True
        )
        if result.returncode == 0:
            log.info("snapshot saved %s", result.stdout.decode().strip())
        else:
            log.error("snapshot failed: %s", result.stderr.decode().strip()[-2000:])
