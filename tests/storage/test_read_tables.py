"""The read tables in PostgreSQL follow the engine commit by commit and rebuild from the journal."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import asyncpg
import attrs
import pytest
import trio

from tests.actors.helpers import (
    ALICE,
    BOB,
    BTC,
    BTC_MID,
    INSTRUMENTS,
    buy,
    open_market,
    place,
    quiesce,
    reject,
    sell,
    settle_everything,
)
from tests.actors.test_margin import DAVE, ERIN, RICH, SYMBOL, margin_market, trade
from tests.actors.test_reduce_only import ONE_LOT, reducing
from tests.actors.workload import FUNDING, USERS, run_workload
from tests.conftest import copy_journal, other_database, run_migrations, sql
from trading_engine.actors.engine import Engine
from trading_engine.actors.messages import OrderRequest, OrderResult
from trading_engine.actors.risk import RiskConfig
from trading_engine.audit import audit
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import Deposited, Posted, UserCreated
from trading_engine.core.enums import OrderStatus, OrderType, Side, StpMode
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.risk import protection_price
from trading_engine.storage.postgres import JournalError, PostgresJournal, open_postgres_journal

CONFIG = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0, expire_every=float("inf"))
TABLES = {
    "instruments": "symbol",
    "users": "user_id",
    "orders": "order_id",
    "trades": "symbol, trade_id",
    "ledger_entries": "posting_id, entry",
    "balances": "account, asset",
}


async def _tables(dsn: str) -> dict[str, list[Any]]:
    out = {}
    for table, key in TABLES.items():
        out[table] = [tuple(r) for r in await sql(dsn, f"SELECT * FROM {table} ORDER BY {key}")]
    return out


async def _check_orders(engine: Engine, dsn: str) -> int:
    rows = await sql(dsn, "SELECT * FROM orders ORDER BY order_id")
    for row in rows:
        view = await engine.order(OrderId(row["order_id"]))
        assert view is not None, row
        instrument = INSTRUMENTS[view.symbol]
        lot, tick = instrument.lot_size, instrument.tick_size
        seen = (row["status"], row["filled"], row["remaining"], row["quantity"], row["user_id"])
        expected = (
            str(view.status),
            view.filled * lot,
            view.remaining * lot,
            view.quantity * lot,
            view.user_id,
        )
        assert seen == expected, (row, view)
        if view.type is OrderType.LIMIT:
            assert row["price"] == view.price * tick
        protection = view.protection_price * tick if view.protection_price else None
        assert row["protection_price"] == protection, (row, view)
        if view.filled:
            assert row["filled_value"] == view.notional * tick * lot
    assert any(row["filled"] for row in rows), "some orders filled"
    assert any(row["protection_price"] for row in rows), "some market orders"
    assert any(row["status"] == "cancelled" for row in rows), "some were cancelled"
    return len(rows)


async def test_read_tables_follow_the_journal_and_rebuild_from_it(database_url: str) -> None:
    with trio.fail_after(120):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG, FUNDING) as engine,
        ):
            await run_workload(engine, 25, seed=7)
            await quiesce(engine)
            last = await journal.project()
            # Ids, not a count: a rolled-back append leaves a gap in the id sequence.
            [(newest,)] = await sql(database_url, "SELECT max(id) FROM journal")
            assert last == newest, "every journal row is projected"
            keys = [
                f"{r['symbol']}:{r['trade_id']}"
                for r in await sql(database_url, "SELECT symbol, trade_id FROM trades")
            ]
            assert keys, "the workload traded"
            pending = await sql(
                database_url, "SELECT count(*) FROM trades WHERE settlement_status = 'pending'"
            )
            assert pending[0][0] == len(keys), "nothing settles before the trigger (an hour)"
            answer = await engine.settle(keys)
            assert sorted(answer["settled"]) == sorted(keys)
            # The answer waits for the postings to be durable; projected, they settle the trades.
            await journal.project()
            pending = await sql(
                database_url, "SELECT count(*) FROM trades WHERE settlement_status <> 'settled'"
            )
            assert pending[0][0] == 0

            orders = await _check_orders(engine, database_url)
            accepted = [
                e
                for s, e in await journal.read_all()
                if type(e).__name__ in ("OrderAccepted", "OrderRejected")
            ]
            assert orders == len(accepted) > 0
            await journal.project()

            for user in USERS:
                for asset in ("AIT", "BTC", "ETH"):
                    rows = await sql(
                        database_url,
                        f"SELECT amount FROM balances WHERE account = 'user:{user}'"
                        f" AND asset = '{asset}'",
                    )
                    expected = await engine.ledger_balance(user, asset)
                    assert (rows[0][0] if rows else 0) == expected, (user, asset)
            totals = await sql(database_url, "SELECT asset, sum(amount) FROM balances GROUP BY 1")
            assert totals
            assert all(total == 0 for _, total in totals), totals
            entries = await sql(
                database_url,
                "SELECT posting_id, sum(amount) FROM ledger_entries GROUP BY posting_id, asset"
                " HAVING sum(amount) <> 0",
            )
            assert entries == [], "every posting balances per asset"

    before = await _tables(database_url)
    assert len(before["users"]) == len(USERS)
    assert {r[0] for r in before["instruments"]} == set(INSTRUMENTS)
    rebuilt = await sql(
        database_url,
        "TRUNCATE instruments, users, orders, trades, ledger_entries, balances",
        "SELECT project_journal(0, (SELECT max(id) FROM journal))",
    )
    assert rebuilt
    assert await _tables(database_url) == before
    # In ranges: an order's or a trade's later events then come in a range after
    # the one that adds it, so it is updated rather than inserted as it ends up.
    for rows_per_range in (1, 3):
        await sql(
            database_url,
            "TRUNCATE instruments, users, orders, trades, ledger_entries, balances",
            f"""SELECT count(project_journal(first, last))
                FROM (SELECT (min(id) << 24) + 1 AS first, (max(id) << 24) + 16777215 AS last
                      FROM journal_batches GROUP BY (id - 1) / {rows_per_range} ORDER BY 1) r""",
        )
        assert await _tables(database_url) == before, rows_per_range

    # Replayed keeping only a few finished orders and settled trades in memory, the
    # audit still counts every order by status and every trade.
    forgetful = EngineConfig(
        expire_every=float("inf"), risk=RiskConfig(keep_finished=3), keep_settled=3
    )
    async with open_postgres_journal(database_url) as journal:
        report = await audit(journal)
        assert report["ok"], report["problems"]
        again = await audit(journal, forgetful)
        assert again | {"seconds": 0} == report | {"seconds": 0}
        await sql(database_url, "UPDATE balances SET amount = amount + 1 WHERE account = 'fees'")
        await sql(database_url, "UPDATE orders SET status = 'open' WHERE status = 'filled'")
        report = await audit(journal)
    assert not report["ok"]
    assert any("balances differ" in p and "fees" in p for p in report["problems"])
    assert any("orders by status" in p for p in report["problems"])


async def test_the_journal_alone_restores_everything(server_dsn: str, database_url: str) -> None:
    """``pg_dump --data-only -t journal`` into a migrated database: opening it
    projects the read tables, and the audit passes."""
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG) as engine,
        ):
            await place(engine, sell(BOB, 3, BTC_MID))
            await place(engine, buy(ALICE, 2, BTC_MID))
            await settle_everything(engine, journal)
        source = await _tables(database_url)
        async with other_database(server_dsn, "restore") as target:
            async with open_postgres_journal(target):
                pass  # migrated, empty
            await copy_journal(database_url, target)
            async with open_postgres_journal(target) as restored:
                await restored.project()  # opening starts on it; this waits for it
                assert await _tables(target) == source
                report = await audit(restored)
            assert report["ok"], report["problems"]
            assert report["trades"] == 1


async def _trade_with_herself(engine: Engine) -> None:
    """Alice buys from herself (no self-trade prevention): her trade's posting
    credits and debits her account in each asset."""
    await place(engine, sell(ALICE, 3, BTC_MID))
    await place(engine, buy(ALICE, 2, BTC_MID, stp=StpMode.NONE))
    await place(engine, buy(BOB, 1, BTC_MID))  # and one ordinary trade beside it


async def _balances_equal_the_ledger(engine: Engine, dsn: str) -> None:
    for user in (ALICE, BOB):
        for asset in ("AIT", "BTC"):
            rows = await sql(
                dsn,
                f"SELECT amount FROM balances WHERE account = 'user:{user}' AND asset = '{asset}'",
            )
            expected = await engine.ledger_balance(user, asset)
            assert (rows[0][0] if rows else 0) == expected, (user, asset)


async def test_a_posting_with_two_entries_for_one_account_projects_both(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG) as engine,
        ):
            await _trade_with_herself(engine)
            answer = await settle_everything(engine, journal)
            assert len(answer["settled"]) == 2
            await journal.project()
            postings = [
                e
                for _, e in await journal.read_all()
                if isinstance(e, Posted) and e.kind == "trade"
            ]
            accounts = [[(a, asset) for a, asset, _ in p.entries] for p in postings]
            assert any(len(set(pairs)) < len(pairs) for pairs in accounts), "Alice twice"
            rows = await sql(
                database_url, "SELECT count(*) FROM ledger_entries WHERE kind = 'trade'"
            )
            assert rows[0][0] == sum(len(p.entries) for p in postings)
            await _balances_equal_the_ledger(engine, database_url)
        async with open_postgres_journal(database_url) as journal:
            report = await audit(journal)
    assert report["ok"], report["problems"]


async def test_migration_0007_numbers_the_entries_projected_before_it(
    server_dsn: str, database_url: str
) -> None:
    """A database as 0006 left it, with a self-trade's posting projected: one of
    Alice's two entries per asset was dropped. 0007 refills the ledger entries
    from the journal and recomputes the balances."""
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG) as engine,
        ):
            await _trade_with_herself(engine)
            await settle_everything(engine, journal)
        expected = await _tables(database_url)
        async with other_database(server_dsn, "upgrade") as target:
            applied = await trio.to_thread.run_sync(lambda: run_migrations(target, upto=6))
            assert applied == [1, 2, 3, 4, 5, 6]
            await copy_journal(database_url, target)
            await sql(target, "SELECT project_pending()")
            before = await sql(target, "SELECT * FROM balances ORDER BY account, asset")
            assert [tuple(row) for row in before] != expected["balances"], "0006 dropped one"
            assert (await trio.to_thread.run_sync(run_migrations, target))[0] == 7
            assert await _tables(target) == expected


FUNDED = {DAVE: 10 * ONE_LOT, ERIN: RICH}
"""Enough for Dave to go long 10 lots of the margin symbol."""


async def _close_part_with_reduce_only(engine: Engine) -> None:
    """Dave goes long 10, then sells part of it reduce-only: one order rests, and one
    the book rejects (post-only, it would cross Erin's bid)."""
    await trade(engine, ERIN, DAVE, 10, 100_000)
    await place(engine, buy(ERIN, 5, 99_000, SYMBOL))
    rests = await place(engine, reducing(Side.SELL, 4, 101_000))
    refused = await reject(engine, attrs.evolve(reducing(Side.SELL, 2, 99_000), post_only=True))
    assert refused.order is not None  # journaled: the book refused it
    assert (rests.order.status, refused.order.status) == (OrderStatus.OPEN, OrderStatus.REJECTED)


async def test_orders_show_reduce_only_as_the_engine_does(database_url: str) -> None:
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            margin_market(journal, FUNDED) as engine,
        ):
            await _close_part_with_reduce_only(engine)
            await journal.project()
            rows = await sql(
                database_url,
                "SELECT order_id, status, reduce_only, post_only FROM orders ORDER BY order_id",
            )
            for order_id, status, reduce_only, post_only in rows:
                view = await engine.order(OrderId(order_id))
                assert view is not None
                seen = (str(view.status), view.reduce_only, view.post_only)
                assert (status, reduce_only, post_only) == seen, view
        assert [row["status"] for row in rows if row["reduce_only"]] == ["open", "rejected"]
        assert [row["status"] for row in rows if row["post_only"]] == ["rejected"]

        before = await _tables(database_url)
        await sql(
            database_url,
            "TRUNCATE instruments, users, orders, trades, ledger_entries, balances",
            "SELECT project_journal(0, (SELECT max(id) FROM journal))",
        )
        assert await _tables(database_url) == before

        async with open_postgres_journal(database_url) as journal:
            report = await audit(journal)
            assert report["ok"], report["problems"]
            await sql(database_url, "UPDATE orders SET reduce_only = false")
            report = await audit(journal)
    assert [p for p in report["problems"] if "reduce-only orders by status" in p], report


