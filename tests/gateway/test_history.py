"""History on a gateway: the read tables at ``DATABASE_URL``, read-only, or 503 without."""

from __future__ import annotations

import pytest
import trio

from tests.conftest import other_database, sql
from tests.gateway.processes import ALICE, BOB, Cluster, limit_order, ready_client
from trading_engine.core.account_events import ACCOUNTS_STREAM, UserCreated
from trading_engine.core.ids import UserId
from trading_engine.storage.postgres import JournalError, open_postgres_journal


async def test_a_gateway_with_a_database_answers_history_from_the_read_tables(
    cluster: Cluster,
) -> None:
    async with (
        cluster.engine(),
        cluster.gateway() as with_db,
        cluster.gateway(DATABASE_URL="") as without_db,
        ready_client(with_db, ALICE) as alice,
        ready_client(with_db, BOB) as bob,
        ready_client(without_db, ALICE) as alice_elsewhere,
    ):
        placed = await bob.post("/orders", json=limit_order("100", side="sell"))
        assert placed.status_code == 201, placed.text
        buy = {"symbol": "BTC_AIT", "side": "buy", "type": "market", "quantity": "0.01"}
        bought = await alice.post("/orders", json=buy)
        assert bought.status_code == 201, bought.text
        with trio.fail_after(10):
            while True:
                trades = await alice.get(f"/users/{ALICE}/history/trades")
                assert trades.status_code == 200, trades.text
                if trades.json()["trades"]:
                    break
                await trio.sleep(0.05)
        [fill] = trades.json()["trades"]
        assert (fill["role"], fill["side"], fill["price"]) == ("taker", "buy", "100")
        assert fill["order_id"] == bought.json()["order_id"]
        orders = await bob.get(f"/users/{BOB}/history/orders")
        assert orders.status_code == 200, orders.text
        assert [o["order_id"] for o in orders.json()["orders"]] == [placed.json()["order_id"]]
        assert orders.json()["orders"][0]["status"] == "filled"
        # A gateway without a database has no history, as before.
        refused = await alice_elsewhere.get(f"/users/{ALICE}/history/trades")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "history_unavailable"


async def test_the_read_only_tables_never_write_nor_migrate(
    database_url: str, server_dsn: str
) -> None:
    """What a gateway opens refuses a write in the server, and leaves a database that
    has no schema without one (it would not start on it rather than migrate it)."""
    created = UserCreated(1, 1, UserId("mallory"), None, "h")
    async with open_postgres_journal(database_url, read_only=True) as tables:
        assert await tables.order_history("mallory", before=None, limit=10) == []
        with pytest.raises(JournalError, match="read-only"):
            await tables.append([(ACCOUNTS_STREAM, [created])])
    assert await sql(database_url, "SELECT count(*) FROM journal_batches") == [(0,)]
    async with other_database(server_dsn, "te_gw_empty") as empty:
        with pytest.raises(JournalError):
            async with open_postgres_journal(empty, read_only=True):
                pass
        [(there,)] = await sql(empty, "SELECT to_regclass('journal_batches') IS NOT NULL")
        assert not there
