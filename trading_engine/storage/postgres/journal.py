"""``PostgresJournal``: the journal port on PostgreSQL, and ``open_postgres_journal``.

The class holds the pool and the stream tips and keeps the read tables caught up; what
it runs on the bridge's asyncio loop is in the sibling modules (``log.py``,
``snapshots.py``, ``tables.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager, suppress
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import asyncpg
import asyncpg.exceptions
import trio

from trading_engine.core.events import Journaled
from trading_engine.errors import TradingEngineError
from trading_engine.storage.bridge import Bridge, BridgeClosed, open_bridge
from trading_engine.storage.journal import Snapshot, StorageUnavailable
from trading_engine.storage.migrate import migrate
from trading_engine.storage.postgres.errors import (
    _DRIVER_ERRORS,
    Backlog,
    JournalError,
    ReadTablesBehind,
    _translate,
)
from trading_engine.storage.postgres.log import (
    _aio_append,
    _aio_read,
    _aio_read_all,
    _aio_read_since,
    _aio_streams,
    _aio_verify_chain,
)
from trading_engine.storage.postgres.snapshots import (
    SNAPSHOT_CHUNK_SIZE,
    _aio_load_snapshot,
    _aio_save_snapshot,
)
from trading_engine.storage.postgres.tables import (
    _aio_backlog,
    _aio_order_fills,
    _aio_order_history,
    _aio_ping,
    _aio_project,
    _aio_read_tables,
    _aio_trade,
    _aio_trade_history,
)
from trading_engine.storage.read_tables import EVERYTHING, TradeDetails, Window

if TYPE_CHECKING:
    pass

__all__ = ["PostgresJournal", "open_postgres_journal"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


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

    async def _follow_backlog(self, every: float) -> None:
        """Read-only: take the read tables' lag from the database every ``every`` seconds,
        as the engine that projects them leaves it."""
        while True:
            await trio.sleep(every)
            try:
                backlog = await self.backlog()
            except StorageUnavailable:
                continue
            self.projected_id = backlog.projected_id
            self._unprojected_since = None
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
        self, user_id: str, *, before: int | None, limit: int, window: Window = EVERYTHING
    ) -> list[dict[str, Any]]:
        """``user_id``'s orders in ``window`` from the read tables, newest first (or
        oldest, as ``window`` says), with ids below ``before``."""
        return await self._call(_aio_order_history, self._pool, user_id, before, limit, window)

    async def trade_history(
        self,
        user_id: str,
        *,
        before: tuple[Decimal, str, int, str] | None,
        limit: int,
        window: Window = EVERYTHING,
    ) -> list[dict[str, Any]]:
        """``user_id``'s fills (a trade as maker, as taker, or both for a self-trade) in
        ``window`` from the read tables, newest first (or oldest, as ``window`` says),
        after the cursor ``before``: (seconds, symbol, trade id, role) of the last fill
        of the previous page."""
        return await self._call(_aio_trade_history, self._pool, user_id, before, limit, window)

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
    read_only: bool = False,
) -> AsyncIterator[PostgresJournal]:
    """Connect a pool to ``dsn``, apply pending migrations, and yield the journal.

    While it is open, the read tables follow the journal, at most
    ``project_every`` seconds behind (``PostgresJournal.project``); with None
    they are projected only when asked (``project``, ``read_tables``).

    ``read_only``: for a reader beside the engine (a gateway's history): every
    session is read-only (``default_transaction_read_only``, so any write fails in
    the server), nothing is migrated or projected, and the read tables' lag is
    taken from the database every ``project_every`` seconds (or once).

    Runs its own bridge unless given one. ``connect_timeout`` bounds each
    connection attempt and ``command_timeout`` each statement, so that a
    server that stops answering gives ``StorageUnavailable`` rather than a
    hang. Raises ``StorageUnavailable`` if the server can't be reached now.
    """
    async with _maybe_bridge(bridge) as the_bridge:
        try:
            pool = await the_bridge.call(
                _aio_open_pool, dsn, min_size, max_size, connect_timeout, command_timeout,
                read_only,
            )  # fmt: skip
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc
        journal = PostgresJournal(the_bridge, pool)
        try:
            await journal._take_backlog()
            async with trio.open_nursery() as nursery:
                if project_every is not None and read_only:
                    nursery.start_soon(journal._follow_backlog, project_every)
                elif project_every is not None:
                    journal._appended.set()  # whatever an earlier run left unprojected
                    nursery.start_soon(journal._keep_projecting, project_every)
                yield journal
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), suppress(BridgeClosed):
                if project_every is not None and not read_only:
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


async def _aio_open_pool(
    dsn: str,
    min_size: int,
    max_size: int,
    connect_timeout: float,
    command_timeout: float,
    read_only: bool = False,
) -> asyncpg.Pool:
    pool = asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        command_timeout=command_timeout,
        server_settings={"default_transaction_read_only": "on"} if read_only else None,
    )
    try:
        await pool  # connects min_size connections
        if not read_only:
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
