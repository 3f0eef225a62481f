"""Snapshots in PostgreSQL: `trading-engine snapshot`, a start from one, and what stops one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import trio

from tests.actors import workload
from tests.actors.helpers import open_market, quiesce
from tests.actors.test_snapshot import CONFIG, assert_same_state, replica, run_again
from tests.conftest import copy_journal, other_database, run_migrations, sql
from trading_engine.actors.engine import build_actors, snapshot_journal, snapshot_version
from trading_engine.audit import audit
from trading_engine.snapshots import keep_snapshotting
from trading_engine.storage.journal import Snapshot
from trading_engine.storage.postgres import PostgresJournal, open_postgres_journal

T = TypeVar("T")
CHUNK = 1_000
"""A chunk size small enough that the tests' states take many chunks."""


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


async def snapshot_between_runs(
    database_url: str, seed: int, take: Callable[[PostgresJournal], Awaitable[T]]
) -> T:
    """The workload, then ``take`` (a snapshot), then the workload again; what ``take``
    returned."""
    async with (
        open_postgres_journal(database_url) as journal,
        open_market(journal, CONFIG, workload.FUNDING) as engine,
    ):
        await workload.run_workload(engine, 10, seed=seed)
        taken = await take(journal)
        await run_again(engine, seed=seed + 1)
        await quiesce(engine)
    return taken


async def test_the_engine_starts_from_the_snapshot_the_command_saved(database_url: str) -> None:
    async def take(journal: PostgresJournal) -> tuple[dict[str, int], int]:
        saved = await trio.to_thread.run_sync(snapshot_command, database_url)
        return saved, len(await journal.read_all())

    with trio.fail_after(120):
        saved, written = await snapshot_between_runs(database_url, 11, take)
        assert saved["events"] == written
        assert saved["bytes"] > 0
        async with open_postgres_journal(database_url) as journal:
            total = len(await journal.read_all())
            from_snapshot = await build_actors(CONFIG, journal)
            full = await build_actors(CONFIG, await replica(journal))
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
            open_market(journal, CONFIG, workload.FUNDING) as engine,
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
            await sql(
                database_url,
                "UPDATE journal_batches SET hashes = overlay(hashes"
                " PLACING sha256('another history') FROM octet_length(hashes) - 31)"
                f" WHERE id = {snapshot.position} >> 24",
            )
            assert await journal.load_snapshot(snapshot_version(CONFIG)) is None
            actors = await build_actors(CONFIG, journal)
            assert actors.recovered is not None
            assert actors.recovered.snapshot is None, "it replays the whole journal instead"


