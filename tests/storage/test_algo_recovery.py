"""Algorithms on the PostgreSQL journal: the engine stops between sending a child and
journaling it, starts again, and the algorithm resumes with no slice sent twice."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.actors.helpers import ALICE, BOB, BTC, BTC_MID, open_market, place, sell
from trading_engine.actors.algos import AlgoActor
from trading_engine.actors.engine import open_engine
from trading_engine.actors.messages import AlgoRequest
from trading_engine.audit import audit
from trading_engine.config import EngineConfig
from trading_engine.core.algos import AlgoStatus, AlgoType, AlgoView
from trading_engine.core.enums import Side
from trading_engine.storage.postgres import open_postgres_journal

CONFIG = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)


async def test_an_engine_stopped_between_a_child_and_its_journal_entry_resumes_without_a_duplicate(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = AlgoActor._done
    stuck = trio.Event()

    async def hang_on_child_1(self: AlgoActor, k: int, child: int, *args: Any) -> None:
        if child == 1:
            stuck.set()  # child 1 is placed; the engine stops before it is journaled
            await trio.sleep_forever()
        await done(self, k, child, *args)

    request = AlgoRequest(
        ALICE, BTC.symbol, AlgoType.TWAP, Side.BUY, 10, 4, 2 * 10**9, limit_price=BTC_MID
    )
    with trio.fail_after(30):
        monkeypatch.setattr(AlgoActor, "_done", hang_on_child_1)
        async with (
            open_postgres_journal(database_url) as journal,
            open_market(journal, CONFIG) as engine,
        ):
            await place(engine, sell(BOB, 100, BTC_MID))
            view = await engine.start_algo(request)
            assert isinstance(view, AlgoView)
            await stuck.wait()
            before = await engine.algo(view.algo_id)
            assert before is not None
            assert len(before.children) == 1
        monkeypatch.setattr(AlgoActor, "_done", done)
        async with (
            open_postgres_journal(database_url) as journal,
            open_engine(CONFIG, journal) as engine,
        ):
            while (after := await engine.algo(view.algo_id)) is None or (not after.status.is_final):
                await trio.sleep(0.05)
            assert after.status is AlgoStatus.COMPLETED
            assert after.filled == 10
            orders = [
                o
                for o in await engine.user_orders(ALICE, limit=1000)
                if (o.client_order_id or "").startswith("algo-")
            ]
            assert len(orders) == len(after.children) == 4
            assert sorted(o.order_id for o in orders) == sorted(after.children)
            assert sum(o.filled for o in orders) == 10
            _, _, asks = await engine.book(BTC.symbol)
            assert asks == [(BTC_MID, 90)]
            await engine.check_invariants()
        async with open_postgres_journal(database_url) as journal:
            report = await audit(journal)  # hash chains and holds, $algos included
            assert report["ok"], report["problems"]
            assert report["hold_mismatches"] == []
