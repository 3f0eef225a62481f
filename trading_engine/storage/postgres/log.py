"""The journal's rows: appending a batch (one ``journal_append`` statement), reading
streams back, and verifying each stream's hash chain; run on the bridge's loop.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

import asyncpg
import asyncpg.exceptions

from trading_engine.core.events import Journaled
from trading_engine.storage import codec

if TYPE_CHECKING:
    from trading_engine.storage.migrate import Connection

from trading_engine.storage.postgres.errors import JournalConflict, JournalError

__all__ = []

_LOCK_KEY: Final = 0x7E_10_A1
"""The advisory lock that serializes appends (any constant unique to this table)."""
_GENESIS: Final = b""
_ROW_EVENTS: Final = 65_536
"""The most events of one stream in one row of ``journal_batches`` (a write with more
takes several rows); the schema allows 2**24, the place kept in an event's position."""
_POSITION_BITS: Final = 24
"""An event's position is its row's id shifted left by this, plus its 1-based place in
the row: ``journal_position`` in ``migrations/0009_journal_batches.sql``."""
_Columns = tuple[list[str], list[int], list[int], list[str], list[str], list[bytes]]
"""The arguments of ``journal_append`` after its lock key: per row its stream, first seq,
count of events, its events' types and payload texts, each joined by newlines (which
canonical JSON never holds), and its events' hashes one after another
(``migrations/0013_journal_rows_as_texts.sql``)."""


_TIPS: Final = """
SELECT s.stream, b.last_seq AS seq, b.hash
FROM unnest($1::text[]) AS s(stream)
LEFT JOIN LATERAL (
    SELECT last_seq, substring(hashes FROM octet_length(hashes) - 31) AS hash
    FROM journal_batches
    WHERE journal_batches.stream = s.stream ORDER BY last_seq DESC LIMIT 1
) AS b ON true
"""

_APPEND: Final = "SELECT journal_append($1, $2, $3, $4, $5, $6, $7)"


def _link(previous: bytes, name: str, text: str) -> bytes:
    return hashlib.sha256(previous + name.encode() + text.encode()).digest()


async def _aio_append(
    pool: asyncpg.Pool,
    records: list[tuple[str, list[Journaled]]],
    known: dict[str, tuple[int, bytes]],
) -> None:
    """Append in one statement; ``known`` holds the tips of streams as this
    journal last committed them, and is brought up to date once this commits.

    The tips come from ``known`` or a read before the statement, not under the
    lock: ``journal_append`` checks under it that every row follows on from its
    stream's last seq, so a tip that another writer moved meanwhile is refused,
    not chained from.
    """
    encoded = _encode(records)
    streams = list(dict.fromkeys(stream for stream, _, _ in encoded))
    async with pool.acquire() as connection:
        tips = {stream: known[stream] for stream in streams if stream in known}
        if len(tips) < len(streams):
            missing = [stream for stream in streams if stream not in tips]
            for row in await connection.fetch(_TIPS, missing):
                tips[row["stream"]] = (row["seq"] or 0, row["hash"] or _GENESIS)
        if any(
            events[0].seq <= tips[stream][0] for stream, events, _ in encoded
        ) and await _already_written(connection, encoded):
            return
        # One round trip, committed on its own: each one more (BEGIN, the lock, COPY's
        # two, COMMIT) waited for this thread's turn at the interpreter lock.
        await connection.execute(_APPEND, _LOCK_KEY, *_columns(encoded, tips))
    known.update(tips)


_Encoded = list[tuple[str, list[Journaled], list[tuple[str, str]]]]
"""Per stream, its events and their type names and payload texts."""


def _encode(records: list[tuple[str, list[Journaled]]]) -> _Encoded:
    return [(stream, events, list(map(codec.encode_text, events))) for stream, events in records]


def _columns(encoded: _Encoded, tips: dict[str, tuple[int, bytes]]) -> _Columns:
    """The rows of ``encoded``, each event linked to the one before it from ``tips``.

    Moves ``tips`` on to the last event of each stream; raises ``JournalConflict``
    if a stream's seqs do not follow on from its tip without a gap.
    """
    streams: list[str] = []
    firsts: list[int] = []
    counts: list[int] = []
    types: list[str] = []
    payloads: list[str] = []
    hashes: list[bytes] = []
    for stream, events, texts in encoded:
        names: list[str] = []
        bodies: list[str] = []
        links: list[bytes] = []
        last, previous = tips[stream]
        for event, (name, text) in zip(events, texts, strict=True):
            seq = event.seq
            if seq != last + 1:
                raise JournalConflict(f"{stream}: seq {seq} does not follow {last}")
            previous = _link(previous, name, text)
            names.append(name)
            bodies.append(text)
            links.append(previous)
            last = seq
        tips[stream] = (last, previous)
        for start in range(0, len(events), _ROW_EVENTS):
            end = start + _ROW_EVENTS
            streams.append(stream)
            firsts.append(events[start].seq)
            counts.append(min(_ROW_EVENTS, len(events) - start))
            types.append("\n".join(names[start:end]))
            payloads.append("\n".join(bodies[start:end]))
            hashes.append(b"".join(links[start:end]))
    return streams, firsts, counts, types, payloads, hashes


