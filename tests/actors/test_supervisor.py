"""The supervisor: symbol actors restarted from the journal, halted after repeated crashes."""

from __future__ import annotations

import trio

from tests.actors.helpers import (
    ALICE,
    BOB,
    BTC,
    BTC_MID,
    CAROL,
    ETH,
    ETH_MID,
    RICH,
    buy,
    buy_hold,
    crash,
    crashes,
    inject_crash,
    open_market,
    place,
    quiesce,
    reject,
    sell,
    wait_ready,
)
from trading_engine.actors.engine import Engine
from trading_engine.actors.mailbox import ActorUnavailable
from trading_engine.actors.messages import OrderResult, Refused, Rejected
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderStatus, RejectReason
from trading_engine.core.events import OrderAccepted
from trading_engine.core.ids import ClientOrderId, Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.errors import TradingEngineError
from trading_engine.storage.journal import InMemoryJournal


async def _build_btc_book(engine: Engine) -> None:
    """A few levels on each side, one order partly filled."""
    for i in range(5):
        await place(engine, buy(ALICE, 100 + i, BTC_MID - 100 * (i + 1)))
        await place(engine, sell(BOB, 200 + i, BTC_MID + 100 * (i + 1)))
    await place(engine, sell(CAROL, 30, BTC_MID - 100))  # takes 30 of alice's best bid
    await quiesce(engine)


async def test_crashed_symbol_restarts_with_the_book_it_had(engine: Engine) -> None:
    await _build_btc_book(engine)
    with trio.fail_after(5):
        before = await engine.book(BTC.symbol)
        orders = [await engine.user_orders(u, open_only=True) for u in (ALICE, BOB)]
    await crash(engine, BTC.symbol)
    with trio.fail_after(5):
        assert await engine.book(BTC.symbol) == before
        assert [await engine.user_orders(u, open_only=True) for u in (ALICE, BOB)] == orders
        assert await engine.orderbook(BTC.symbol) == before
    assert engine.halted() == {}
    # The rebuilt book matches as the old one would have: against alice's remaining 70.
    taken = await place(engine, sell(CAROL, 100, BTC_MID - 200))
    assert [(t.maker_order_id, t.quantity) for t in taken.trades] == [
        (orders[0][-1].order_id, 70),
        (orders[0][-2].order_id, 30),
    ]
    await quiesce(engine)


async def test_other_symbols_keep_matching_while_one_restarts(engine: Engine) -> None:
    await place(engine, sell(BOB, 50, ETH_MID, symbol=ETH.symbol))
    with trio.fail_after(5):
        await inject_crash(engine, BTC.symbol)
    # Not waiting for BTC: ETH matches meanwhile.
    taken = await place(engine, buy(ALICE, 50, ETH_MID, symbol=ETH.symbol))
    assert taken.order.status is OrderStatus.FILLED
    with trio.fail_after(5):
        while crashes(engine, BTC.symbol) == 0:
            await trio.sleep(0.001)
        await wait_ready(engine, BTC.symbol)
    assert (crashes(engine, BTC.symbol), crashes(engine, ETH.symbol)) == (1, 0)
    await place(engine, buy(ALICE, 10, BTC_MID))


async def test_acknowledged_orders_survive_a_crash(
    engine: Engine, journal: InMemoryJournal
) -> None:
    acked = [(await place(engine, buy(ALICE, 10, BTC_MID - i))).order for i in range(20)]
    await crash(engine, BTC.symbol)
    journaled = {
        e.spec.order_id for e in await journal.read(BTC.symbol) if isinstance(e, OrderAccepted)
    }
    assert {o.order_id for o in acked} <= journaled
    with trio.fail_after(5):
        open_orders = await engine.user_orders(ALICE, open_only=True)
        bids = (await engine.book(BTC.symbol))[1]
    assert sorted(o.order_id for o in open_orders) == sorted(o.order_id for o in acked)
    assert sum(q for _, q in bids) == 200


async def test_command_queued_right_behind_a_crash_is_answered(
    journal: InMemoryJournal,
) -> None:
    # Whether the restarted actor serves the query or it gets ActorUnavailable,
    # it must be answered, not dropped. The query lands in the same inbox read
    # as the crash in about half of the tries, depending on scheduling.
    config = EngineConfig(reply_timeout=1.0, settlement_interval=3600.0, max_restarts=1000)
    async with open_market(journal, config) as engine:
        await place(engine, buy(ALICE, 10, BTC_MID))
        for _ in range(10):
            with trio.fail_after(5):
                await inject_crash(engine, BTC.symbol)
                try:
                    _, bids, _ = await engine.book(BTC.symbol)
                except ActorUnavailable:
                    continue
            assert bids == [(BTC_MID, 10)]


