"""The read tables over real HTTP: amounts past 2^63 exactly, and the lag while they fail.

Inside the engine prices, quantities and money are Python ints; the read tables
in PostgreSQL must hold whatever sums and products of them the engine makes (a
fee on a notional of two large numbers, a balance summed from many deposits).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import trio

from tests.api.conftest import ADMIN, Server
from tests.conftest import sql
from trading_engine.config import EngineConfig
from trading_engine.storage.postgres import PostgresJournal

BIG = "10000000"  # 10^7: tick 1 and lot 1, so a trade of BIG x BIG is 10^14 quote
FEE = "100000000000"  # 10 bps of 10^14: 10^19 minor units of QUO (8 decimals), past 2^63
BUYER, SELLER = "whale_buyer", "whale_seller"


@pytest.fixture
def engine_config() -> EngineConfig:
    """The engine keeps the details of only its last settled trade: an older one's
    come from the read tables."""
    return EngineConfig(expire_every=float("inf"), keep_settled=1)


def _journal(server: Server) -> PostgresJournal:
    journal = server.engine.journal
    assert isinstance(journal, PostgresJournal)
    return journal


async def _list(server: Server, symbol: str, tick: str, bps: int) -> None:
    base, quote = symbol.split("_")
    async with server.client(ADMIN) as admin:
        listed = await admin.post(
            "/admin/symbols",
            json={"symbol": symbol, "base_asset": base, "quote_asset": quote,
                  "tick_size": tick, "lot_size": "1", "maker_fee_bps": bps,
                  "taker_fee_bps": bps},
        )  # fmt: skip
        assert listed.status_code == 201, listed.text


async def _users(server: Server, funds: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    """Create each user and make each of their deposits; their keys."""
    keys = {}
    async with server.client(ADMIN) as admin:
        for user, deposits in funds.items():
            created = await admin.post("/admin/users", json={"user_id": user})
            assert created.status_code == 201, created.text
            keys[user] = created.json()["api_key"]
            for asset, amount in deposits:
                body = {"user_id": user, "asset": asset, "amount": amount}
                assert (await admin.post("/admin/deposits", json=body)).status_code == 200
    return keys


async def _trade(
    server: Server, keys: dict[str, str], symbol: str, quantity: str, price: str
) -> dict[str, Any]:
    """The seller rests, the buyer takes all of it; the trade as the taker's answer shows it."""
    limit = {"symbol": symbol, "type": "limit", "quantity": quantity, "price": price}
    async with server.client(keys[SELLER]) as seller, server.client(keys[BUYER]) as buyer:
        rests = await seller.post("/orders", json=limit | {"side": "sell"})
        assert rests.status_code == 201, rests.text
        takes = await buyer.post("/orders", json=limit | {"side": "buy"})
        assert takes.status_code == 201, takes.text
    assert takes.json()["status"] == "filled"
    [trade] = takes.json()["trades"]
    trade_id: str = trade["trade_id"]
    async with server.client(ADMIN) as admin:
        settled = await admin.post("/settlement/trigger", json={"trade_ids": [trade_id]})
    assert settled.json()["settled"] == [trade_id]
    return dict(trade)


async def test_a_fee_past_2_63_minor_units_is_in_the_history_ledger_and_balances(
    server: Server, database_url: str
) -> None:
    """The trade of the issue: tick 1, lot 1, 10 bps, 10,000,000 x 10,000,000."""
    await _list(server, "BIG_QUO", "1", 10)
    keys = await _users(
        server,
        {BUYER: [("QUO", "60000000000000")] * 2, SELLER: [("BIG", "5000000")] * 2},
    )
    trade = await _trade(server, keys, "BIG_QUO", BIG, BIG)
    assert (trade["price"], trade["quantity"], trade["fee"], trade["role"]) == (
        BIG,
        BIG,
        FEE,
        "taker",
    )
    await _journal(server).project()  # raises if the projection fails

    async with server.client(keys[BUYER]) as buyer, server.client(keys[SELLER]) as seller:
        fills = (await buyer.get(f"/users/{BUYER}/history/trades")).json()["trades"]
        sold = (await seller.get(f"/users/{SELLER}/history/trades")).json()["trades"]
        orders = (await buyer.get(f"/users/{BUYER}/history/orders")).json()["orders"]
        balances = (await buyer.get(f"/users/{BUYER}/balances")).json()["balances"]
    assert [(f["role"], f["side"], f["price"], f["quantity"], f["fee"]) for f in fills + sold] == [
        ("taker", "buy", BIG, BIG, FEE),
        ("maker", "sell", BIG, BIG, FEE),
    ]
    assert [f["settlement_status"] for f in fills + sold] == ["settled", "settled"]
    [order] = orders
    assert (order["status"], order["quantity"], order["filled_quantity"]) == ("filled", BIG, BIG)
    assert (order["average_price"], order["remaining_quantity"]) == (BIG, "0")
    # 2 x 6 x 10^13 deposited, 10^14 paid and a fee of 10^11.
    assert balances["QUO"] == {"available": "19900000000000", "held": "0"}
    assert balances["BIG"] == {"available": BIG, "held": "0"}

    minor = Decimal(10) ** 8  # QUO and BIG have 8 decimals
    notional, fee = Decimal(BIG) ** 2 * minor, Decimal(FEE) * minor
    rows = await sql(
        database_url,
        "SELECT account, asset, amount FROM ledger_entries WHERE kind = 'trade' ORDER BY entry",
    )
    assert sorted((r["account"], r["asset"], r["amount"]) for r in rows) == sorted(
        [
            (f"user:{BUYER}", "BIG", Decimal(BIG) * minor),
            (f"user:{SELLER}", "BIG", -Decimal(BIG) * minor),
            (f"user:{BUYER}", "QUO", -(notional + fee)),
            (f"user:{SELLER}", "QUO", notional - fee),
            ("fees", "QUO", 2 * fee),
        ]
    )
    stored = await sql(
        database_url,
        "SELECT account, asset, amount FROM balances WHERE account LIKE 'user:whale%'"
        " OR account = 'fees' ORDER BY account, asset",
    )
    assert [tuple(r) for r in stored] == [
        ("fees", "QUO", 2 * fee),
        (f"user:{BUYER}", "BIG", Decimal(BIG) * minor),
        (f"user:{BUYER}", "QUO", 12 * 10**13 * minor - notional - fee),
        (f"user:{SELLER}", "BIG", Decimal(0)),
        (f"user:{SELLER}", "QUO", notional - fee),
    ]
    [(maker_fee, taker_fee)] = await sql(database_url, "SELECT maker_fee, taker_fee FROM trades")
    assert maker_fee == taker_fee == fee > 2**63