async def test_migration_0004_fills_reduce_only_in_the_orders_projected_before_it(
    server_dsn: str, database_url: str
) -> None:
    """A database as 0003 left it, its orders projected from a journal that holds
    reduce-only orders and a spec written before specs had the field: 0004 adds
    ``orders.reduce_only`` and 0006 ``orders.post_only``, and they fill them as the
    projection does."""
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            margin_market(journal, FUNDED) as engine,
        ):
            await _close_part_with_reduce_only(engine)
        projected = "SELECT order_id, reduce_only, post_only FROM orders ORDER BY order_id"
        expected = [tuple(row) for row in await sql(database_url, projected)]
        async with other_database(server_dsn, "upgrade") as target:
            applied = await trio.to_thread.run_sync(lambda: run_migrations(target, upto=3))
            assert applied == [1, 2, 3]
            await copy_journal(database_url, target)
            [(old,)] = await sql(
                target,
                """
                UPDATE journal
                SET payload = replace(payload::text, '"reduce_only":false,', '')::json
                WHERE id = (SELECT min(id) FROM journal WHERE type = 'OrderAccepted')
                RETURNING payload::text
                """,
            )
            assert '"spec"' in old
            assert "reduce_only" not in old
            await sql(target, "SELECT project_pending()")
            assert (await trio.to_thread.run_sync(run_migrations, target))[0] == 4
            upgraded = [tuple(row) for row in await sql(target, projected)]
    assert upgraded == expected
    assert [reduce_only for _, reduce_only, _ in expected].count(True) == 2
    assert [post_only for _, _, post_only in expected].count(True) == 1