async def test_orders_racing_a_crash_are_answered_and_lost_ones_release_their_holds(
    journal: InMemoryJournal,
) -> None:
    # Each round sends a burst of orders around a crash; depending on how the
    # tasks interleave, the crash lands before, inside or after the batch the
    # symbol actor takes. Every order must be answered (filled in, or
    # ActorUnavailable if it never reached the journal) and hold only if open.
    # A lost order's client order id is free again: its resend is a new order.
    config = EngineConfig(reply_timeout=1.0, settlement_interval=3600.0, max_restarts=1000)
    async with open_market(journal, config) as engine:
        accepted = 0
        for round_ in range(12):
            outcomes: list[str] = []
            lost: list[int] = []

            async def submit(
                i: int, outcomes: list[str] = outcomes, lost: list[int] = lost, r: int = round_
            ) -> None:
                order = buy(ALICE, 10, BTC_MID - i, client_order_id=ClientOrderId(f"{r}-{i}"))
                try:
                    result = await engine.submit(order)
                except TradingEngineError as exc:
                    outcomes.append(type(exc).__name__)
                    lost.append(i)
                else:
                    outcomes.append(type(result).__name__)

            with trio.fail_after(5):
                async with trio.open_nursery() as nursery:
                    for i in range(10):
                        nursery.start_soon(submit, i)
                    for _ in range(1 + round_ % 2):
                        await trio.lowlevel.checkpoint()
                    await inject_crash(engine, BTC.symbol)
                    for i in range(10, 20):
                        nursery.start_soon(submit, i)
            assert set(outcomes) <= {"OrderResult", ActorUnavailable.__name__}, outcomes
            for i in lost:
                again = await place(
                    engine,
                    buy(ALICE, 10, BTC_MID - i, client_order_id=ClientOrderId(f"{round_}-{i}")),
                )
                assert not again.duplicate
                outcomes.append("OrderResult")
            await quiesce(engine)
            with trio.fail_after(5):
                open_orders = await engine.user_orders(ALICE, open_only=True, limit=1000)
                balances = await engine.balances(ALICE)
            holds = sum(buy_hold(BTC, o.remaining, o.price) for o in open_orders)
            accepted += outcomes.count("OrderResult")
            assert len(open_orders) == accepted
            assert balances["AIT"] == (RICH["AIT"] - holds, holds), f"round {round_}"
        assert crashes(engine, BTC.symbol) == 12


async def test_five_crashes_within_the_window_halt_the_symbol_until_resumed(
    engine: Engine,
) -> None:
    await _build_btc_book(engine)
    with trio.fail_after(5):
        before = await engine.book(BTC.symbol)
    resting = (await engine.user_orders(ALICE, open_only=True))[0]
    for _ in range(4):
        await crash(engine, BTC.symbol)
    assert engine.halted() == {}
    await crash(engine, BTC.symbol, halts=True)
    assert BTC.symbol in engine.halted()
    assert "crashed 5 times" in engine.halted()[BTC.symbol]
    await quiesce(engine)
    # Halted: new orders are rejected, cancels refused, the book kept and still readable.
    outcome = await reject(engine, buy(ALICE, 10, BTC_MID - 50))
    assert outcome.reasons == (RejectReason.SYMBOL_HALTED,)
    with trio.fail_after(5):
        cancel = await engine.cancel(resting.order_id, ALICE)
        assert await engine.book(BTC.symbol) == before
    assert isinstance(cancel, Refused)
    assert cancel.code == "symbol_halted"
    # Other symbols trade on.
    await place(engine, sell(BOB, 10, ETH_MID, symbol=ETH.symbol))
    assert (await place(engine, buy(ALICE, 10, ETH_MID, symbol=ETH.symbol))).trades
    with trio.fail_after(5):
        assert await engine.resume(BTC.symbol) is None
        await wait_ready(engine, BTC.symbol)
        assert await engine.book(BTC.symbol) == before
    assert engine.halted() == {}
    await quiesce(engine)
    assert (await place(engine, sell(CAROL, 10, BTC_MID - 100))).trades
    # The window starts over after a resume: one more crash does not halt.
    await crash(engine, BTC.symbol)
    assert engine.halted() == {}


