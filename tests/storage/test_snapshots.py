"""Snapshots in PostgreSQL: `trading-engine snapshot`, a start from one, and what stops one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import trio

from tests.actors import workload
from tests.actors.helpers import open_market, quiesce
from tests.actors.test_snapshot import CONFIG, assert_same_state, replica, run_again
from tests.conftest import sql
from trading_engine.actors.engine import build_actors, snapshot_journal, snapshot_version
from trading_engine.audit import audit
from trading_engine.snapshots import keep_snapshotting
from trading_engine.storage.postgres import open_postgres_journal


def snapshot_command(database_url: str) -> dict[str, int]:
    """The real command, in a process of its own, as ``serve`` runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "trading_engine.cli", "snapshot"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout)
    return result


async def test_the_engine_starts_from_the_snapshot_the_command_saved(database_url: str) -> None:
    with trio.fail_after(120):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG, workload.FUNDING) as engine,  # type: ignore[arg-type]
        ):
            await workload.run_workload(engine, 10, seed=11)
            saved = await trio.to_thread.run_sync(snapshot_command, database_url)
            written = len(await journal.read_all())
            assert saved["events"] == written
            assert saved["bytes"] > 0
            await run_again(engine, seed=12)
            await quiesce(engine)
        async with open_postgres_journal(database_url) as journal:
            total = len(await journal.read_all())
            from_snapshot = await build_actors(CONFIG, journal)
            full = await build_actors(CONFIG, await replica(journal))  # type: ignore[arg-type]
            report = await audit(journal)
    assert from_snapshot.recovered is not None
    assert from_snapshot.recovered.snapshot == saved["position"]
    assert from_snapshot.recovered.replayed == total - written > 0
    assert from_snapshot.recovered.events == total
    assert_same_state(from_snapshot, full)
    assert report["ok"], report["problems"]


async def test_a_snapshot_is_not_used_once_the_journal_under_it_changed(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG, workload.FUNDING) as engine,  # type: ignore[arg-type]
        ):
            await workload.run_workload(engine, 4, seed=13)
        async with open_postgres_journal(database_url) as journal:
            for _ in range(3):
                await journal.save_snapshot(await snapshot_journal(CONFIG, journal))
            [(kept,)] = await sql(database_url, "SELECT count(*) FROM snapshots")
            assert kept == 2, "a save keeps the newest two"
            snapshot = await journal.load_snapshot(snapshot_version(CONFIG))
            assert snapshot is not None
            assert await journal.load_snapshot("another version") is None
            # A journal restored from another history: a tip's hash differs.
            tamper = "UPDATE journal SET hash = sha256('another history') WHERE id = {}"
            await sql(database_url, tamper.format(snapshot.position))
            assert await journal.load_snapshot(snapshot_version(CONFIG)) is None
            actors = await build_actors(CONFIG, journal)
            assert actors.recovered is not None
            assert actors.recovered.snapshot is None, "it replays the whole journal instead"


async def test_serve_snapshots_each_time_so_many_events_were_journaled(database_url: str) -> None:
    async with (
        open_postgres_journal(database_url) as journal,
        open_market(journal, CONFIG, workload.FUNDING) as engine,  # type: ignore[arg-type]
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(keep_snapshotting, engine, database_url, 300)
        await workload.run_workload(engine, 4, seed=21)
        written = len(await journal.read_all())
        assert written > 300
        with trio.fail_after(60):
            while not (rows := await sql(database_url, "SELECT events FROM snapshots")):
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert 300 <= rows[0]["events"] <= written
