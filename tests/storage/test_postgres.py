"""The PostgreSQL journal against a real server: round trips, atomicity, the hash chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
import trio

from tests.conftest import copy_journal, other_database, run_migrations, sql
from trading_engine.core.account_events import ACCOUNTS_STREAM, Deposited, UserCreated
from trading_engine.core.enums import OrderStatus, OrderType, Side
from trading_engine.core.events import BookLevel, Journaled, OrderAccepted
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.orders import OrderSpec
from trading_engine.errors import TradingEngineError
from trading_engine.storage.bridge import BridgeClosed
from trading_engine.storage.journal import StorageUnavailable
from trading_engine.storage.postgres import (
    JournalConflict,
    JournalError,
    PostgresJournal,
    open_postgres_journal,
)
from trading_engine.storage.postgres import errors as postgres_errors
from trading_engine.storage.postgres import log as postgres_log

BTC, ETH = Symbol("BTC_AIT"), Symbol("ETH_AIT")
TS = 1_767_225_600_000_000_000


def levels(symbol: Symbol, first: int, count: int) -> list[Journaled]:
    return [
        BookLevel(seq, TS + seq, symbol, Side.BUY, 100_000 - seq, seq)
        for seq in range(first, first + count)
    ]


def accounts(first: int, count: int) -> list[Journaled]:
    return [
        Deposited(seq, TS + seq, UserId(f"user-{seq}"), "AIT", 10**18 + seq)
        for seq in range(first, first + count)
    ]


async def test_append_then_read_and_read_all_give_the_events_back(database_url: str) -> None:
    spec = OrderSpec(OrderId(1), UserId("alice"), Side.BUY, OrderType.LIMIT, 3, 100_000)
    accepted = OrderAccepted(3, TS, BTC, spec, OrderStatus.OPEN)
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            assert await journal.streams() == []
            assert await journal.read_all() == []
            await journal.append(
                [(ACCOUNTS_STREAM, [UserCreated(1, TS, UserId("alice"), None, "h")])]
            )
            await journal.append([(BTC, levels(BTC, 1, 2)), (ACCOUNTS_STREAM, accounts(2, 2))])
            await journal.append([(BTC, [accepted]), (ETH, levels(ETH, 1, 1)), (ETH, [])])

            assert await journal.streams() == sorted([ACCOUNTS_STREAM, BTC, ETH])
            assert await journal.read(BTC) == [*levels(BTC, 1, 2), accepted]
            assert await journal.read(BTC, after_seq=2) == [accepted]
            assert await journal.read(BTC, after_seq=3) == []
            assert await journal.read(Symbol("NOPE_AIT")) == []
            assert await journal.read_all() == [
                (ACCOUNTS_STREAM, UserCreated(1, TS, UserId("alice"), None, "h")),
                *((BTC, e) for e in levels(BTC, 1, 2)),
                *((ACCOUNTS_STREAM, e) for e in accounts(2, 2)),
                (BTC, accepted),
                (ETH, levels(ETH, 1, 1)[0]),
            ]
            assert await journal.verify_chain() is None


async def test_text_with_line_breaks_is_kept_as_written(database_url: str) -> None:
    """An append sends a write's payloads joined by newlines (0010): a newline or
    carriage return in a field is escaped in the JSON, so it splits nowhere."""
    odd = UserCreated(1, TS, UserId("bob"), "two\nlines\r\n and \u2028 more\n", "h\n")
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([(ACCOUNTS_STREAM, [odd, *accounts(2, 2)])])
            await journal.append([(BTC, levels(BTC, 1, 2)), (ACCOUNTS_STREAM, accounts(4, 1))])
        async with open_postgres_journal(database_url) as journal:
            assert await journal.read(ACCOUNTS_STREAM) == [odd, *accounts(2, 3)]
            assert await journal.verify_chain() is None


async def test_an_append_whose_parts_do_not_match_its_counts_writes_nothing(
    database_url: str,
) -> None:
    """journal_append refuses a write whose rows' types or hashes do not come to the
    events their counts give, or whose per-row arguments differ in number."""
    with trio.fail_after(10):
        async with open_postgres_journal(database_url):
            pass
    link = "decode(repeat('00', 32), 'hex')"
    two = r"ARRAY[E'a\nb']"
    calls = [
        (r"ARRAY[E'a\nb\nc']", r"ARRAY[E'{}\n{}']", f"ARRAY[{link} || {link}]", "2"),
        (two, r"ARRAY[E'{}\n{}']", f"ARRAY[{link}]", "2"),
        (two, r"ARRAY[E'{}\n{}']", f"ARRAY[{link} || {link} || 'x']", "2"),
        (two, r"ARRAY[E'{}\n{}', '{}']", f"ARRAY[{link} || {link}]", "2"),
        (two, r"ARRAY[E'{}\n{}']", f"ARRAY[{link} || {link}]", "0"),
    ]  # a type too many, a link too few, a broken link, a payload row too many, no events
    for types, payloads, hashes, count in calls:
        with pytest.raises(asyncpg.PostgresError):
            await sql(
                database_url,
                "SELECT journal_append(1, ARRAY['BTC_AIT'], ARRAY[1::bigint],"
                f" ARRAY[{count}], {types}, {payloads}, {hashes})",
            )
        assert await sql(database_url, "SELECT count(*) FROM journal_batches") == [(0,)]
    await sql(
        database_url,
        "SELECT journal_append(1, ARRAY['BTC_AIT'], ARRAY[1::bigint], ARRAY[2],"
        rf" {two}, ARRAY[E'{{}}\n{{}}'], ARRAY[{link} || {link}])",
    )
    assert await sql(database_url, "SELECT types, payloads FROM journal_batches") == [
        ("a\nb", "{}\n{}")
    ]


async def test_a_row_whose_payloads_do_not_match_its_types_is_refused_on_reading(
    database_url: str,
) -> None:
    """The table counts a row's types, not its payloads (splitting them would cost each
    write): a row with a payload too many or too few is refused where it is read."""
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([(BTC, levels(BTC, 1, 3)), (ETH, levels(ETH, 1, 2))])
            await sql(
                database_url,
                "UPDATE journal_batches SET payloads = payloads || E'\\n{}'"
                " WHERE stream = 'BTC_AIT'",
            )
            assert await journal.read(ETH) == levels(ETH, 1, 2)
            with pytest.raises(JournalError, match="3 types but 4 payloads"):
                await journal.read(BTC)
            with pytest.raises(JournalError, match="3 types but 4 payloads"):
                await journal.read_all()
            assert await journal.verify_chain() == (BTC, 1)


async def test_one_stream_may_appear_twice_in_a_batch(database_url: str) -> None:
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([(BTC, levels(BTC, 1, 2)), (ETH, levels(ETH, 1, 1)),
                                  (BTC, levels(BTC, 3, 2))])  # fmt: skip
            assert await journal.read(BTC) == levels(BTC, 1, 4)
            assert await journal.verify_chain() is None


async def test_a_seq_gap_in_the_second_stream_writes_nothing_of_the_batch(
    database_url: str,
) -> None:
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([(BTC, levels(BTC, 1, 2)), (ETH, levels(ETH, 1, 2))])
            before = await journal.read_all()
            with pytest.raises(JournalConflict, match=r"ETH_AIT: seq 4 does not follow 2"):
                await journal.append([(BTC, levels(BTC, 3, 5)), (ETH, levels(ETH, 4, 1))])
            assert await journal.read_all() == before
            # A conflict is a TradingEngineError, as in the in-memory journal.
            with pytest.raises(TradingEngineError):
                await journal.append([(ETH, [BookLevel(2, TS, ETH, Side.SELL, 1, 1)])])
            await journal.append([(BTC, levels(BTC, 3, 1))])
            assert await journal.read(BTC) == levels(BTC, 1, 3)


async def test_a_stream_must_start_at_seq_one(database_url: str) -> None:
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            with pytest.raises(JournalConflict, match="seq 2 does not follow 0"):
                await journal.append([(BTC, levels(BTC, 2, 1))])
            assert await journal.streams() == []


async def test_a_batch_already_written_is_accepted_again_without_a_second_copy(
    database_url: str,
) -> None:
    """A retry after a commit whose answer was lost must not fail, nor duplicate."""
    batch: list[tuple[str, list[Journaled]]] = [
        (BTC, levels(BTC, 1, 3)),
        (ACCOUNTS_STREAM, accounts(1, 2)),
    ]
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            await journal.append(batch)
            await journal.append(batch)
            assert len(await journal.read_all()) == 5
            changed = [(BTC, [BookLevel(3, TS, BTC, Side.SELL, 1, 1)])]
            with pytest.raises(JournalConflict):
                await journal.append(changed)
            assert await journal.read(BTC) == levels(BTC, 1, 3)
            assert await journal.verify_chain() is None


async def test_a_large_batch_reads_back_in_order(database_url: str) -> None:
    count = 3001
    with trio.fail_after(20):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([(BTC, levels(BTC, 1, count)), (ETH, levels(ETH, 1, 3))])
            await journal.append([(BTC, levels(BTC, count + 1, 2))])
            assert await journal.read(BTC) == levels(BTC, 1, count + 2)
            log = await journal.read_all()
            assert [stream for stream, _ in log] == [BTC] * count + [ETH] * 3 + [BTC] * 2
            assert await journal.verify_chain() is None


async def test_a_write_takes_a_row_per_stream_and_splits_a_long_one(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_log, "_ROW_EVENTS", 1000)
    with trio.fail_after(20):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([(BTC, levels(BTC, 1, 2500)), (ETH, levels(ETH, 1, 3))])
            await journal.append([(ETH, levels(ETH, 4, 2))])
            rows = await sql(
                database_url, "SELECT stream, first_seq, last_seq FROM journal_batches ORDER BY id"
            )
            assert [tuple(row) for row in rows] == [
                (BTC, 1, 1000), (BTC, 1001, 2000), (BTC, 2001, 2500), (ETH, 1, 3), (ETH, 4, 5),
            ]  # fmt: skip
            log, position = await journal.read_since(0)
            assert [stream for stream, _ in log] == [BTC] * 2500 + [ETH] * 5
            assert position == (5 << 24) + 2, "row 5's second event"
            later, _ = await journal.read_since((3 << 24) + 499)  # BTC 2500, then ETH
            assert [(stream, event.seq) for stream, event in later] == [
                (BTC, 2500), (ETH, 1), (ETH, 2), (ETH, 3), (ETH, 4), (ETH, 5),
            ]  # fmt: skip
            assert await journal.read(BTC, after_seq=1999) == levels(BTC, 2000, 501)
            assert await journal.verify_chain() is None


@asynccontextmanager
async def _journal_as_0008_left_it(
    server_dsn: str, database_url: str
) -> AsyncIterator[tuple[list[tuple[str, Journaled]], str]]:
    """Ten events written in two batches, then their journal as an older build (up to
    migration 0008, one row per event) holds it, in another database: the events as
    read back, and that database's DSN."""
    async with open_postgres_journal(database_url) as journal:
        await journal.append([(BTC, levels(BTC, 1, 4)), (ACCOUNTS_STREAM, accounts(1, 2))])
        await journal.append([(ETH, levels(ETH, 1, 3)), (BTC, levels(BTC, 5, 1))])
        written = await journal.read_all()
    async with other_database(server_dsn, "journal_0008") as target:
        applied = await trio.to_thread.run_sync(lambda: run_migrations(target, upto=8))
        assert applied == [1, 2, 3, 4, 5, 6, 7, 8]
        await copy_journal(database_url, target)
        yield written, target