async def test_admin_halt_rejects_orders_until_resume(engine: Engine) -> None:
    resting = await place(engine, buy(ALICE, 100, BTC_MID))
    with trio.fail_after(5):
        assert await engine.halt(BTC.symbol, "maintenance") is None
    assert engine.halted() == {BTC.symbol: "maintenance"}
    outcome = await reject(engine, sell(BOB, 100, BTC_MID))
    assert outcome.reasons == (RejectReason.SYMBOL_HALTED,)
    with trio.fail_after(5):
        cancel = await engine.cancel(resting.order.order_id, ALICE)
        amend = await engine.amend(resting.order.order_id, ALICE, quantity=50)
        again = await engine.halt(BTC.symbol)
    for refused in (cancel, amend, again):
        assert isinstance(refused, Refused)
        assert refused.code == "symbol_halted"
    with trio.fail_after(5):
        assert (await engine.balances(BOB))["BTC"] == (RICH["BTC"], 0)
        assert await engine.resume(BTC.symbol) is None
        again = await engine.resume(BTC.symbol)
    assert isinstance(again, Refused)
    assert again.code == "symbol_trading"
    assert engine.halted() == {}
    with trio.fail_after(5):
        await wait_ready(engine, BTC.symbol)
    taken = await place(engine, sell(BOB, 100, BTC_MID))
    assert [t.maker_order_id for t in taken.trades] == [resting.order.order_id]


async def test_order_sent_as_soon_as_resume_returns_is_accepted(engine: Engine) -> None:
    resting = await place(engine, buy(ALICE, 100, BTC_MID))
    with trio.fail_after(5):
        assert await engine.halt(BTC.symbol) is None
        assert await engine.resume(BTC.symbol) is None
    taken = await place(engine, sell(BOB, 100, BTC_MID))
    assert [t.maker_order_id for t in taken.trades] == [resting.order.order_id]


async def test_halt_and_resume_of_unknown_symbol_are_refused(engine: Engine) -> None:
    with trio.fail_after(5):
        halted = await engine.halt(Symbol("DOGE_AIT"))
        resumed = await engine.resume(Symbol("DOGE_AIT"))
    assert isinstance(halted, Refused)
    assert isinstance(resumed, Refused)
    assert (halted.code, resumed.code) == ("symbol_unknown", "symbol_unknown")


async def test_orders_in_flight_when_halted_are_rejected_and_release_their_holds(
    engine: Engine,
) -> None:
    outcomes: list[object] = []

    async def submit(i: int) -> None:
        outcomes.append(await engine.submit(buy(ALICE, 10, BTC_MID - i)))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(submit, i)
            await trio.lowlevel.checkpoint()
            assert await engine.halt(BTC.symbol) is None
    assert {type(o) for o in outcomes} <= {OrderResult, Rejected}
    await quiesce(engine)
    with trio.fail_after(5):
        open_orders = await engine.user_orders(ALICE, open_only=True)
        balances = await engine.balances(ALICE)
    accepted = [o for o in outcomes if isinstance(o, OrderResult)]
    assert len(open_orders) == len(accepted)
    holds = sum(buy_hold(BTC, o.remaining, o.price) for o in open_orders)
    assert balances["AIT"] == (RICH["AIT"] - holds, holds)


async def test_adding_a_listed_symbol_is_refused_and_a_new_one_trades_at_once(
    engine: Engine,
) -> None:
    with trio.fail_after(5):
        refused = await engine.add_symbol(BTC)
    assert isinstance(refused, Refused)
    assert refused.code == "symbol_exists"
    sol = Instrument.create("SOL_AIT", "SOL", "AIT", "0.01", "0.01")
    with trio.fail_after(5):
        assert await engine.add_symbol(sol) is None
        await engine.deposit(BOB, "SOL", 10**10)
    assert set(engine.instruments()) == {BTC.symbol, ETH.symbol, sol.symbol}
    await place(engine, sell(BOB, 100, 5_000, symbol=sol.symbol))
    taken = await place(engine, buy(ALICE, 100, 5_000, symbol=sol.symbol))
    assert taken.order.status is OrderStatus.FILLED