WIDE = Instrument.create("WIDE_AIT", "WIDE", "AIT", "1", "1", maker_fee_bps=10, taker_fee_bps=10)
"""Tick 1, lot 1, 10 bps: a trade of 10^7 at 10^7 is 10^22 AIT minor units, its fees
10^19 each, past 2^63 - 1 (the issue's trade)."""
HUGE = 10**7


async def _trade_huge(engine: Engine) -> None:
    """Alice buys 10^7 WIDE at 10^7 AIT from Bob, her AIT the sum of three deposits."""
    assert await engine.add_symbol(WIDE) is None
    with trio.fail_after(5):
        for _ in range(3):
            assert isinstance(await engine.deposit(ALICE, "AIT", 4 * 10**21), tuple)
        assert isinstance(await engine.deposit(BOB, "WIDE", HUGE * 10**8), tuple)
    await place(engine, sell(BOB, HUGE, HUGE, WIDE.symbol))
    taken = await place(engine, buy(ALICE, HUGE, HUGE, WIDE.symbol))
    [trade] = taken.trades
    assert trade.taker_fee == trade.maker_fee == 10**19 > 2**63


async def _copy_rows_after(source: str, target: str, batch: int) -> None:
    """The journal rows of ``source`` after row ``batch``, appended to ``target``'s."""
    rows = await sql(source, f"SELECT * FROM journal_batches WHERE id > {batch} ORDER BY id")

    async def copy() -> None:
        connection = await asyncpg.connect(target, timeout=10)
        try:
            await connection.copy_records_to_table(
                "journal_batches", records=[tuple(r) for r in rows], columns=list(rows[0].keys())
            )
        finally:
            await connection.close()

    await trio.to_thread.run_sync(lambda: asyncio.run(copy()))


