"""When PostgreSQL is gone, the journal says ``StorageUnavailable``, promptly, and recovers."""

from __future__ import annotations

import os
import signal
import socket

import pytest
import trio

from tests.conftest import sql
from trading_engine.core.enums import Side
from trading_engine.core.events import BookLevel
from trading_engine.core.ids import Symbol
from trading_engine.storage.journal import StorageUnavailable
from trading_engine.storage.local_pg import LocalPostgres
from trading_engine.storage.postgres import open_postgres_journal
from trading_engine.storage.postgres.errors import JournalConflict

BTC = Symbol("BTC_AIT")


def level(seq: int) -> BookLevel:
    return BookLevel(seq, seq, BTC, Side.BUY, 100, seq)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_dsn_to_a_closed_port_is_unavailable_at_once() -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres"
    with trio.fail_after(5), pytest.raises(StorageUnavailable, match="unavailable"):
        async with open_postgres_journal(dsn):
            pass  # pragma: no cover - never reached


async def test_a_server_that_never_answers_is_unavailable_after_the_connect_timeout() -> None:
    """A listener that accepts but never speaks (a hung server) must not hang the caller."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with trio.fail_after(5), pytest.raises(StorageUnavailable, match="Timeout"):
            async with open_postgres_journal(dsn, connect_timeout=0.3):
                pass  # pragma: no cover - never reached
    finally:
        for listener in listeners:
            await listener.aclose()


async def test_a_stopped_server_makes_appends_unavailable_until_it_is_back(
    own_server: LocalPostgres,
) -> None:
    with trio.fail_after(30):
        async with open_postgres_journal(own_server.dsn, max_size=2) as journal:
            await journal.append([(BTC, [level(1)])])
            await trio.to_thread.run_sync(own_server.stop)
            with pytest.raises(StorageUnavailable):
                await journal.append([(BTC, [level(2)])])
            with pytest.raises(StorageUnavailable):
                await journal.read_all()
            with pytest.raises(StorageUnavailable):
                await journal.streams()

            await trio.to_thread.run_sync(own_server.start)
            # As the journal actor does: retry until the write goes through.
            for _ in range(50):
                try:
                    await journal.append([(BTC, [level(2)])])
                    break
                except StorageUnavailable:
                    await trio.sleep(0.05)
            assert await journal.read(BTC) == [level(1), level(2)]


async def test_a_backend_that_stops_answering_is_unavailable_after_the_command_timeout(
    own_server: LocalPostgres,
) -> None:
    with trio.fail_after(20):
        async with open_postgres_journal(
            own_server.dsn, min_size=1, max_size=1, command_timeout=0.5
        ) as journal:
            await journal.append([(BTC, [level(1)])])
            # The pool's only connection; freeze its server process.
            rows = await sql(
                own_server.dsn,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            )
            assert len(rows) == 1
            pid = rows[0]["pid"]
            os.kill(pid, signal.SIGSTOP)
            try:
                with pytest.raises(StorageUnavailable):
                    await journal.append([(BTC, [level(2)])])
            finally:
                os.kill(pid, signal.SIGCONT)
            # The pool replaces the connection it gave up on. The write it gave up on may
            # still have committed once the server ran again (its outcome was unknown):
            # writing it again then conflicts, and it is there once either way.
            for _ in range(50):
                try:
                    await journal.append([(BTC, [level(2)])])
                    break
                except StorageUnavailable:
                    await trio.sleep(0.05)
                except JournalConflict:
                    break
            assert await journal.read(BTC) == [level(1), level(2)]


async def test_cancelling_an_open_under_way_returns_at_once() -> None:
    """The Trio side is never held hostage by a connection attempt that hangs."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with trio.fail_after(5), trio.move_on_after(0.2) as scope:
            async with open_postgres_journal(dsn, connect_timeout=60):
                pass  # pragma: no cover - never reached
        assert scope.cancelled_caught
    finally:
        for listener in listeners:
            await listener.aclose()
