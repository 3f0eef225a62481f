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

The package's rooms: ``journal.py`` (the class and its opening), ``log.py``
(the rows: append, read, verify), ``snapshots.py``, ``tables.py`` (the read
tables), ``errors.py`` and ``admin.py`` (creating and dropping databases).
asyncpg runs on the asyncio loop of a ``Bridge``; the functions named
``_aio_*`` run there and nowhere else. Errors are translated at the boundary
(``errors.py``)::

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

from trading_engine.storage.postgres.admin import create_database, drop_database, with_database
from trading_engine.storage.postgres.errors import (
    Backlog,
    JournalConflict,
    JournalError,
    ReadTablesBehind,
)
from trading_engine.storage.postgres.journal import PostgresJournal, open_postgres_journal
from trading_engine.storage.postgres.snapshots import SNAPSHOT_CHUNK_SIZE

__all__ = [
    "SNAPSHOT_CHUNK_SIZE",
    "Backlog",
    "JournalConflict",
    "JournalError",
    "PostgresJournal",
    "ReadTablesBehind",
    "create_database",
    "drop_database",
    "open_postgres_journal",
    "with_database",
]