async def test_serve_snapshots_each_time_so_many_events_were_journaled(database_url: str) -> None:
    async with (
        open_postgres_journal(database_url) as journal,
        open_market(journal, CONFIG, workload.FUNDING) as engine,
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


def synthetic(size: int) -> Snapshot:
    """A snapshot of random bytes that any journal holds the tips of (it has none)."""
    return Snapshot(0, {}, "synthetic", os.urandom(size), 0)


# The first is 101 chunks, more than one COPY writes (_CHUNKS_PER_COPY).
@pytest.mark.parametrize("size", [100 * CHUNK + 7, 10 * CHUNK, CHUNK - 1, 0])
async def test_a_state_of_many_chunks_round_trips_byte_for_byte(
    database_url: str, size: int
) -> None:
    saved = synthetic(size)
    with trio.fail_after(30):
        async with open_postgres_journal(database_url) as journal:
            await journal.save_snapshot(saved, chunk_size=CHUNK)
            loaded = await journal.load_snapshot("synthetic")
        chunks = await sql(
            database_url, "SELECT chunk, octet_length(data) FROM snapshot_chunks ORDER BY chunk"
        )
    assert loaded is not None
    assert loaded.state == saved.state
    lengths = [CHUNK] * (size // CHUNK) + ([size % CHUNK] if size % CHUNK else [])
    assert [tuple(row) for row in chunks] == list(enumerate(lengths))


async def test_a_save_keeps_the_newest_two_snapshots_and_only_their_chunks(
    database_url: str,
) -> None:
    with trio.fail_after(30):
        async with open_postgres_journal(database_url) as journal:
            for size in (3 * CHUNK, 4 * CHUNK, 5 * CHUNK):
                await journal.save_snapshot(synthetic(size), chunk_size=CHUNK)
        snapshots = await sql(database_url, "SELECT id, size FROM snapshots ORDER BY id")
        chunks = await sql(
            database_url,
            "SELECT snapshot_id, count(*) FROM snapshot_chunks GROUP BY 1 ORDER BY 1",
        )
    assert [row["size"] for row in snapshots] == [4 * CHUNK, 5 * CHUNK]
    assert [tuple(row) for row in chunks] == [(snapshots[0]["id"], 4), (snapshots[1]["id"], 5)]


@pytest.mark.parametrize(
    "damage",
    [
        "DELETE FROM snapshot_chunks WHERE snapshot_id = {id} AND chunk = 3",
        "DELETE FROM snapshot_chunks WHERE snapshot_id = {id} AND chunk = 9",
        "DELETE FROM snapshot_chunks WHERE snapshot_id = {id}",
        "UPDATE snapshot_chunks SET data = substring(data FROM 2) WHERE snapshot_id = {id}",
    ],
    ids=["a chunk in the middle", "the last chunk", "every chunk", "chunks cut short"],
)
async def test_a_snapshot_with_chunks_missing_is_never_used(database_url: str, damage: str) -> None:
    older, newer = synthetic(2 * CHUNK), synthetic(10 * CHUNK)
    with trio.fail_after(30):
        async with open_postgres_journal(database_url) as journal:
            await journal.save_snapshot(older, chunk_size=CHUNK)
            await journal.save_snapshot(newer, chunk_size=CHUNK)
            [(newest,)] = await sql(database_url, "SELECT max(id) FROM snapshots")
            await sql(database_url, damage.format(id=newest))
            loaded = await journal.load_snapshot("synthetic")
    assert loaded is not None
    assert loaded.state == older.state, "the one before it, whole"


async def test_the_engine_recovers_from_a_snapshot_of_many_chunks(database_url: str) -> None:
    async def take(journal: PostgresJournal) -> Snapshot:
        snapshot = await snapshot_journal(CONFIG, journal)
        await journal.save_snapshot(snapshot, chunk_size=CHUNK)
        return snapshot

    with trio.fail_after(120):
        snapshot = await snapshot_between_runs(database_url, 31, take)
        [(chunks,)] = await sql(database_url, "SELECT count(*) FROM snapshot_chunks")
        async with open_postgres_journal(database_url) as journal:
            from_snapshot = await build_actors(CONFIG, journal)
            full = await build_actors(CONFIG, await replica(journal))
            await sql(database_url, f"DELETE FROM snapshot_chunks WHERE chunk = {chunks // 2}")
            without = await build_actors(CONFIG, journal)
    assert chunks == -(-len(snapshot.state) // CHUNK) > 1
    assert from_snapshot.recovered is not None
    assert from_snapshot.recovered.snapshot == snapshot.position
    assert from_snapshot.recovered.replayed > 0
    assert_same_state(from_snapshot, full)
    assert without.recovered is not None
    assert without.recovered.snapshot is None, "a chunk missing: the whole journal is replayed"
    assert_same_state(without, full)


async def test_a_snapshot_saved_before_migration_0008_is_used_after_it(
    server_dsn: str, database_url: str
) -> None:
    """A database as 0007 left it, with a snapshot whose state is one value in
    ``snapshots.state`` (as the engine saved them then): 0008 moves it into a chunk,
    and the engine starts from it and replays the journal after it."""
    with trio.fail_after(120):
        snapshot = await snapshot_between_runs(
            database_url, 33, lambda journal: snapshot_journal(CONFIG, journal)
        )
        async with open_postgres_journal(database_url) as journal:
            full = await build_actors(CONFIG, await replica(journal))
        async with other_database(server_dsn, "snapshot_0008") as target:
            applied = await trio.to_thread.run_sync(lambda: run_migrations(target, upto=7))
            assert applied == [1, 2, 3, 4, 5, 6, 7]
            await copy_journal(database_url, target)
            # Before 0009 a position was the id of a row of one event: numbered from 1.
            [(position,)] = await sql(
                database_url, f"SELECT count(*) FROM journal WHERE id <= {snapshot.position}"
            )
            tips = ", ".join(f"('{stream}', {seq})" for stream, seq in snapshot.tips.items())
            await sql(
                target,
                f"""
                INSERT INTO snapshots (position, version, tips, events, state)
                SELECT {position}, '{snapshot.version}',
                       jsonb_object_agg(j.stream, jsonb_build_array(j.seq, encode(j.hash, 'hex'))),
                       {snapshot.events}, '\\x{snapshot.state.hex()}'::bytea
                FROM journal j JOIN (VALUES {tips}) AS t (stream, seq) USING (stream, seq)
                """,
            )
            assert await trio.to_thread.run_sync(lambda: run_migrations(target, upto=9)) == [8, 9]
            async with open_postgres_journal(target) as journal:
                loaded = await journal.load_snapshot(snapshot.version)
                upgraded = await build_actors(CONFIG, journal)
    assert loaded is not None
    assert loaded.state == snapshot.state
    assert upgraded.recovered is not None
    assert upgraded.recovered.snapshot == loaded.position == (position << 24) + 1, "0009 moved it"
    assert upgraded.recovered.replayed > 0
    assert_same_state(upgraded, full)
