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
