"""Many users trading at once: balances stay non-negative and every asset is conserved."""

from __future__ import annotations

import time

import trio

from tests.actors.helpers import (
    ASSETS,
    all_trades,
    assert_ledger_matches_accounts,
    open_market,
    quiesce,
    settle_everything,
    total,
)
from tests.actors.workload import FUNDING, MIDS, START, USERS, run_workload
from trading_engine.actors.engine import Engine
from trading_engine.actors.messages import ListRefused, ListResult, OrderResult, Refused, Rejected
from trading_engine.config import EngineConfig
from trading_engine.storage.journal import InMemoryJournal

OPS_PER_TASK = 400
"""Per user and symbol: 20 x 2 x 400 = 16,000 operations."""


async def _watch_balances(engine: Engine, stop: trio.Event) -> None:
    """While trading runs, every balance stays non-negative and the holds add up."""
    while not stop.is_set():
        with trio.fail_after(10):
            await engine.check_invariants()
            for user in USERS:
                for asset, (available, held) in (await engine.balances(user)).items():
                    assert available >= 0, (user, asset)
                    assert held >= 0, (user, asset)
        await trio.sleep(0.05)


async def test_concurrent_trading_conserves_every_asset(journal: InMemoryJournal) -> None:
    started = time.monotonic()
    config = EngineConfig(settlement_interval=0.2)
    async with open_market(journal, config, funding=FUNDING) as engine:
        stop = trio.Event()
        async with trio.open_nursery() as watchers:
            watchers.start_soon(_watch_balances, engine, stop)
            flows = await run_workload(engine, OPS_PER_TASK)
            stop.set()

        assert flows.outcomes.get("OrderResult", 0) > 8000, flows.outcomes
        assert flows.outcomes.get("Rejected", 0) > 0, flows.outcomes
        assert set(flows.outcomes) <= {
            OrderResult.__name__,
            Rejected.__name__,
            Refused.__name__,
            ListResult.__name__,
            ListRefused.__name__,
            "tuple",
        }, flows.outcomes
        trades = {s: await all_trades(journal, s) for s in MIDS}
        assert all(len(t) > 2000 for t in trades.values()), {s: len(t) for s, t in trades.items()}

        with trio.fail_after(5):
            await engine.check_invariants()
            balances = {user: await engine.balances(user) for user in USERS}
        for user, assets in balances.items():
            for asset, (available, held) in assets.items():
                assert available >= 0, (user, asset)
                assert held >= 0, (user, asset)

        settled = await settle_everything(engine, journal)
        assert settled["failed"] == []
        assert settled["unknown"] == []
        with trio.fail_after(5):
            assert set((await engine.ledger_totals()).values()) == {0}
        await assert_ledger_matches_accounts(engine, USERS)

        # Conservation: what the users hold is what came in, less what went out and the fees.
        fees = dict.fromkeys(ASSETS, 0)
        for trade in (t for each in trades.values() for t in each):
            fees["AIT"] += trade.maker_fee + trade.taker_fee
        assert fees["AIT"] > 0
        for asset in ASSETS:
            held_by_users = sum(total(balances[u].get(asset, (0, 0))) for u in USERS)
            came_in = len(USERS) * START[asset] + flows.deposited[asset]
            assert held_by_users == came_in - flows.withdrawn[asset] - fees[asset], asset

        # Cancelling everything leaves no hold behind and an empty book.
        with trio.fail_after(5):
            for user in USERS:
                await engine.cancel_all(user)
        await quiesce(engine)
        with trio.fail_after(5):
            for user in USERS:
                assert await engine.user_orders(user, open_only=True) == []
                for asset, (_, held) in (await engine.balances(user)).items():
                    assert held == 0, (user, asset)
            for symbol in MIDS:
                _, bids, asks = await engine.book(symbol)
                assert (bids, asks) == ([], [])
    assert time.monotonic() - started < 20
