"""The journal in PostgreSQL: ``PostgresJournal`` and ``open_postgres_journal(dsn)``.

One table, ``journal_batches`` (see ``migrations/0009_journal_batches.sql``
and ``0013_journal_rows_as_texts.sql``): one row per stream and write, ``id``
the global commit order, the events of seqs ``first_seq`` to ``last_seq``
side by side (their type names and their fields in ``payloads`` as ``codec``
writes them, each joined by newlines, which canonical JSON never holds, and
their hashes one after another), and a hash chain per stream::

    hash(n) = sha256(hash(n - 1) || type || payload text)    hash(0) = b""

where the payload text is ``codec.dumps`` of the fields: canonical JSON, so
the chain can be recomputed from what the database returns. ``verify_chain``
does that and names the first event that does not fit: an edited payload, an
edited hash, a row deleted in the middle of a stream. (``append`` makes the
text with ``codec.encode_text``: the same text, several times faster.) The
view ``journal`` has one row per event, as the table of that name had before
0009; its ``id`` is an event's position, ``_position(row id, place in row)``,
which grows in commit order; ``read_since`` and snapshots count in positions.

``append`` writes a batch with one statement, ``journal_append``, that takes
each row as it is stored (a few long values cost the driver far less to send
than arrays of thousands of elements, and the server far less to store than
to split): it takes an advisory lock (so that ids follow commit order even if
two writers ever race), checks that each row follows on from its stream's
last seq with no gap, and inserts the rows; the statement commits on its own.
The table checks each row's count of types and length of hashes; its payloads
are counted where they are split, on reading (``JournalError``).
It is idempotent: a batch that is already there, event for event (a retry
after a commit whose acknowledgement was lost, or a Trio-side cancellation
that the database still committed), is accepted without writing again.

The journal keeps the stream tips it committed (to chain the hashes from),
so an append is that one statement; after any failure it reads them again.
While open it also keeps the read tables (``migrations/0002_read_tables.sql``)
caught up: after appends, at most every ``project_every`` seconds, a task calls
``project_pending()`` on another connection, beside the next append rather
than in front of it. ``project()`` catches them up on demand. The read tables
hold every amount as ``numeric`` (``migrations/0014_read_table_fees_numeric.sql``):
the engine's ints have no bound. ``read_tables_lag()`` is the age of the oldest
commit they lack, taken from the database on opening, so that it tells the truth
while a projection keeps failing, across restarts too.

Snapshots (``migrations/0003_snapshots.sql``) are kept with the chain hash
of each stream's tip, so ``load_snapshot`` takes one only if the journal
still holds the same history up to its position. Their state is stored in
chunks (``migrations/0008_snapshot_chunks.sql``), so that it is never one
value of a gigabyte or more, and one with a chunk missing is never used.

asyncpg runs on the asyncio loop of a ``Bridge``; the functions named
``_aio_*`` run there and nowhere else. Errors are translated here, at the
boundary::

    TradingEngineError
    ├── StorageUnavailable        the server is unreachable, shutting down, out of
    │                             connections, or the pool/bridge is closed; nothing of
    │                             the failed call was written (or, for a commit whose
    │                             answer was lost, a retry finds it written)
    └── JournalError              the database refused the call for another reason
        ├── JournalConflict       a batch does not follow its stream's last seq, or
        │                         another writer took those seqs
        └── ReadTablesBehind      the read tables lack commits and projecting them fails
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import asyncpg.exceptions
import attrs
import trio

from trading_engine.core.events import Journaled
from trading_engine.errors import TradingEngineError
from trading_engine.storage import codec
from trading_engine.storage.bridge import Bridge, BridgeClosed, open_bridge
from trading_engine.storage.journal import Snapshot, StorageUnavailable
from trading_engine.storage.migrate import migrate
from trading_engine.storage.read_tables import TradeDetails

if TYPE_CHECKING:
    from trading_engine.storage.migrate import Connection

__all__ = [
    "SNAPSHOT_CHUNK_SIZE",
    "Backlog",
    "JournalConflict",
    "JournalError",
    "PostgresJournal",
    "ReadTablesBehind",
    "open_postgres_journal",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_LOCK_KEY: Final = 0x7E_10_A1
"""The advisory lock that serializes appends (any constant unique to this table)."""
_GENESIS: Final = b""
_ROW_EVENTS: Final = 65_536
"""The most events of one stream in one row of ``journal_batches`` (a write with more
takes several rows); the schema allows 2**24, the place kept in an event's position."""
_POSITION_BITS: Final = 24
"""An event's position is its row's id shifted left by this, plus its 1-based place in
the row: ``journal_position`` in ``migrations/0009_journal_batches.sql``."""
SNAPSHOT_CHUNK_SIZE: Final = 4 * 2**20
"""The most bytes of a snapshot's state in one row of ``snapshot_chunks``. Each side
holds a whole chunk while it sends or receives it, so this bounds that, not the state.
Measured with a 100 MB state, 1 to 4 MB chunks saved and loaded fastest (0.7-0.8 and
0.2 s); 32 MB ones took 1.1 and 0.45 s. 4 MB rather than 1 MB: a quarter of the rows
and of the round trips a load makes (it fetches one chunk at a time)."""
_CHUNKS_PER_COPY: Final = 64
"""Chunks written by one COPY: 256 MB of 4 MB chunks, a few seconds at most."""

