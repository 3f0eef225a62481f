"""Settlement over HTTP, with the engine keeping only the newest settled trade in memory."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pytest

from tests.api.conftest import ADMIN, Server
from tests.api.test_history import trade_a_little
from trading_engine.config import EngineConfig
from trading_engine.core.numbers import format_decimal
from trading_engine.storage.postgres import PostgresJournal


@pytest.fixture
def engine_config() -> EngineConfig:
    return EngineConfig(expire_every=float("inf"), settlement_interval=3600.0, keep_settled=1)


async def test_a_trade_settled_long_ago_is_described_from_the_read_tables(server: Server) -> None:
    await trade_a_little(server)  # two trades: BTC_AIT:1 and BTC_AIT:2
    keys = ["BTC_AIT:1", "BTC_AIT:2"]
    async with server.client(ADMIN) as admin:
        before = [(await admin.get(f"/settlement/{key}")).json() for key in keys]
        assert [b["status"] for b in before] == ["pending", "pending"]
        settled = (await admin.post("/settlement/trigger", json={"trade_ids": keys})).json()
        assert settled["settled"] == keys
        journal = server.engine.journal
        assert isinstance(journal, PostgresJournal)
        await journal.project()
        after = [(await admin.get(f"/settlement/{key}")).json() for key in keys]
        again = (await admin.post("/settlement/trigger", json={"trade_ids": keys})).json()
        missing = await admin.get("/settlement/BTC_AIT:3")
    # BTC_AIT:1 is no longer in memory: its details come from the read tables, the same
    # but for the time, which they hold to the microsecond.
    old, new = before[0], after[0]
    microseconds = Decimal(old["ts"]).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
    assert new == old | {"status": "settled", "ts": format_decimal(microseconds)}
    assert Decimal(old["ts"]) > 1_700_000_000  # seconds, as REST shows times
    assert after[1] == before[1] | {"status": "settled"}
    assert again["already_settled"] == keys
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_trade"


async def test_trade_ids_with_non_ascii_digits_are_unknown_and_the_engine_keeps_running(
    server: Server,
) -> None:
    """Trade ids like "BTC_AIT:²" pass ``str.isdigit`` but not ``int``: they once crashed
    the settlement actor, and with it the whole engine."""
    await trade_a_little(server)
    odd = ["BTC_AIT:²", "BTC_AIT:٣", "BTC_AIT:1²"]
    async with server.client(ADMIN) as admin:
        for key in odd:
            response = await admin.get(f"/settlement/{key}")
            assert response.status_code == 404, (key, response.text)
            assert response.json()["error"]["code"] == "unknown_trade"
        triggered = await admin.post("/settlement/trigger", json={"trade_ids": odd})
        assert triggered.status_code == 200, triggered.text
        assert triggered.json()["unknown"] == odd
        assert (await admin.get(f"{server.url}/ready")).status_code == 200
        assert (await admin.get("/settlement/BTC_AIT:1")).json()["status"] == "pending"


async def test_only_a_trades_parties_and_admin_read_or_settle_it(server: Server) -> None:
    """Trade ids are sequential: anyone could otherwise learn who traded with whom, and
    settle other users' trades."""
    await trade_a_little(server)  # demo_alice bought from demo_bob: BTC_AIT:1 and BTC_AIT:2
    async with server.client(ADMIN) as admin:
        made = await admin.post("/admin/users", json={"user_id": "carol"})
        assert made.status_code == 201, made.text
    async with server.client(made.json()["api_key"]) as carol:
        peek = await carol.get("/settlement/BTC_AIT:1")
        assert peek.status_code == 404
        assert peek.json()["error"] == {"code": "unknown_trade", "message": "no trade BTC_AIT:1"}
        assert "demo_bob" not in peek.text
        meddle = await carol.post("/settlement/trigger", json={"trade_ids": ["BTC_AIT:1"]})
        assert meddle.status_code == 200
        assert meddle.json()["unknown"] == ["BTC_AIT:1"]
    async with server.client(ADMIN) as admin:
        assert (await admin.get("/settlement/BTC_AIT:1")).json()["status"] == "pending"
    async with server.client(server.keys["demo_bob"]) as bob:
        seen = (await bob.get("/settlement/BTC_AIT:1")).json()
        assert (seen["buyer"], seen["seller"]) == ("demo_alice", "demo_bob")
        own = await bob.post("/settlement/trigger", json={"trade_ids": ["BTC_AIT:1"]})
        assert own.json()["settled"] == ["BTC_AIT:1"]


async def test_a_forgotten_trade_is_shown_to_its_parties_from_the_read_tables_only(
    server: Server,
) -> None:
    await trade_a_little(server)
    async with server.client(ADMIN) as admin:
        keys = ["BTC_AIT:1", "BTC_AIT:2"]
        await admin.post("/settlement/trigger", json={"trade_ids": keys})
        made = await admin.post("/admin/users", json={"user_id": "carol"})
    journal = server.engine.journal
    assert isinstance(journal, PostgresJournal)
    await journal.project()  # BTC_AIT:1 is now known from the read tables alone
    async with server.client(made.json()["api_key"]) as carol:
        assert (await carol.get("/settlement/BTC_AIT:1")).status_code == 404
    async with server.client(server.keys["demo_alice"]) as alice:
        mine = await alice.get("/settlement/BTC_AIT:1")
        assert mine.status_code == 200
        assert mine.json()["buyer"] == "demo_alice"
