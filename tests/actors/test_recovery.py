"""Durability: a restart on the same journal rebuilds everything; a journal outage loses nothing."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.actors import workload
from tests.actors.helpers import (
    ALICE,
    ASSETS,
    BOB,
    BTC,
    BTC_MID,
    CAROL,
    ETH,
    ETH_MID,
    RICH,
    assert_ledger_matches_accounts,
    buy,
    buy_hold,
    market,
    open_market,
    place,
    quiesce,
    reject,
    sell,
    settle_everything,
    wait_ready,
)
from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderResult, Rejected
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderStatus, RejectReason, Side
from trading_engine.core.events import OrderAccepted
from trading_engine.core.ids import ClientOrderId, UserId
from trading_engine.storage.journal import InMemoryJournal, StorageUnavailable

USERS = (ALICE, BOB, CAROL)
CONFIG = EngineConfig(settlement_interval=3600.0)


async def _trade_a_session(engine: Engine) -> None:
    """Resting orders, trades, a cancel, amends, a market order and a withdrawal."""
    for i in range(4):
        await place(engine, buy(ALICE, 300 + i, BTC_MID - 50 * (i + 1)))
        await place(engine, sell(BOB, 200 + i, BTC_MID + 50 * (i + 1)))
    await place(engine, sell(CAROL, 500, BTC_MID - 50))  # fills 300, then 200 of the next
    await place(engine, buy(ALICE, 100, BTC_MID + 50, client_order_id=ClientOrderId("a-1")))
    await quiesce(engine)
    await place(engine, market(CAROL, Side.SELL, 150))
    cancel_me = await place(engine, buy(BOB, 40, BTC_MID - 500))
    amend_me = await place(engine, sell(ALICE, 50, BTC_MID + 700))
    with trio.fail_after(5):
        assert isinstance(await engine.cancel(cancel_me.order.order_id, BOB), OrderResult)
        assert isinstance(
            await engine.amend(amend_me.order.order_id, ALICE, quantity=30), OrderResult
        )
        assert isinstance(await engine.withdraw(BOB, "AIT", 12_345), tuple)
    await place(engine, sell(BOB, 20, ETH_MID, symbol=ETH.symbol))
    await place(engine, buy(ALICE, 15, ETH_MID, symbol=ETH.symbol))
    await quiesce(engine)


async def _observe(engine: Engine) -> dict[str, Any]:
    """Everything a client can read back, for comparing before and after a restart."""
    await quiesce(engine)
    seen: dict[str, Any] = {}
    with trio.fail_after(5):
        for user in USERS:
            seen[f"balances {user}"] = await engine.balances(user)
            seen[f"open {user}"] = await engine.user_orders(user, open_only=True)
            seen[f"orders {user}"] = await engine.user_orders(user, limit=1000)
            seen[f"positions {user}"] = await engine.positions(user)
            seen[f"trades {user}"] = await engine.user_trades(user)
            for asset in ASSETS:
                seen[f"ledger {user} {asset}"] = await engine.ledger_balance(user, asset)
        for symbol in (BTC.symbol, ETH.symbol):
            seen[f"book {symbol}"] = await engine.book(symbol)
            seen[f"orderbook {symbol}"] = await engine.orderbook(symbol)
            seen[f"ticker {symbol}"] = await engine.ticker(symbol)
            seen[f"tape {symbol}"] = await engine.trades(symbol)
            seen[f"candles {symbol}"] = await engine.candles(symbol, "1m")
            tape = seen[f"tape {symbol}"]
            for trade in tape:
                key = f"{symbol}:{trade.trade_id}"
                seen[f"settlement {key}"] = await engine.settlement(key)
        seen["totals"] = await engine.ledger_totals()
    return seen


async def test_restart_rebuilds_the_same_engine_state(journal: InMemoryJournal) -> None:
    async with open_market(journal, CONFIG) as engine:
        await _trade_a_session(engine)
        await settle_everything(engine, journal)
        before = await _observe(engine)
    async with open_engine(CONFIG, journal) as engine:
        after = await _observe(engine)
    assert before["open alice"]
    assert before["tape BTC_AIT"]
    assert set(before["totals"].values()) == {0}
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key] == value, key


async def test_trades_pending_at_shutdown_are_settled_after_restart(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await _trade_a_session(engine)
        with trio.fail_after(5):
            status = await engine.settlement(f"{BTC.symbol}:1")
            assert status is not None
            assert status["status"] == "pending"
    async with open_engine(CONFIG, journal) as engine:
        await quiesce(engine)
        with trio.fail_after(5):
            status = await engine.settlement(f"{BTC.symbol}:1")
            totals = await engine.ledger_totals()
        assert status is not None
        assert status["status"] == "settled"
        assert set(totals.values()) == {0}
        await assert_ledger_matches_accounts(engine, USERS)


async def test_restart_continues_order_ids_trade_ids_and_client_order_ids(
    journal: InMemoryJournal,
) -> None:
    cid = ClientOrderId("keep-me")
    async with open_market(journal, CONFIG) as engine:
        first = await place(engine, buy(ALICE, 100, BTC_MID, client_order_id=cid))
        await place(engine, sell(BOB, 40, BTC_MID))
    async with open_engine(CONFIG, journal) as engine:
        again = await place(engine, buy(ALICE, 100, BTC_MID, client_order_id=cid))
        assert again.duplicate
        assert again.order.order_id == first.order.order_id
        assert again.order.filled == 40
        taken = await place(engine, sell(BOB, 60, BTC_MID))
        assert taken.order.order_id > first.order.order_id + 1
        assert [t.trade_id for t in taken.trades] == [2]
        with trio.fail_after(5):
            assert len(await engine.user_orders(ALICE)) == 1


async def test_order_amended_up_keeps_its_full_hold_across_a_restart(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        resting = await place(engine, buy(ALICE, 1000, BTC_MID))
        with trio.fail_after(5):
            amended = await engine.amend(resting.order.order_id, ALICE, quantity=3000)
        assert isinstance(amended, OrderResult)
        await quiesce(engine)
        with trio.fail_after(5):
            before = await engine.balances(ALICE)
    assert before["AIT"][1] == buy_hold(BTC, 3000, BTC_MID)
    async with open_engine(CONFIG, journal) as engine:
        await quiesce(engine)
        with trio.fail_after(5):
            assert await engine.balances(ALICE) == before
        # The whole amended quantity can fill from the hold.
        taken = await place(engine, sell(BOB, 3000, BTC_MID))
        assert taken.order.status is OrderStatus.FILLED
        await quiesce(engine)


async def test_engine_restarts_after_an_amended_up_order_filled(journal: InMemoryJournal) -> None:
    async with open_market(journal, CONFIG) as engine:
        resting = await place(engine, buy(ALICE, 1000, BTC_MID))
        with trio.fail_after(5):
            amended = await engine.amend(resting.order.order_id, ALICE, quantity=3000)
        assert isinstance(amended, OrderResult)
        taken = await place(engine, sell(BOB, 3000, BTC_MID))
        assert taken.order.status is OrderStatus.FILLED
        await quiesce(engine)
        with trio.fail_after(5):
            before = await engine.balances(ALICE)
    async with open_engine(CONFIG, journal) as engine:
        with trio.fail_after(5):
            assert await engine.balances(ALICE) == before


async def test_halted_symbol_stays_halted_after_restart(journal: InMemoryJournal) -> None:
    async with open_market(journal, CONFIG) as engine:
        await place(engine, buy(ALICE, 100, BTC_MID))
        with trio.fail_after(5):
            assert await engine.halt(BTC.symbol, "maintenance") is None
    async with open_engine(CONFIG, journal) as engine:
        assert engine.halted() == {BTC.symbol: "maintenance"}
        outcome = await reject(engine, sell(BOB, 100, BTC_MID))
        assert outcome.reasons == (RejectReason.SYMBOL_HALTED,)
        with trio.fail_after(5):
            assert await engine.resume(BTC.symbol) is None
            await wait_ready(engine, BTC.symbol)
        assert (await place(engine, sell(BOB, 100, BTC_MID))).trades


# ---------------------------------------------------------------- journal outage


async def _wait_for_outage(engine: Engine) -> None:
    with trio.fail_after(5):
        while engine.journal_stats.failures == 0:
            await trio.sleep(0.001)


async def test_journal_outage_refuses_new_orders_and_answers_the_waiting_one_on_return(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        acked = await place(engine, sell(BOB, 100, BTC_MID))
        journal.available = False
        waiting: list[object] = []

        async def submit_during_outage() -> None:
            waiting.append(await engine.submit(buy(ALICE, 60, BTC_MID)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(submit_during_outage)
            await _wait_for_outage(engine)
            for _ in range(3):
                with trio.fail_after(5), pytest.raises(StorageUnavailable):
                    await engine.submit(buy(CAROL, 10, BTC_MID, symbol=ETH.symbol))
                with trio.fail_after(5), pytest.raises(StorageUnavailable):
                    await engine.submit(buy(ALICE, 10, BTC_MID - 100))
                await trio.sleep(0.05)
            assert waiting == []  # nothing unwritten is acknowledged
            journal.available = True
        # The waiting order was answered once written, and trading resumed.
        [outcome] = waiting
        assert isinstance(outcome, OrderResult)
        assert outcome.order.filled == 60
        after = await place(engine, buy(ALICE, 40, BTC_MID))
        assert after.order.status is OrderStatus.FILLED
        with trio.fail_after(5):
            balances = await engine.balances(ALICE)
        assert balances["AIT"][1] == 0  # the refused orders hold nothing
    journaled = {
        e.spec.order_id for e in await journal.read(BTC.symbol) if isinstance(e, OrderAccepted)
    }
    assert {acked.order.order_id, outcome.order.order_id, after.order.order_id} <= journaled
    async with open_engine(CONFIG, journal) as engine:
        with trio.fail_after(5):
            orders = await engine.user_orders(ALICE)
            assert await engine.balances(ALICE) == balances
        assert {o.order_id for o in orders} == {outcome.order.order_id, after.order.order_id}


async def test_journal_outage_holds_cancels_until_written(journal: InMemoryJournal) -> None:
    async with open_market(journal, CONFIG) as engine:
        resting = await place(engine, buy(ALICE, 100, BTC_MID))
        journal.available = False
        answers: list[object] = []

        async def cancel() -> None:
            answers.append(await engine.cancel(resting.order.order_id, ALICE))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel)
            await _wait_for_outage(engine)
            await trio.sleep(0.1)
            assert answers == []
            with trio.fail_after(5):
                view = await engine.order(resting.order.order_id)
            assert view is not None
            assert view.status is OrderStatus.OPEN  # not cancelled until durable
            journal.available = True
        [answer] = answers
        assert isinstance(answer, OrderResult)
        await quiesce(engine)
        with trio.fail_after(5):
            assert (await engine.balances(ALICE))["AIT"] == (RICH["AIT"], 0)
        outcome = await engine.submit(buy(ALICE, 10, BTC_MID))
        assert not isinstance(outcome, Rejected)


async def test_restart_with_a_new_user_and_deposit_keeps_them(journal: InMemoryJournal) -> None:
    dave = UserId("dave")
    async with open_market(journal, CONFIG) as engine:
        with trio.fail_after(5):
            await engine.create_user(dave, "hash-dave")
            await engine.deposit(dave, "AIT", 777)
    async with open_engine(CONFIG, journal) as engine:
        with trio.fail_after(5):
            assert await engine.balances(dave) == {"AIT": (777, 0)}
            assert await engine.user_by_key("hash-dave") == dave
            refused = await engine.create_user(dave, "again")
        assert refused is not None
        assert refused.code == "user_exists"


# ---------------------------------------------------------------- restart after a busy session


async def _observe_users(engine: Engine) -> dict[str, Any]:
    await quiesce(engine)
    seen: dict[str, Any] = {}
    with trio.fail_after(5):
        for user in workload.USERS:
            seen[f"balances {user}"] = await engine.balances(user)
            seen[f"open {user}"] = await engine.user_orders(user, open_only=True, limit=10_000)
            seen[f"positions {user}"] = await engine.positions(user)
        for symbol in workload.MIDS:
            seen[f"book {symbol}"] = await engine.book(symbol)
            seen[f"orderbook {symbol}"] = await engine.orderbook(symbol)
            seen[f"ticker {symbol}"] = await engine.ticker(symbol)
        seen["totals"] = await engine.ledger_totals()
    return seen


@pytest.mark.parametrize("grow_amends", [False, True])
async def test_restart_after_concurrent_trading_rebuilds_the_same_state(
    journal: InMemoryJournal, grow_amends: bool
) -> None:
    async with open_market(journal, CONFIG, funding=workload.FUNDING) as engine:
        await workload.run_workload(engine, 60, seed=7, grow_amends=grow_amends)
        await settle_everything(engine, journal)
        before = await _observe_users(engine)
    async with open_engine(CONFIG, journal) as engine:
        after = await _observe_users(engine)
        differing = sorted(key for key, value in before.items() if after[key] != value)
        assert differing == []
        await assert_ledger_matches_accounts(engine, workload.USERS)