_Columns = tuple[list[str], list[int], list[int], list[str], list[str], list[bytes]]
"""The arguments of ``journal_append`` after its lock key: per row its stream, first seq,
count of events, its events' types and payload texts, each joined by newlines (which
canonical JSON never holds), and its events' hashes one after another
(``migrations/0013_journal_rows_as_texts.sql``)."""


class JournalError(TradingEngineError):
    """Raised when PostgreSQL refuses a journal call for a reason other than reachability."""

    code = "journal_error"


class ReadTablesBehind(JournalError):
    """Raised when the read tables lack commits of the journal and projecting them fails.

    The journal is unharmed: every commit is there, and the projection is retried.
    """

    code = "read_tables_behind"


@attrs.frozen
class Backlog:
    """How far the read tables are behind the journal."""

    projected_id: int
    """Every journal id up to this one is in the read tables."""
    last_id: int
    """The journal's last id."""
    oldest_ts: int | None
    """When the oldest event not in the read tables happened (ns since the epoch), if any."""


class JournalConflict(JournalError):
    """Raised when a batch does not follow on from its stream's last event.

    A gap or an overlap in ``seq``, or another writer that took the same
    seqs first. Nothing of the batch was written.
    """

    code = "journal_conflict"


class PostgresJournal:
    """The ``Journal`` port on PostgreSQL; open one with ``open_postgres_journal``."""

    def __init__(self, bridge: Bridge, pool: asyncpg.Pool) -> None:
        self._bridge = bridge
        self._pool = pool
        self._appended = trio.Event()
        """Set by each append: the read tables have something to catch up on."""
        self._tips: dict[str, tuple[int, bytes]] = {}
        """The last seq and hash of each stream this journal wrote, as committed:
        appends skip reading them back. Emptied when an append fails."""
        self._unprojected_since: float | None = None
        """When the oldest commit not yet in the read tables was made (monotonic), if any;
        set from the database on opening, for what an earlier run left unprojected."""
        self._projecting: list[float] = []
        """The ``_unprojected_since`` that each projection under way took over: its
        commits are not in the read tables until it commits."""
        self.projection_failures = 0
        """Projections that failed (and were retried), for /metrics."""
        self.projected_id = 0
        """The last journal id in the read tables, as of opening or the last projection."""

    async def append(self, batch: Sequence[tuple[str, Sequence[Journaled]]]) -> None:
        """Make every event of ``batch`` durable in one transaction, all or none.

        Raises ``JournalConflict`` if a stream's events don't follow its last
        seq without a gap, ``StorageUnavailable`` if the server can't be
        reached, ``codec.CodecError`` for an event the codec doesn't know.
        """
        records = [(stream, list(events)) for stream, events in batch if events]
        if records:
            try:
                await self._call(_aio_append, self._pool, records, self._tips)
            except BaseException:
                self._tips.clear()  # committed or not, and by whom: read them again
                raise
            if self._unprojected_since is None:
                self._unprojected_since = time.monotonic()
            self._appended.set()

    async def ping(self) -> None:
        """Raise ``StorageUnavailable`` unless the server answers a query now."""
        await self._call(_aio_ping, self._pool)

    async def project(self) -> int:
        """Bring the read tables up to every committed event; returns the last id in them.

        ``open_postgres_journal`` runs this after each append on its own (on
        another connection, beside the next append); call it to read the
        tables with nothing left out.
        """
        since, self._unprojected_since = self._unprojected_since, None
        if since is not None:
            self._projecting.append(since)
        try:
            last: int = await self._call(_aio_project, self._pool)
        except BaseException:
            if since is not None:  # older than any commit made while this one ran
                self._unprojected_since = since
            raise
        finally:
            if since is not None:
                self._projecting.remove(since)
        self.projected_id = last
        return last

    def read_tables_lag(self) -> float:
        """Seconds since the oldest commit that the read tables lack was made: 0 when they
        hold every commit, and growing, across restarts too, while projecting fails."""
        pending = [t for t in (self._unprojected_since, *self._projecting) if t is not None]
        return time.monotonic() - min(pending) if pending else 0.0

    async def backlog(self) -> Backlog:
        """How far the read tables are behind the journal, as the database says now."""
        projected, last, oldest = await self._call(_aio_backlog, self._pool)
        return Backlog(projected, last, oldest)

    async def _take_backlog(self) -> None:
        """Start the lag from what the read tables lack, as an earlier run left them."""
        backlog = await self.backlog()
        self.projected_id = backlog.projected_id
        if backlog.oldest_ts is not None:
            age = max(0.0, time.time() - backlog.oldest_ts / 1e9)
            self._unprojected_since = time.monotonic() - age

    async def _keep_projecting(self, every: float) -> None:
        """Catch the read tables up after appends, at most once every ``every`` seconds:
        one projection of many commits costs the database far less than one each."""
        while True:
            await self._appended.wait()
            self._appended = trio.Event()
            try:
                await self.project()
                await trio.sleep(every)
            except StorageUnavailable:
                self.projection_failures += 1
                await trio.sleep(0.5)
                self._appended.set()
            except JournalError:
                self.projection_failures += 1
                log.exception("projecting the journal into the read tables failed; retrying")
                await trio.sleep(5.0)
                self._appended.set()

    async def streams(self) -> list[str]:
        """The names of every stream that has events, sorted."""
        return sorted(await self._call(_aio_streams, self._pool))

    async def read(self, stream: str, after_seq: int = 0) -> list[Journaled]:
        """The events of ``stream`` with ``seq > after_seq``, in order."""
        return await self._call(_aio_read, self._pool, stream, after_seq)

    async def read_all(self) -> list[tuple[str, Journaled]]:
        """Every event of every stream, in commit order."""
        return await self._call(_aio_read_all, self._pool)

    async def read_since(self, position: int = 0) -> tuple[list[tuple[str, Journaled]], int]:
        """The events after journal id ``position``, in commit order, and the last id read."""
        return await self._call(_aio_read_since, self._pool, position)

    async def save_snapshot(
        self, snapshot: Snapshot, *, chunk_size: int = SNAPSHOT_CHUNK_SIZE
    ) -> None:
        """Store ``snapshot`` with its tips' hashes, its state in chunks of ``chunk_size``
        bytes, all in one transaction; keep it and the one before it.

        Raises ``JournalError`` if the journal does not hold its tips up to its position.
        """
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, not {chunk_size}")
        await self._call(_aio_save_snapshot, self._pool, snapshot, chunk_size)

    async def load_snapshot(self, version: str) -> Snapshot | None:
        """The newest snapshot of ``version`` whose tips (seq and hash) the journal holds
        and whose chunks are all there; its state is a ``bytearray``."""
        return await self._call(_aio_load_snapshot, self._pool, version)

    async def order_history(
        self, user_id: str, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """``user_id``'s orders from the read tables, newest first, with ids below ``before``."""
        return await self._call(_aio_order_history, self._pool, user_id, before, limit)

    async def trade_history(
        self, user_id: str, *, before: tuple[Decimal, str, int, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """``user_id``'s fills (a trade as maker, as taker, or both for a self-trade) from
        the read tables, newest first, after the cursor ``before``: (seconds, symbol,
        trade id, role) of the last fill of the previous page."""
        return await self._call(_aio_trade_history, self._pool, user_id, before, limit)

    async def order_fills(
        self, user_id: str, orders: Sequence[tuple[int, int, int]]
    ) -> list[dict[str, Any]]:
        """The fills of ``user_id``'s ``orders`` (order id, and the times, in ns, of its
        creation and its last change) from the read tables: each trade's symbol,
        trade_id, price (ticks), quantity (lots), aggressor, both sides' orders, users
        and fees, and ts (ns, to the microsecond), by symbol and trade id."""
        return await self._call(_aio_order_fills, self._pool, user_id, orders)

    async def read_tables(self) -> dict[str, Any]:
        """What the read tables say, summed up for ``trading-engine audit`` to check:
        ``balances`` per ``(account, asset)`` (minor units, zeros left out),
        ``trades`` and ``unsettled`` counts, and ``orders`` counted by status;
        caught up with the journal first.

        Raises ``ReadTablesBehind`` if they can't be caught up (the projection fails).
        """
        try:
            await self.project()
        except JournalError as exc:
            behind = await self._behind()
            if behind is None:
                raise
            raise ReadTablesBehind(f"{behind}, and projecting failed: {exc}") from exc
        return await self._call(_aio_read_tables, self._pool)

    async def _behind(self) -> str | None:
        """How far behind the journal the read tables are, in words; None if they aren't."""
        try:
            backlog = await self.backlog()
        except TradingEngineError:
            return "the read tables could not be caught up with the journal"
        if backlog.oldest_ts is None:
            return None
        age = max(0.0, time.time() - backlog.oldest_ts / 1e9)
        return (
            f"the read tables are behind the journal: they hold it up to id"
            f" {backlog.projected_id} of {backlog.last_id}, the oldest commit they lack"
            f" is {age:.0f} s old"
        )

    async def trade(self, symbol: str, trade_id: int) -> TradeDetails | None:
        """A trade's price (ticks), quantity (lots), buyer, seller and ts (ns, to the
        microsecond) from the read tables, or None if they don't have it (yet)."""
        return await self._call(_aio_trade, self._pool, symbol, trade_id)

    async def verify_chain(self) -> tuple[str, int] | None:
        """The ``(stream, seq)`` of the first row (in commit order) that breaks its
        stream's hash chain or seq sequence, or None if every stream checks out.

        A row removed from the end of a stream leaves no trace in a chain;
        one removed from the middle shows as a gap at the row after it.
        """
        return await self._call(_aio_verify_chain, self._pool)

    async def _call(
        self, fn: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            return await self._bridge.call(fn, *args, **kwargs)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc


@asynccontextmanager
async def open_postgres_journal(
    dsn: str,
    *,
    bridge: Bridge | None = None,
    min_size: int = 1,
    max_size: int = 4,
    connect_timeout: float = 5.0,
    command_timeout: float = 30.0,
    project_every: float | None = 0.1,
) -> AsyncIterator[PostgresJournal]:
    """Connect a pool to ``dsn``, apply pending migrations, and yield the journal.

    While it is open, the read tables follow the journal, at most
    ``project_every`` seconds behind (``PostgresJournal.project``); with None
    they are projected only when asked (``project``, ``read_tables``).

    Runs its own bridge unless given one. ``connect_timeout`` bounds each
    connection attempt and ``command_timeout`` each statement, so that a
    server that stops answering gives ``StorageUnavailable`` rather than a
    hang. Raises ``StorageUnavailable`` if the server can't be reached now.
    """
    async with _maybe_bridge(bridge) as the_bridge:
        try:
            pool = await the_bridge.call(
                _aio_open_pool, dsn, min_size, max_size, connect_timeout, command_timeout
            )
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc
        journal = PostgresJournal(the_bridge, pool)
        try:
            await journal._take_backlog()
            async with trio.open_nursery() as nursery:
                if project_every is not None:
                    journal._appended.set()  # whatever an earlier run left unprojected
                    nursery.start_soon(journal._keep_projecting, project_every)
                yield journal
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), suppress(BridgeClosed):
                if project_every is not None:
                    with suppress(TradingEngineError), trio.move_on_after(command_timeout):
                        await journal.project()  # leave the read tables caught up
                await the_bridge.call(_aio_close_pool, pool, connect_timeout)


@asynccontextmanager
async def _maybe_bridge(bridge: Bridge | None) -> AsyncIterator[Bridge]:
    if bridge is not None:
        yield bridge
    else:
        async with open_bridge(name="postgres-journal") as own:
            yield own


# ---------------------------------------------------------------- error translation

_UNAVAILABLE: Final = (
    OSError,  # refused, reset, unreachable, and the socket errors under them
    TimeoutError,  # connect_timeout or command_timeout ran out
    BridgeClosed,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and a connection that is gone
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutting down, starting up, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    # The client's side of a connection the server dropped mid-command ("cannot switch
    # to state 12; another operation (2) is in progress"): the pool's reset on release
    # fails and terminates it, and the retry takes a fresh one.
    asyncpg.InternalClientError,
)


_DRIVER_ERRORS: Final = (*_UNAVAILABLE, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What ``_translate`` turns into ours; anything else (ours included) passes through as it is."""


def _translate(exc: Exception) -> TradingEngineError:
    """The package's own exception for a driver error (one of ``_DRIVER_ERRORS``)."""
    if isinstance(exc, _UNAVAILABLE):
        return StorageUnavailable(f"PostgreSQL is unavailable: {_describe(exc)}")
    if isinstance(exc, asyncpg.UniqueViolationError):
        return JournalConflict(f"another writer took these seqs first: {exc}")
    if isinstance(exc, asyncpg.InterfaceError) and _is_closed(exc):
        return StorageUnavailable(f"PostgreSQL is unavailable: {exc}")
    return JournalError(f"PostgreSQL refused the call: {_describe(exc)}")


def _is_closed(exc: asyncpg.InterfaceError) -> bool:
    # asyncpg has no subclass for these: "pool is closed", "pool is closing",
    # "connection is closed", "cannot perform operation: connection is closed".
    message = str(exc)
    return "closed" in message or "closing" in message


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# ---------------------------------------------------------------- on the asyncio loop


async def _aio_open_pool(
    dsn: str, min_size: int, max_size: int, connect_timeout: float, command_timeout: float
) -> asyncpg.Pool:
    pool = asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        command_timeout=command_timeout,
    )
    try:
        await pool  # connects min_size connections
        async with pool.acquire() as connection:
            await migrate(connection)
    except BaseException:
        # A failure, or a cancellation from the Trio side: leave no connection open.
        pool.terminate()
        raise
    return pool


async def _aio_close_pool(pool: asyncpg.Pool, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await pool.close()
    except _DRIVER_ERRORS:
        pool.terminate()


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


_MAX_ID: Final = (1 << 63) - 1

_ORDER_HISTORY: Final = """
SELECT order_id, symbol, client_order_id, side, type, time_in_force, price, stop_price,
       protection_price, quantity, filled, remaining, filled_value, status, reason,
       reduce_only, post_only,
       extract(epoch FROM created_at) AS created_at, extract(epoch FROM updated_at) AS updated_at
FROM orders WHERE user_id = $1 AND order_id < $2
ORDER BY order_id DESC LIMIT $3
"""

_TRADE_HISTORY: Final = """
SELECT * FROM (
    SELECT symbol, trade_id, price, quantity, aggressor, 'maker' AS role,
           maker_order_id AS order_id, maker_fee AS fee, settlement_status,
           extract(epoch FROM settled_at) AS settled_at, extract(epoch FROM executed_at) AS time
    FROM trades WHERE maker_user_id = $1
    UNION ALL
    SELECT symbol, trade_id, price, quantity, aggressor, 'taker',
           taker_order_id, taker_fee, settlement_status,
           extract(epoch FROM settled_at), extract(epoch FROM executed_at)
    FROM trades WHERE taker_user_id = $1
) AS fills
WHERE $2::numeric IS NULL OR (time, symbol, trade_id, role) < ($2, $3::text, $4::bigint, $5::text)
ORDER BY time DESC, symbol DESC, trade_id DESC, role DESC
LIMIT $6
"""


async def _aio_order_history(
    pool: asyncpg.Pool, user_id: str, before: int | None, limit: int
) -> list[dict[str, Any]]:
    before_id = _MAX_ID if before is None else before
    return [dict(row) for row in await pool.fetch(_ORDER_HISTORY, user_id, before_id, limit)]


async def _aio_trade_history(
    pool: asyncpg.Pool, user_id: str, before: tuple[Decimal, str, int, str] | None, limit: int
) -> list[dict[str, Any]]:
    cursor = before or (None, None, None, None)  # no cursor: from the newest
    rows = await pool.fetch(_TRADE_HISTORY, user_id, *cursor, limit)
    return [dict(row) for row in rows]


_ORDER_FILLS: Final = """
WITH o AS (SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS o(id, since, until))
SELECT t.symbol, t.trade_id, (t.price / i.tick_size)::bigint AS price,
       (t.quantity / i.lot_size)::bigint AS quantity, t.aggressor, t.maker_order_id,
       t.taker_order_id, t.maker_user_id, t.taker_user_id, t.maker_fee, t.taker_fee,
       (extract(epoch FROM t.executed_at) * 1000000)::bigint * 1000 AS ts
FROM (
    SELECT t.* FROM o JOIN trades t
        ON t.maker_user_id = $1 AND t.maker_order_id = o.id
       AND t.executed_at BETWEEN journal_time(o.since) AND journal_time(o.until)
    UNION ALL
    SELECT t.* FROM o JOIN trades t
        ON t.taker_user_id = $1 AND t.taker_order_id = o.id
       AND t.executed_at BETWEEN journal_time(o.since) AND journal_time(o.until)
) AS t JOIN instruments i ON i.symbol = t.symbol
ORDER BY t.symbol, t.trade_id
"""


async def _aio_order_fills(
    pool: asyncpg.Pool, user_id: str, orders: Sequence[tuple[int, int, int]]
) -> list[dict[str, Any]]:
    ids, since, until = ([o[n] for o in orders] for n in range(3))
    return [dict(row) for row in await pool.fetch(_ORDER_FILLS, user_id, ids, since, until)]


_TRADE: Final = """
SELECT round(t.price / i.tick_size) AS price, round(t.quantity / i.lot_size) AS quantity,
       CASE WHEN t.aggressor = 'buy' THEN t.taker_user_id ELSE t.maker_user_id END AS buyer,
       CASE WHEN t.aggressor = 'buy' THEN t.maker_user_id ELSE t.taker_user_id END AS seller,
       (extract(epoch FROM t.executed_at) * 1000000)::bigint * 1000 AS ts
FROM trades t JOIN instruments i ON i.symbol = t.symbol
WHERE t.symbol = $1 AND t.trade_id = $2
"""


async def _aio_trade(pool: asyncpg.Pool, symbol: str, trade_id: int) -> TradeDetails | None:
    row = await pool.fetchrow(_TRADE, symbol, trade_id)
    if row is None:
        return None
    # Ticks and lots as numeric: they are unbounded, as the engine's ints are.
    return TradeDetails(
        price=int(row["price"]), quantity=int(row["quantity"]), buyer=row["buyer"],
        seller=row["seller"], ts=row["ts"],
    )  # fmt: skip


async def _aio_ping(pool: asyncpg.Pool) -> None:
    await pool.fetchval("SELECT 1")


async def _aio_project(pool: asyncpg.Pool) -> int:
    last: int = await pool.fetchval("SELECT project_pending()")
    return last


_BACKLOG: Final = """
SELECT p.last_id AS projected,
       (SELECT journal_position(id, last_seq - first_seq + 1) FROM journal_batches
        ORDER BY id DESC LIMIT 1) AS last,
       (SELECT (split_part(b.payloads, E'\\n', CASE WHEN b.id = p.last_id >> 24
                                                    THEN (p.last_id & 16777215)::integer + 1
                                                    ELSE 1 END)::json ->> 'ts')::bigint
        FROM journal_batches b
        WHERE b.id >= p.last_id >> 24
          AND journal_position(b.id, b.last_seq - b.first_seq + 1) > p.last_id
        ORDER BY b.id LIMIT 1) AS oldest
FROM projection p
"""
"""The last id projected, the journal's last id, and the ts of the first event after the
last projected one: in the row that holds the last projected event, or the first after it."""


async def _aio_backlog(pool: asyncpg.Pool) -> tuple[int, int, int | None]:
    row = await pool.fetchrow(_BACKLOG)
    assert row is not None, "projection has its one row from 0002 on"
    return row["projected"], row["last"] or 0, row["oldest"]


async def _aio_read_tables(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        balances = await connection.fetch(
            "SELECT account, asset, amount FROM balances WHERE amount <> 0"
        )
        trades = await connection.fetchrow(
            "SELECT count(*) AS total,"
            " count(*) FILTER (WHERE settlement_status <> 'settled') AS unsettled FROM trades"
        )
        orders = await connection.fetch(
            "SELECT status, count(*), count(*) FILTER (WHERE reduce_only) AS reduce_only"
            " FROM orders GROUP BY status"
        )
    assert trades is not None
    return {
        "balances": {(r["account"], r["asset"]): int(r["amount"]) for r in balances},
        "trades": trades["total"],
        "unsettled": trades["unsettled"],
        "orders": {r["status"]: r["count"] for r in orders},
        "reduce_only_orders": {r["status"]: r["reduce_only"] for r in orders if r["reduce_only"]},
    }


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