async def test_fees_past_2_63_minor_units_project_and_0014_keeps_the_rows_of_0013(
    server_dsn: str, database_url: str
) -> None:
    """A database as 0013 left it holds ordinary trades in its read tables, then the
    journal gains a trade whose fees its bigint columns cannot hold: its projection
    fails. 0014 keeps every row and makes the fees numeric; the projection then catches
    up, to the same tables as a database migrated to the end from the start."""
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG) as engine,
        ):
            await place(engine, sell(BOB, 3, BTC_MID))
            await place(engine, buy(ALICE, 2, BTC_MID))
            await settle_everything(engine, journal)
            await journal.project()
            [(ordinary,)] = await sql(database_url, "SELECT max(id) FROM journal_batches")
            await _trade_huge(engine)
            await settle_everything(engine, journal)
            await journal.project()
            await _balances_equal_the_ledger(engine, database_url)
        expected = await _tables(database_url)
        [(maker_fee, taker_fee, status)] = await sql(
            database_url,
            "SELECT maker_fee, taker_fee, settlement_status FROM trades WHERE symbol = 'WIDE_AIT'",
        )
        assert (maker_fee, taker_fee, status) == (10**19, 10**19, "settled")
        [(alice,)] = await sql(
            database_url,
            "SELECT amount FROM balances WHERE account = 'user:alice' AND asset = 'AIT'",
        )
        # 10^12 funded, 3 x 4 x 10^21 deposited, 10^22 and its fee paid; 2 BTC lots at
        # BTC_MID are 2 x 10^7, their taker fee 2 x 10^4.
        assert alice == 10**12 + 12 * 10**21 - 10**22 - 10**19 - 2 * 10**7 - 2 * 10**4
        entries = await sql(
            database_url,
            "SELECT account, amount FROM ledger_entries"
            " WHERE posting_id LIKE 'trade:WIDE_AIT:%' AND asset = 'AIT' ORDER BY entry",
        )
        assert [tuple(r) for r in entries] == [
            ("user:alice", -(10**22 + 10**19)),
            ("user:bob", 10**22 - 10**19),
            ("fees", 2 * 10**19),
        ]
        # Both fees of the huge trade, and the BTC trade's 2 x 10^4 less the maker's 4,000 rebate.
        assert ("fees", "AIT", 2 * 10**19 + 16_000) in expected["balances"]

        async with other_database(server_dsn, "upgrade") as target:
            applied = await trio.to_thread.run_sync(lambda: run_migrations(target, upto=13))
            assert applied[-1] == 13
            await copy_journal(database_url, target)
            await sql(target, f"DELETE FROM journal_batches WHERE id > {ordinary}")
            await sql(target, "SELECT project_pending()")
            before = await _tables(target)
            assert len(before["trades"]) == 1
            await _copy_rows_after(database_url, target, ordinary)
            with pytest.raises(asyncpg.NumericValueOutOfRangeError):
                await sql(target, "SELECT project_pending()")
            assert await trio.to_thread.run_sync(lambda: run_migrations(target, upto=14)) == [14]
            assert await _tables(target) == before, "0014 keeps every row as it was"
            types = await sql(
                target,
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'trades' AND column_name LIKE '%fee' ORDER BY 1",
            )
            assert [tuple(r) for r in types] == [("maker_fee", "numeric"), ("taker_fee", "numeric")]
            await trio.to_thread.run_sync(lambda: run_migrations(target))  # those after 0014
            await sql(target, "SELECT project_pending()")
            assert await _tables(target) == expected