def _position(batch: int, n: int) -> int:
    """The position of the ``n``th event (from 1) of row ``batch``."""
    return (batch << _POSITION_BITS) + n


def _events(first_seq: int, types: str, payloads: str) -> Iterator[tuple[int, str, str]]:
    """The seq, type and payload text of each event of one row (its texts split).

    Raises ``JournalError`` if the row holds more types than payloads or fewer:
    the table checks the count of its types, not of its payloads.
    """
    names = types.split("\n")
    texts = payloads.split("\n")
    if len(names) != len(texts):
        raise JournalError(
            f"journal row at seq {first_seq}: {len(names)} types but {len(texts)} payloads"
        )
    return zip(itertools.count(first_seq), names, texts)


def _links(hashes: bytes) -> list[bytes]:
    """The 32-byte links of one row, in order."""
    return [hashes[i : i + 32] for i in range(0, len(hashes), 32)]


async def _already_written(connection: Connection, encoded: _Encoded) -> bool:
    """Whether every event of the batch is already in the journal, exactly as given.

    Then the batch was committed before (its caller did not hear of it) and
    writing nothing is the right answer. If only some are, or different ones,
    the batch conflicts with what is there; the caller raises.
    """
    for stream, events, texts in encoded:
        first, last = events[0].seq, events[-1].seq
        stored = {
            seq: (name, payload)
            for row in await connection.fetch(
                "SELECT first_seq, types, payloads FROM journal_batches"
                " WHERE stream = $1 AND last_seq >= $2 AND first_seq <= $3 ORDER BY last_seq",
                stream,
                first,
                last,
            )
            for seq, name, payload in _events(*row)
        }
        for event, (name, text) in zip(events, texts, strict=True):
            if event.seq not in stored:
                return False
            stored_name, payload = stored[event.seq]
            if stored_name != name or codec.dumps(codec.loads(payload)) != text:
                return False
    return True


async def _aio_streams(pool: asyncpg.Pool) -> list[str]:
    # A loose index scan: one probe of the (stream, seq) index per stream,
    # rather than reading every row as DISTINCT would.
    rows = await pool.fetch(
        """
        WITH RECURSIVE s(stream) AS (
            (SELECT stream FROM journal_batches ORDER BY stream LIMIT 1)
            UNION ALL
            SELECT (SELECT j.stream FROM journal_batches j WHERE j.stream > s.stream
                    ORDER BY j.stream LIMIT 1)
            FROM s WHERE s.stream IS NOT NULL
        )
        SELECT stream FROM s WHERE stream IS NOT NULL
        """
    )
    return [row["stream"] for row in rows]


async def _aio_read(pool: asyncpg.Pool, stream: str, after_seq: int) -> list[Journaled]:
    rows = await pool.fetch(
        "SELECT first_seq, types, payloads FROM journal_batches"
        " WHERE stream = $1 AND last_seq > $2 ORDER BY last_seq",
        stream,
        after_seq,
    )
    decode = codec.decode_text
    return [
        decode(name, payload)
        for row in rows
        for seq, name, payload in _events(*row)
        if seq > after_seq
    ]


async def _aio_read_all(pool: asyncpg.Pool) -> list[tuple[str, Journaled]]:
    events, _ = await _aio_read_since(pool, 0)
    return events


async def _aio_read_since(
    pool: asyncpg.Pool, position: int
) -> tuple[list[tuple[str, Journaled]], int]:
    rows = await pool.fetch(
        "SELECT id, stream, types, payloads FROM journal_batches WHERE id >= $1 ORDER BY id",
        position >> _POSITION_BITS,
    )
    decode = codec.decode_text
    events = [
        (stream, decode(name, payload))
        for batch, stream, types, payloads in rows
        for n, name, payload in _events(1, types, payloads)
        if _position(batch, n) > position
    ]
    return events, _position(rows[-1][0], rows[-1][2].count("\n") + 1) if rows else position


async def _aio_verify_chain(pool: asyncpg.Pool) -> tuple[str, int] | None:
    tips: dict[str, tuple[int, bytes]] = {}
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        cursor = connection.cursor(
            "SELECT stream, first_seq, types, payloads, hashes FROM journal_batches ORDER BY id",
            prefetch=50,  # rows of up to thousands of events each
        )
        async for stream, first_seq, types, payloads, hashes in cursor:
            last, previous = tips.get(stream, (0, _GENESIS))
            try:
                events = _events(first_seq, types, payloads)
            except JournalError:
                return stream, int(first_seq)
            for (seq, name, payload), stored in zip(events, _links(hashes), strict=True):
                if seq != last + 1:
                    return stream, int(seq)
                try:
                    text = codec.dumps(codec.loads(payload))
                except codec.CodecError:
                    return stream, int(seq)
                if _link(previous, name, text) != stored:
                    return stream, int(seq)
                last, previous = seq, stored
            tips[stream] = (last, previous)
    return None
