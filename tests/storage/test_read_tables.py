"""The read tables in PostgreSQL follow the engine commit by commit and rebuild from the journal."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from tests.actors.helpers import (
    ALICE,
    BOB,
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
from trading_engine.actors.risk import RiskConfig
from trading_engine.audit import audit
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import Deposited, Posted
from trading_engine.core.enums import OrderStatus, OrderType, Side, StpMode
from trading_engine.core.ids import OrderId, UserId
from trading_engine.storage.postgres import open_postgres_journal

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
            assert (await trio.to_thread.run_sync(run_migrations, target))[-1] == 15
            upgraded = [tuple(row) for row in await sql(target, projected)]
    assert upgraded == expected
    assert any(price is not None for _, price in expected)