async def test_the_read_tables_lag_shows_until_a_projection_catches_up(database_url: str) -> None:
    with trio.fail_after(30):
        async with open_postgres_journal(database_url, project_every=3600.0) as journal:
            await journal.append([("$accounts", [_deposit(1)])])
            await trio.sleep(0.2)  # the background projection ran once, and now sleeps an hour
            await journal.project()
            assert journal.read_tables_lag() == 0.0
            await journal.append([("$accounts", [_deposit(2)])])  # then an hour's pause
            await trio.sleep(0.05)
            assert journal.read_tables_lag() >= 0.05
            last = await journal.project()
            assert journal.read_tables_lag() == 0.0
            _, newest = await journal.read_since(0)
            assert journal.projected_id == last == newest
            assert journal.projection_failures == 0


def _deposit(seq: int) -> Deposited:
    return Deposited(seq, 1_700_000_000_000_000_000 + seq, UserId("u"), "AIT", 100)


def _user(seq: int, user_id: str) -> UserCreated:
    return UserCreated(seq, time.time_ns(), UserId(user_id), None, f"hash-{user_id}")


async def _failed_once(journal: PostgresJournal) -> None:
    """Wait until the background projection has failed (and will retry)."""
    with trio.fail_after(10):
        while not journal.projection_failures:
            await trio.sleep(0.01)


