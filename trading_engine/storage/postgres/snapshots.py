"""Snapshots in ``snapshots`` and ``snapshot_chunks``: saved in chunks, loaded only
whole and only while the journal holds the same history; run on the bridge's loop.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

import asyncpg
import asyncpg.exceptions

from trading_engine.storage.journal import Snapshot

if TYPE_CHECKING:
    from trading_engine.storage.migrate import Connection

from trading_engine.storage.postgres.errors import JournalError

__all__ = ["SNAPSHOT_CHUNK_SIZE"]

SNAPSHOT_CHUNK_SIZE: Final = 4 * 2**20
"""The most bytes of a snapshot's state in one row of ``snapshot_chunks``. Each side
holds a whole chunk while it sends or receives it, so this bounds that, not the state.
Measured with a 100 MB state, 1 to 4 MB chunks saved and loaded fastest (0.7-0.8 and
0.2 s); 32 MB ones took 1.1 and 0.45 s. 4 MB rather than 1 MB: a quarter of the rows
and of the round trips a load makes (it fetches one chunk at a time)."""
_CHUNKS_PER_COPY: Final = 64
"""Chunks written by one COPY: 256 MB of 4 MB chunks, a few seconds at most."""

_TIP_ROWS: Final = """
SELECT t.key AS stream, (t.value #>> '{}')::bigint AS seq, encode(j.hash, 'hex') AS hash
FROM jsonb_each($1::jsonb) AS t, journal_at(t.key, (t.value #>> '{}')::bigint) AS j
WHERE j.id <= $2
"""

_SNAPSHOT_HOLDS: Final = """
SELECT count(*) = (SELECT count(*) FROM jsonb_object_keys($1::jsonb))
FROM jsonb_each($1::jsonb) AS t, journal_at(t.key, (t.value ->> 0)::bigint) AS j
WHERE j.id <= $2 AND j.hash = decode(t.value ->> 1, 'hex')
"""


async def _aio_save_snapshot(pool: asyncpg.Pool, snapshot: Snapshot, chunk_size: int) -> None:
    state = memoryview(snapshot.state)  # chunks are slices of it, not copies
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(_TIP_ROWS, json.dumps(snapshot.tips), snapshot.position)
        if len(rows) != len(snapshot.tips):
            raise JournalError(
                f"the journal does not hold this snapshot's tips up to id {snapshot.position}"
            )
        tips = {row["stream"]: [row["seq"], row["hash"]] for row in rows}
        newest = await connection.fetchval(
            "INSERT INTO snapshots (position, version, tips, events, size)"
            " VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING id",
            snapshot.position,
            snapshot.version,
            json.dumps(tips),
            snapshot.events,
            len(state),
        )
        starts = range(0, len(state), chunk_size)
        # Several COPYs, as command_timeout bounds each statement and a state may be
        # gigabytes. COPY rather than executemany: faster at each chunk size tried
        # (100 MB in 1, 8 and 32 MB chunks: 0.74, 0.88, 1.11 s against 0.92, 0.95, 1.30).
        for first in range(0, len(starts), _CHUNKS_PER_COPY):
            batch = enumerate(starts[first : first + _CHUNKS_PER_COPY], first)
            await connection.copy_records_to_table(
                "snapshot_chunks",
                records=((newest, n, state[at : at + chunk_size]) for n, at in batch),
                columns=("snapshot_id", "chunk", "data"),
            )
        await connection.execute(  # their chunks go with them (ON DELETE CASCADE)
            "DELETE FROM snapshots WHERE id NOT IN"
            " (SELECT id FROM snapshots WHERE id <= $1 ORDER BY id DESC LIMIT 2)",
            newest,
        )


_COMPLETE_SNAPSHOTS: Final = """
SELECT s.id, s.position, s.tips::text AS tips, s.events, s.size
FROM snapshots s
JOIN LATERAL (
    SELECT count(*) AS chunks, max(chunk) AS last, sum(octet_length(data)) AS size
    FROM snapshot_chunks c WHERE c.snapshot_id = s.id
) AS c ON c.chunks = coalesce(c.last + 1, 0) AND coalesce(c.size, 0) = s.size
WHERE s.version = $1
ORDER BY s.position DESC, s.id DESC
"""
"""The snapshots of a version whose chunks are all there: numbered from 0 with no gap
(the key makes each number unique) and as long as the state together. Lengths are read
from the chunks' headers, not their data."""


async def _aio_load_snapshot(pool: asyncpg.Pool, version: str) -> Snapshot | None:
    # One snapshot of the database for the whole read: a save that commits meanwhile
    # can't delete the chunks half read.
    async with (
        pool.acquire() as connection,
        connection.transaction(isolation="repeatable_read", readonly=True),
    ):
        for row in await connection.fetch(_COMPLETE_SNAPSHOTS, version):
            if await connection.fetchval(_SNAPSHOT_HOLDS, row["tips"], row["position"]):
                state = await _read_state(connection, row["id"], row["size"])
                tips = {stream: seq for stream, (seq, _) in json.loads(row["tips"]).items()}
                return Snapshot(row["position"], tips, version, state, row["events"])
    return None


async def _read_state(connection: Connection, snapshot_id: int, size: int) -> bytearray:
    """The chunks of a complete snapshot, joined: each is copied into place as it arrives
    and dropped, so that the state is not held twice (all its chunks, then the whole)."""
    state = bytearray(size)
    at = 0
    chunks = connection.cursor(
        "SELECT data FROM snapshot_chunks WHERE snapshot_id = $1 ORDER BY chunk",
        snapshot_id,
        prefetch=1,
    )
    async for (data,) in chunks:
        state[at : at + len(data)] = data
        at += len(data)
    assert at == size, "_COMPLETE_SNAPSHOTS checked the lengths in this transaction"
    return state