async def test_migration_0009_keeps_a_journal_of_one_row_per_event(
    server_dsn: str, database_url: str
) -> None:
    """A journal as 0008 left it: 0009 moves each event into a row of its own, in the
    same order; reads, the chain and the next appends carry on from them."""
    with trio.fail_after(30):
        async with _journal_as_0008_left_it(server_dsn, database_url) as (written, target):
            [(events,)] = await sql(target, "SELECT count(*) FROM journal")
            assert events == len(written) == 10
            assert await trio.to_thread.run_sync(lambda: run_migrations(target, upto=9)) == [9]
            async with open_postgres_journal(target) as journal:
                assert await journal.read_all() == written
                assert await journal.verify_chain() is None
                await journal.append([(BTC, levels(BTC, 6, 2))])
                assert await journal.read(BTC, after_seq=3) == levels(BTC, 4, 4)
                assert await journal.verify_chain() is None
                _, position = await journal.read_since(0)
                assert position == (11 << 24) + 2, "after the ten rows of one event"


async def test_migration_0013_joins_the_arrays_of_each_row(
    server_dsn: str, database_url: str
) -> None:
    """A journal as 0012 left it, each row's events in arrays: 0013 joins each row's
    types and payloads into texts and its hashes into one value; reads, positions, the
    chain and the next appends carry on from them."""
    with trio.fail_after(30):
        async with _journal_as_0008_left_it(server_dsn, database_url) as (written, target):
            applied = await trio.to_thread.run_sync(lambda: run_migrations(target, upto=12))
            assert applied == [9, 10, 11, 12]
            # 0009 gave each event a row; a write made under 0010 to 0012 held several.
            await sql(
                target,
                """
                CREATE TEMP TABLE merged AS
                SELECT min(id) AS id, stream, min(first_seq) AS first_seq,
                       max(last_seq) AS last_seq, array_agg(types[1] ORDER BY id) AS types,
                       array_agg(payloads[1] ORDER BY id) AS payloads,
                       array_agg(ts[1] ORDER BY id) AS ts,
                       array_agg(hashes[1] ORDER BY id) AS hashes
                FROM journal_batches GROUP BY stream
                """,
                "DELETE FROM journal_batches",
                "INSERT INTO journal_batches SELECT * FROM merged",
            )
            before = await sql(target, "SELECT * FROM journal ORDER BY id")
            assert len(before) == len(written) == 10
            assert await trio.to_thread.run_sync(lambda: run_migrations(target, upto=13)) == [13]
            assert await sql(target, "SELECT * FROM journal ORDER BY id") == before
            rows = await sql(
                target, "SELECT stream, types, octet_length(hashes) FROM journal_batches"
            )
            assert sorted(tuple(row) for row in rows) == [
                (ACCOUNTS_STREAM, "Deposited\nDeposited", 64),
                (BTC, "BookLevel\nBookLevel\nBookLevel\nBookLevel\nBookLevel", 160),
                (ETH, "BookLevel\nBookLevel\nBookLevel", 96),
            ]
            # A stream's row is where its first event was.
            merged = sorted(written, key=lambda event: [BTC, ACCOUNTS_STREAM, ETH].index(event[0]))
            async with open_postgres_journal(target) as journal:
                assert await journal.read_all() == merged
                assert await journal.verify_chain() is None
                await journal.append([(BTC, levels(BTC, 6, 2)), (ETH, levels(ETH, 4, 1))])
                assert await journal.read(BTC, after_seq=3) == levels(BTC, 4, 4)
                assert await journal.verify_chain() is None
                later = [(BTC, event) for event in levels(BTC, 6, 2)] + [(ETH, *levels(ETH, 4, 1))]
                events, position = await journal.read_since(0)
                assert events == [*merged, *later]
                assert await sql(target, "SELECT max(id) FROM journal") == [(position,)]