async def test_the_lag_is_the_age_of_the_oldest_commit_not_projected_while_projecting_fails(
    database_url: str,
) -> None:
    """A constraint the test adds makes PostgreSQL refuse the projection of one commit:
    the lag is that commit's age while it fails, after a restart too, until it passes."""
    refuse = "ALTER TABLE users ADD CONSTRAINT test_no_mallory CHECK (user_id <> 'mallory')"
    await sql(database_url, refuse)
    with trio.fail_after(60):
        async with open_postgres_journal(database_url) as journal:
            await journal.append([("$accounts", [_user(1, "alice")])])
            projected = await journal.project()
            assert journal.read_tables_lag() == 0.0
            committed = time.monotonic()
            await journal.append([("$accounts", [_user(2, "mallory")])])
            await _failed_once(journal)
            await trio.sleep(0.2)
            assert 0.2 <= journal.read_tables_lag() <= time.monotonic() - committed
            with pytest.raises(JournalError, match="test_no_mallory"):
                await journal.project()
            assert 0.2 <= journal.read_tables_lag() <= time.monotonic() - committed
        await trio.sleep(0.3)  # stopped, then started again: the commit is still not projected
        async with open_postgres_journal(database_url) as journal:
            lag = journal.read_tables_lag()
            assert 0.5 <= lag <= time.monotonic() - committed + 0.01, lag
            assert journal.projected_id == projected
            await _failed_once(journal)
            assert journal.read_tables_lag() >= lag
            await sql(database_url, "ALTER TABLE users DROP CONSTRAINT test_no_mallory")
            last = await journal.project()
            assert last > projected
            assert (journal.read_tables_lag(), journal.projected_id) == (0.0, last)