async def test_an_old_trade_priced_past_2_63_ticks_reads_back_from_the_read_tables(
    server: Server,
) -> None:
    """A price of 10^11 on a tick of 10^-8 is 10^19 ticks: its settlement, once the
    engine has forgotten it, is read from the read tables in ticks, exactly."""
    await _list(server, "FINE_QUO", "0.00000001", 0)
    await _list(server, "LOT_QUO", "1", 0)
    keys = await _users(
        server,
        {BUYER: [("QUO", "100000000001")], SELLER: [("FINE", "1"), ("LOT", "1")]},
    )
    old = await _trade(server, keys, "FINE_QUO", "1", "100000000000")
    await _trade(server, keys, "LOT_QUO", "1", "1")  # the engine now keeps only this one
    await _journal(server).project()
    async with server.client(ADMIN) as admin:
        answer = await admin.get(f"/settlement/{old['trade_id']}")
    assert answer.status_code == 200, answer.text
    status = answer.json()
    assert (status["status"], status["price"], status["quantity"]) == (
        "settled",
        "100000000000",
        "1",
    )
    assert (status["buyer"], status["seller"]) == (BUYER, SELLER)


async def _gauges(server: Server) -> dict[str, float]:
    """The unlabelled series of ``GET /metrics``, by name."""
    async with server.client(ADMIN) as admin:
        response = await admin.get(f"{server.url}/metrics")
    assert response.status_code == 200, response.text
    series = (line.split(" ") for line in response.text.splitlines() if line[:1] != "#")
    return {parts[0]: float(parts[1]) for parts in series if len(parts) == 2}


async def test_metrics_show_the_age_of_a_commit_whose_projection_fails(
    server: Server, database_url: str
) -> None:
    """PostgreSQL takes 2 s to refuse the projection of a new user (a trigger the test
    adds): the journal has the user, and the lag grows from that commit, while the
    projection runs and between its retries, until it passes."""
    await sql(
        database_url,
        """CREATE FUNCTION test_slow_refusal() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_sleep(2); RAISE EXCEPTION 'test: no mallory'; END $$""",
        "CREATE TRIGGER test_no_mallory BEFORE INSERT ON users FOR EACH ROW"
        " WHEN (NEW.user_id = 'mallory') EXECUTE FUNCTION test_slow_refusal()",
    )
    async with server.client(ADMIN) as admin:
        created = await admin.post("/admin/users", json={"user_id": "mallory"})
    assert created.status_code == 201, created.text
    committed = trio.current_time()
    await trio.sleep(1)  # the projection of that commit is under way
    assert (await _gauges(server))["te_read_tables_lag_seconds"] >= 1
    with trio.fail_after(10):
        while not (await _gauges(server))["te_read_tables_failures_total"]:
            await trio.sleep(0.05)
    gauges = await _gauges(server)  # failed, and sleeping before it retries
    assert gauges["te_read_tables_lag_seconds"] >= trio.current_time() - committed - 0.1
    await sql(database_url, "DROP TRIGGER test_no_mallory ON users")
    last = await _journal(server).project()
    gauges = await _gauges(server)
    assert (gauges["te_read_tables_lag_seconds"], gauges["te_read_tables_last_id"]) == (0, last)
