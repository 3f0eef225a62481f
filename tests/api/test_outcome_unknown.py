"""An order whose answer does not come in time (PostgreSQL down) over HTTP: the 503 says
the outcome is unknown and how to find out, and resending it with its client_order_id
after the outage gets the original, placed once."""

from __future__ import annotations

import pytest
import trio

from tests.api.conftest import Server
from trading_engine.config import EngineConfig
from trading_engine.storage.local_pg import LocalPostgres

ORDER = {"symbol": "BTC_AIT", "side": "buy", "type": "limit", "quantity": "0.01",
         "price": "20000", "client_order_id": "outage-1"}  # fmt: skip


@pytest.fixture
def database_url(own_server: LocalPostgres) -> str:
    """The server's journal on ``own_server``, which the test stops."""
    return own_server.dsn


@pytest.fixture
def engine_config() -> EngineConfig:
    return EngineConfig(expire_every=float("inf"), reply_timeout=1.0)


async def test_an_order_unanswered_during_an_outage_is_outcome_unknown_and_resendable(
    server: Server, own_server: LocalPostgres
) -> None:
    async with server.client(server.keys["demo_alice"]) as alice:
        await trio.to_thread.run_sync(lambda: own_server.stop(mode="fast"))
        with trio.fail_after(10):
            unanswered = await alice.post("/orders", json=ORDER)
        assert unanswered.status_code == 503, unanswered.text
        error = unanswered.json()["error"]
        assert error["code"] == "outcome_unknown"
        assert "no answer within 1 s" in error["message"]
        assert "may still take effect" in error["message"]
        assert "same client_order_id ('outage-1')" in error["message"]
        assert "/users/demo_alice/orders" in error["message"]
        without_id = {k: v for k, v in ORDER.items() if k != "client_order_id"}
        with trio.fail_after(10):
            anonymous = await alice.post("/orders", json=without_id)
        # Later orders are refused outright while the journal retries: nothing was done.
        assert anonymous.status_code == 503, anonymous.text
        assert anonymous.json()["error"]["code"] == "storage_unavailable"
        await trio.to_thread.run_sync(own_server.start)
        with trio.fail_after(30):
            while (resent := await alice.post("/orders", json=ORDER)).status_code == 503:
                await trio.sleep(0.2)
        # The first send was executed once the database was back: the resend is its original.
        assert resent.status_code == 200, resent.text
        assert resent.json()["client_order_id"] == "outage-1"
        mine = (await alice.get("/users/demo_alice/orders")).json()["orders"]
        assert [o["client_order_id"] for o in mine].count("outage-1") == 1