def _audit_command(database_url: str) -> tuple[int, dict[str, Any], str]:
    """``trading-engine audit`` in a process of its own: its exit code, report and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "trading_engine.cli", "audit", "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report, done.stderr


async def test_audit_reports_read_tables_it_cannot_catch_up_or_read_and_exits_1(
    database_url: str,
) -> None:
    """Read tables behind the journal whose projection PostgreSQL refuses (a constraint
    the test adds), then a balance no integer can hold (NaN): each time the command
    prints its report, naming the check, and exits 1, with no traceback."""
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG) as engine,
        ):
            await place(engine, sell(BOB, 3, BTC_MID))
            await place(engine, buy(ALICE, 2, BTC_MID))
            await settle_everything(engine, journal)
            projected = await journal.project()
            await sql(
                database_url,
                "ALTER TABLE users ADD CONSTRAINT test_no_mallory CHECK (user_id <> 'mallory')",
            )
            assert await engine.create_user(UserId("mallory"), "hash-mallory") is None
        [(last,)] = await sql(database_url, "SELECT max(id) FROM journal")
        assert last > projected

        code, report, stderr = await trio.to_thread.run_sync(_audit_command, database_url)
        assert (code, report["ok"], report["hash_chain"], report["trades"]) == (1, False, "ok", 1)
        [problem] = report["problems"]
        assert problem.startswith(
            "read tables: the read tables are behind the journal: they hold it up to id"
            f" {projected} of {last}, the oldest commit they lack is "
        )
        assert "test_no_mallory" in problem
        assert "Traceback" not in stderr

        await sql(database_url, "ALTER TABLE users DROP CONSTRAINT test_no_mallory")
        code, report, _ = await trio.to_thread.run_sync(_audit_command, database_url)
        assert (code, report["problems"]) == (0, [])

        await sql(database_url, "UPDATE balances SET amount = 'NaN' WHERE account = 'fees'")
        code, report, stderr = await trio.to_thread.run_sync(_audit_command, database_url)
    assert (code, report["ok"], report["trades"]) == (1, False, 1)
    assert report["problems"] == [
        "read tables: the check failed: ValueError: cannot convert NaN to integer"
    ]
    assert "Traceback" not in stderr


async def test_migration_0015_fills_protection_prices_in_the_orders_projected_before_it(
    server_dsn: str, database_url: str
) -> None:
    """A database as 0013 left it, its orders projected from a journal with market and
    stop orders: 0015 adds ``orders.protection_price`` and fills it as the projection
    does."""
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG, FUNDING) as engine,
        ):
            await run_workload(engine, 10, seed=3)
            await quiesce(engine)
            await journal.project()
        projected = "SELECT order_id, protection_price FROM orders ORDER BY order_id"
        expected = [tuple(row) for row in await sql(database_url, projected)]
        async with other_database(server_dsn, "upgrade") as target:
            applied = await trio.to_thread.run_sync(lambda: run_migrations(target, upto=13))
            assert applied[-1] == 13
            await copy_journal(database_url, target)
            await sql(target, "SELECT project_pending()")
            assert await trio.to_thread.run_sync(lambda: run_migrations(target, upto=15)) == [
                14,
                15,
            ]
            upgraded = [tuple(row) for row in await sql(target, projected)]
    assert upgraded == expected
    assert any(price is not None for _, price in expected)


async def rows_after_upgrade(
    server_dsn: str, database_url: str, query: str, before: int, upto: int
) -> list[tuple[Any, ...]]:
    """``query``'s rows in a database migrated up to ``before``, its read tables projected
    from ``database_url``'s journal, then migrated on up to ``upto``."""
    async with other_database(server_dsn, "upgrade") as target:
        applied = await trio.to_thread.run_sync(lambda: run_migrations(target, upto=before))
        assert applied[-1] == before
        await copy_journal(database_url, target)
        await sql(target, "SELECT project_pending()")
        steps = await trio.to_thread.run_sync(lambda: run_migrations(target, upto=upto))
        assert steps == list(range(before + 1, upto + 1))
        return [tuple(row) for row in await sql(target, query)]


async def test_migration_0016_fills_the_new_order_types_projected_before_it(
    server_dsn: str, database_url: str
) -> None:
    """A database as 0015 left it, its orders projected from a journal with take-profit,
    quote-sized and trailing orders: 0016 adds their columns and fills them, and the
    prices, as the projection does."""
    alice, bob = USERS[0], USERS[1]
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG, FUNDING) as engine,
        ):
            await place(engine, sell(bob, 10, BTC_MID))
            await place(engine, buy(bob, 10, BTC_MID - 100))
            await quiesce(engine)
            for kind, price in ((OrderType.TAKE_PROFIT, 0), (OrderType.TAKE_PROFIT_LIMIT, 1)):
                request = OrderRequest(
                    alice, BTC.symbol, Side.SELL, kind, 2, price and BTC_MID + 600, BTC_MID + 500
                )
                await place(engine, request)
            quoted = OrderRequest(
                alice,
                BTC.symbol,
                Side.BUY,
                OrderType.MARKET,
                0,
                quote_quantity=123_456_789,  # takes all 10 lots
            )
            await place(engine, quoted)
            trailing = OrderRequest(
                alice, BTC.symbol, Side.SELL, OrderType.TRAILING_STOP_LIMIT, 2,
                trailing_delta=300, limit_offset=10,
            )  # fmt: skip
            await place(engine, trailing)
            await place(engine, sell(bob, 5, BTC_MID + 900, display_quantity=2))
            await place(engine, sell(bob, 1, BTC_MID + 500))
            await place(engine, buy(alice, 1, BTC_MID + 500))  # moves the stop up
            await quiesce(engine)
            await journal.project()
        projected = (
            "SELECT order_id, type, price, protection_price, quote_quantity, stop_price,"
            " trailing_delta, limit_offset, display_quantity FROM orders ORDER BY order_id"
        )
        expected = [tuple(row) for row in await sql(database_url, projected)]
        upgraded = await rows_after_upgrade(server_dsn, database_url, projected, 15, 16)
    assert upgraded == expected
    shown = {row[1]: row[2:] for row in expected}
    tick = BTC.tick_size
    cap = protection_price(BTC, Side.SELL, BTC_MID + 500)
    assert cap is not None
    assert shown["take_profit"][:3] == (None, cap * tick, None)
    assert shown["take_profit_limit"][:3] == ((BTC_MID + 600) * tick, None, None)
    assert shown["market"][2] == Decimal("1.23456789")
    stop = BTC_MID + 200
    assert shown["trailing_stop_limit"][0] == (stop - 10) * tick
    assert shown["trailing_stop_limit"][3:] == (stop * tick, 300 * tick, 10 * tick, None)
    icebergs = [row for row in expected if row[-1] is not None]
    assert [(row[2], row[-1]) for row in icebergs] == [((BTC_MID + 900) * tick, 2 * BTC.lot_size)]