async def test_the_hash_chain_finds_an_edited_payload(database_url: str) -> None:
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([(BTC, levels(BTC, 1, 5)), (ACCOUNTS_STREAM, accounts(1, 3))])
            assert await journal.verify_chain() is None
            await sql(
                database_url,
                """
                UPDATE journal_batches SET payloads = (
                    SELECT string_agg(CASE WHEN n = 2
                                      THEN jsonb_set(p::jsonb, '{amount}', '1')::text
                                      ELSE p END, E'\\n' ORDER BY n)
                    FROM unnest(string_to_array(payloads, E'\\n')) WITH ORDINALITY AS u (p, n)
                )
                WHERE stream = '$accounts' AND first_seq = 1
                """,
            )
            assert await journal.verify_chain() == (ACCOUNTS_STREAM, 2)


async def test_the_hash_chain_finds_an_edited_hash_and_a_deleted_row(database_url: str) -> None:
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([(BTC, levels(BTC, 1, 5)), (ETH, levels(ETH, 1, 2))])
            await journal.append([(ETH, levels(ETH, 3, 1))])
            await journal.append([(ETH, levels(ETH, 4, 2))])
            await sql(
                database_url,
                "DELETE FROM journal_batches WHERE stream = 'ETH_AIT' AND first_seq = 3",
            )
            assert await journal.verify_chain() == (ETH, 4)
            await sql(
                database_url,
                "UPDATE journal_batches"
                " SET hashes = overlay(hashes PLACING sha256('forged') FROM 97)"
                " WHERE stream = 'BTC_AIT'",  # the fourth link
            )
            assert await journal.verify_chain() == (BTC, 4)


