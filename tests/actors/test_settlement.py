"""The settlement actor: trades become balanced ledger postings, idempotently, on trigger."""

from __future__ import annotations

import trio

from tests.actors.helpers import (
    ALICE,
    ASSETS,
    BOB,
    BTC,
    BTC_MID,
    CAROL,
    ETH,
    ETH_MID,
    all_trades,
    assert_ledger_matches_accounts,
    buy,
    ceil_fee,
    open_market,
    place,
    quiesce,
    sell,
    settle_everything,
)
from trading_engine.actors.engine import Engine
from trading_engine.config import EngineConfig
from trading_engine.core.ids import UserId
from trading_engine.storage.journal import InMemoryJournal


async def _trade_a_little(engine: Engine) -> list[str]:
    """Three trades: two in BTC (alice buys from bob, then carol sells to alice), one in ETH."""
    await place(engine, sell(BOB, 1000, BTC_MID))
    await place(engine, buy(ALICE, 1500, BTC_MID))  # takes 1000, rests 500
    await place(engine, sell(CAROL, 500, BTC_MID))
    await place(engine, buy(BOB, 20, ETH_MID, symbol=ETH.symbol))
    await place(engine, sell(ALICE, 20, ETH_MID, symbol=ETH.symbol))
    await quiesce(engine)
    return [f"{BTC.symbol}:1", f"{BTC.symbol}:2", f"{ETH.symbol}:1"]


async def test_trades_are_pending_until_settled(engine: Engine) -> None:
    keys = await _trade_a_little(engine)
    with trio.fail_after(5):
        statuses = [await engine.settlement(key) for key in keys]
    assert [s["status"] for s in statuses if s is not None] == ["pending"] * 3


async def test_settle_answers_settled_then_already_settled_and_unknown(engine: Engine) -> None:
    keys = await _trade_a_little(engine)
    with trio.fail_after(5):
        first = await engine.settle([keys[0], "BTC_AIT:999", "NOPE:1"])
        second = await engine.settle(keys)
    assert first == {
        "settled": [keys[0]],
        "already_settled": [],
        "failed": [],
        "unknown": ["BTC_AIT:999", "NOPE:1"],
    }
    assert second == {
        "settled": keys[1:],
        "already_settled": [keys[0]],
        "failed": [],
        "unknown": [],
    }


async def test_settlement_status_describes_the_trade(engine: Engine) -> None:
    keys = await _trade_a_little(engine)
    with trio.fail_after(5):
        await engine.settle(keys[:1])
        status = await engine.settlement(keys[0])
        assert await engine.settlement("BTC_AIT:999") is None
    assert status is not None
    assert status["trade_id"] == keys[0]
    assert status["status"] == "settled"
    assert status["reason"] is None
    assert (status["symbol"], status["price"], status["quantity"]) == (BTC.symbol, BTC_MID, 1000)
    assert (status["buyer"], status["seller"]) == (ALICE, BOB)


async def test_ledger_totals_are_zero_for_every_asset(
    engine: Engine, journal: InMemoryJournal
) -> None:
    await _trade_a_little(engine)
    with trio.fail_after(5):
        assert set((await engine.ledger_totals()).values()) == {0}
    await settle_everything(engine, journal)
    with trio.fail_after(5):
        totals = await engine.ledger_totals()
    assert set(totals) == set(ASSETS)
    assert set(totals.values()) == {0}


async def test_ledger_balance_equals_available_plus_held_once_settled(
    engine: Engine, journal: InMemoryJournal
) -> None:
    await _trade_a_little(engine)
    await settle_everything(engine, journal)
    await assert_ledger_matches_accounts(engine, [ALICE, BOB, CAROL])


async def test_ledger_pays_buyer_seller_and_fee_account(
    engine: Engine, journal: InMemoryJournal
) -> None:
    await _trade_a_little(engine)
    await settle_everything(engine, journal)
    # Carol only ever sold 500 lots to alice's resting bid, as taker.
    notional = 500 * BTC_MID * BTC.quote_per_tick_lot
    with trio.fail_after(5):
        assert await engine.ledger_balance(CAROL, "AIT") == notional - ceil_fee(
            notional, BTC.taker_fee_bps
        )
        assert await engine.ledger_balance(CAROL, "BTC") == 10**9 - 500 * BTC.base_per_lot
    trades = [*await all_trades(journal, BTC.symbol), *await all_trades(journal, ETH.symbol)]
    fees = sum(t.maker_fee + t.taker_fee for t in trades)
    with trio.fail_after(5):
        users = sum([await engine.ledger_balance(u, "AIT") for u in (ALICE, BOB, CAROL)])
    assert fees > 0
    assert users == 2 * 10**12 - fees


async def test_pending_trades_settle_on_the_interval(
    journal: InMemoryJournal, autojump_clock: trio.abc.Clock
) -> None:
    async with open_market(journal, EngineConfig(settlement_interval=0.5)) as engine:
        keys = await _trade_a_little(engine)
        with trio.fail_after(5):
            while True:
                statuses = [await engine.settlement(key) for key in keys]
                if all(s is not None and s["status"] == "settled" for s in statuses):
                    break
                await trio.sleep(0.1)
        await assert_ledger_matches_accounts(engine, [ALICE, BOB, CAROL])


async def test_deposits_and_withdrawals_post_to_the_ledger_at_once(engine: Engine) -> None:
    dave = UserId("dave")
    with trio.fail_after(5):
        await engine.create_user(dave, "hash-dave")
        await engine.deposit(dave, "AIT", 5000)
        await engine.withdraw(dave, "AIT", 1200)
        await quiesce(engine)
        assert await engine.ledger_balance(dave, "AIT") == 3800
        assert (await engine.ledger_totals())["AIT"] == 0


async def test_settled_trades_beyond_keep_settled_are_known_by_id_alone() -> None:
    """With keep_settled=2 memory holds two settled records; older ones still answer."""
    journal = InMemoryJournal()
    config = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0, keep_settled=2)
    async with open_market(journal, config) as engine:
        keys = await _trade_a_little(engine)
        with trio.fail_after(5):
            assert (await engine.settle(keys))["settled"] == keys
            await place(engine, sell(BOB, 100, BTC_MID))
            await place(engine, buy(CAROL, 100, BTC_MID))
            await quiesce(engine)
            await settle_everything(engine, journal)
            statuses = [await engine.settlement(key) for key in [*keys, "BTC_AIT:3"]]
            again = await engine.settle([*keys, "BTC_AIT:3", "BTC_AIT:4", "NOPE:1"])
            totals = await engine.ledger_totals()
    # BTC_AIT:1 and :2 settled first and were dropped; ETH_AIT:1 and BTC_AIT:3 are kept.
    assert [s is not None and s["status"] for s in statuses] == ["settled"] * 4
    assert [s is not None and "price" in s for s in statuses] == [False, False, True, True]
    assert again == {
        "settled": [],
        "already_settled": [*keys, "BTC_AIT:3"],
        "failed": [],
        "unknown": ["BTC_AIT:4", "NOPE:1"],
    }
    assert set(totals.values()) == {0}