async def test_an_icebergs_hidden_part_projects_as_the_engine_counts_it_and_0018_fills_it(
    server_dsn: str, database_url: str
) -> None:
    """Icebergs filled, cut by self-trade prevention, amended (keeping their place and
    not), cancelled: after each step ``orders.hidden_quantity`` is the engine's hidden
    lots; a database as 0017 left it, its orders projected from the same journal, gets
    the same values from 0018 (the whole journal in one range)."""
    alice, bob = USERS[0], USERS[1]
    lot = BTC.lot_size
    hidden = "SELECT order_id, hidden_quantity FROM orders ORDER BY order_id"
    with trio.fail_after(60):
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG, FUNDING) as engine,
        ):
            icebergs: list[OrderId] = []

            async def check() -> None:
                await quiesce(engine)
                await journal.project()
                rows = dict(tuple(r) for r in await sql(database_url, hidden))
                for order_id in icebergs:
                    view = await engine.order(order_id)
                    assert view is not None
                    assert rows[order_id] == view.hidden * lot, (order_id, view)

            for price in (BTC_MID + 900, BTC_MID + 950):
                placed = await place(engine, sell(bob, 10, price, display_quantity=3))
                icebergs.append(placed.order.order_id)
            await check()
            await place(engine, buy(alice, 4, BTC_MID + 900))  # a slice, then a lot of the next
            await check()
            first, second = icebergs
            # Bob's own buy meets his first iceberg: decremented, its hidden part first.
            await place(engine, buy(bob, 2, BTC_MID + 950, stp=StpMode.DECREMENT))
            await check()
            cut = await engine.order(first)
            assert cut is not None
            assert (cut.remaining, cut.hidden) == (4, 2)
            for quantity in (9, 8, 7):  # cuts that keep its place, the last below its slice
                assert isinstance(await engine.amend(first, bob, quantity=quantity), OrderResult)
            await check()
            assert isinstance(await engine.amend(second, bob, price=BTC_MID + 960), OrderResult)
            await check()
            assert isinstance(await engine.cancel(first, bob), OrderResult)
            await check()
            views = [await engine.order(order_id) for order_id in icebergs]
            await journal.project()
        expected = [tuple(r) for r in await sql(database_url, hidden)]
        upgraded = await rows_after_upgrade(server_dsn, database_url, hidden, 17, 18)
    assert upgraded == expected
    shown = dict(expected)
    assert [(v.status, v.hidden) for v in views if v is not None] == [
        (OrderStatus.CANCELLED, 0),
        (OrderStatus.OPEN, shown[icebergs[1]] / lot),
    ]
    assert shown[icebergs[1]] > 0