async def test_the_hash_chain_matches_a_recomputation_from_the_rows(database_url: str) -> None:
    """The chain's rule is the documented one, so that another tool can check it."""
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([(BTC, levels(BTC, 1, 3))])
    rows = await sql(
        database_url, "SELECT type, payload::text AS payload, hash FROM journal ORDER BY seq"
    )
    previous = b""
    for row in rows:
        text = json.dumps(json.loads(row["payload"]), sort_keys=True, separators=(",", ":"))
        previous = hashlib.sha256(previous + row["type"].encode() + text.encode()).digest()
        assert row["hash"] == previous


async def test_opening_applies_migrations_once(database_url: str) -> None:
    with trio.fail_after(10):
        async with open_postgres_journal(database_url):
            pass
        async with open_postgres_journal(database_url):
            pass
    rows = await sql(database_url, "SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(row["version"], row["name"]) for row in rows] == [
        (1, "journal"),
        (2, "read_tables"),
        (3, "snapshots"),
        (4, "orders_reduce_only"),
        (5, "cheaper_projection"),
        (6, "orders_post_only"),
        (7, "ledger_entries_numbered"),
        (8, "snapshot_chunks"),
        (9, "journal_batches"),
        (10, "journal_append_texts"),
        (11, "projection_one_statement"),
        (12, "drop_unused_indexes"),
        (13, "journal_rows_as_texts"),
        (14, "read_table_fees_numeric"),
        (15, "orders_protection_price"),
        (16, "orders_order_types"),
        (17, "orders_list_id"),
        (18, "orders_hidden_quantity"),
        (19, "orders_client_order_id"),
    ]


def test_driver_errors_are_translated_at_the_boundary() -> None:
    translate = postgres_errors._translate
    assert isinstance(translate(ConnectionRefusedError(111, "refused")), StorageUnavailable)
    assert isinstance(translate(TimeoutError()), StorageUnavailable)
    assert isinstance(translate(BridgeClosed("closed")), StorageUnavailable)
    assert isinstance(
        translate(asyncpg.exceptions.ConnectionDoesNotExistError("gone")), StorageUnavailable
    )
    assert isinstance(translate(asyncpg.exceptions.AdminShutdownError("bye")), StorageUnavailable)
    assert isinstance(translate(asyncpg.exceptions.TooManyConnectionsError("full")),
                      StorageUnavailable)  # fmt: skip
    assert isinstance(translate(asyncpg.InterfaceError("pool is closed")), StorageUnavailable)
    # What a pooled connection says when the server went away while it read an error:
    assert isinstance(
        translate(asyncpg.InternalClientError("cannot switch to state 12")), StorageUnavailable
    )
    assert isinstance(translate(asyncpg.UniqueViolationError("dup")), JournalConflict)
    assert type(translate(asyncpg.InterfaceError("another operation is in progress"))) is (
        JournalError
    )
    assert type(translate(asyncpg.exceptions.UndefinedTableError("no"))) is JournalError


async def test_a_journal_used_after_close_is_unavailable(database_url: str) -> None:
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal:
            pass
        assert isinstance(journal, PostgresJournal)
        with pytest.raises(StorageUnavailable):
            await journal.append([(BTC, levels(BTC, 1, 1))])


async def test_a_second_writer_is_caught_and_the_chain_stays_whole(database_url: str) -> None:
    """Each journal remembers the tips it committed; another writer makes them stale.

    The stale writer's next append conflicts and writes nothing; the one after
    reads the tips again and links to the other writer's rows.
    """
    with trio.fail_after(10):
        async with (
            open_postgres_journal(database_url) as first,
            open_postgres_journal(database_url) as second,
        ):
            await first.append([(BTC, levels(BTC, 1, 2))])
            await second.append([(BTC, levels(BTC, 3, 2))])  # reads the tips: seq 2
            with pytest.raises(JournalConflict):
                await first.append([(BTC, levels(BTC, 3, 1))])  # first still thinks 2
            await first.append([(BTC, levels(BTC, 5, 1))])
            assert await first.read(BTC) == levels(BTC, 1, 5)
            assert await first.verify_chain() is None


async def test_an_append_waits_for_the_writers_lock(database_url: str) -> None:
    """Ids follow commit order only if every append takes the advisory lock first."""
    key = postgres_log._LOCK_KEY
    granted = f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {key}"
    done = trio.Event()
    with trio.fail_after(10):
        async with open_postgres_journal(database_url) as journal, trio.open_nursery() as n:
            await journal.append([(BTC, levels(BTC, 1, 1))])  # its tip is known now
            n.start_soon(
                sql, database_url, "BEGIN", f"SELECT pg_advisory_xact_lock({key})",
                "SELECT pg_sleep(1)", "COMMIT",
            )  # fmt: skip
            while (await sql(database_url, granted))[0][0] == 0:
                await trio.sleep(0.01)

            async def append() -> None:
                await journal.append([(BTC, levels(BTC, 2, 1))])
                done.set()

            n.start_soon(append)
            await trio.sleep(0.5)
            assert not done.is_set()  # the lock is held for a second
            await done.wait()
            assert await journal.read(BTC) == levels(BTC, 1, 2)
