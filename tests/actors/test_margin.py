"""Margin mode end to end: positions, realized profit and loss, margin, liquidation, insurance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from tests.actors.helpers import buy, open_market, place, reject, sell
from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderRequest, Refused
from trading_engine.audit import audit
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import (
    ACCOUNTS_STREAM,
    LEDGER_STREAM,
    Liquidated,
    MarginSettled,
    Posted,
)
from trading_engine.core.enums import OrderStatus, OrderType, RejectReason, Side, StpMode
from trading_engine.core.events import Trade
from trading_engine.core.ids import ClientOrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.errors import InvalidInput
from trading_engine.storage.journal import InMemoryJournal, Journal

PERP = Instrument.create(
    "XBT_USD", "XBT", "USD", "0.01", "0.0001", taker_fee_bps=10, price_band_pct="10",
    mode="margin",
)  # fmt: skip
"""One tick x one lot is 100 USD minor units; at 100,000 ticks a lot is worth 10,000,000."""
SYMBOL = PERP.symbol
DAVE, ERIN, MAKER, TAKER = UserId("dave"), UserId("erin"), UserId("maker"), UserId("taker")
RICH = 10**12
CONFIG = EngineConfig(settlement_interval=3600.0)


@asynccontextmanager
async def margin_market(journal: Journal, funding: dict[UserId, int]) -> AsyncIterator[Engine]:
    """The helpers' market plus the margin symbol, with ``funding`` in USD."""
    usd = {user: {"USD": amount} for user, amount in funding.items()}
    async with open_market(journal, CONFIG, usd) as engine:
        with trio.fail_after(5):
            assert await engine.add_symbol(PERP) is None
        yield engine


def taker_fee(price: int, quantity: int) -> int:
    return -((-PERP.notional(price, quantity) * 10) // 10_000)


async def trade(engine: Engine, seller: UserId, buyer: UserId, quantity: int, price: int) -> None:
    """``seller`` rests, ``buyer`` takes: a trade of ``quantity`` at ``price``."""
    await place(engine, sell(seller, quantity, price, SYMBOL))
    await place(engine, buy(buyer, quantity, price, SYMBOL))


async def settle_all(engine: Engine, journal: InMemoryJournal) -> None:
    """Wait until every trade of every symbol is settled (margin ones by their postings)."""
    with trio.fail_after(5):
        while True:
            keys = [
                f"{e.symbol}:{e.trade_id}"
                for symbol in engine.instruments()
                for e in await journal.read(symbol)
                if isinstance(e, Trade)
            ]
            await engine.settle(keys)
            statuses = [await engine.settlement(key) for key in keys]
            if all(s is not None and s["status"] == "settled" for s in statuses):
                return
            await trio.sleep(0.001)


async def snapshot(engine: Engine, users: list[UserId]) -> dict[UserId, Any]:
    with trio.fail_after(5):
        await engine.check_invariants()
        out: dict[UserId, Any] = {}
        for user in users:
            margin = await engine.margin(user)
            usd = margin["assets"].get("USD")
            out[user] = (
                await engine.balances(user),
                await engine.positions(user),
                margin["positions"],
                None
                if usd is None
                else (usd["collateral"], usd["requirement"], usd["margin_held"]),
            )
        return out


async def check_books(engine: Engine, journal: InMemoryJournal, users: list[UserId]) -> None:
    """Every ledger total is zero and each user's ledger balance equals the accounts."""
    await settle_all(engine, journal)
    with trio.fail_after(5):
        assert set((await engine.ledger_totals()).values()) <= {0}
        for user in users:
            available, held = (await engine.balances(user)).get("USD", (0, 0))
            assert await engine.ledger_balance(user, "USD") == available + held, user


async def audit_ok(journal: InMemoryJournal) -> None:
    report = await audit(journal)
    assert report["ok"], report["problems"]


async def test_long_and_short_close_with_a_profit_and_a_loss() -> None:
    journal = InMemoryJournal()
    users = [DAVE, ERIN]
    async with margin_market(journal, {DAVE: 10**11, ERIN: 10**11}) as engine:
        await trade(engine, ERIN, DAVE, 100, 100_000)  # dave long 100, erin short 100
        margin = await engine.margin(DAVE)
        assert margin["positions"] == {SYMBOL: (100, 10**9)}
        assert (await engine.margin(ERIN))["positions"] == {SYMBOL: (-100, -(10**9))}
        # Initial margin 10% of the cost, held out of the collateral; no XBT anywhere.
        assert margin["assets"]["USD"]["requirement"] == 10**8
        dave_usd = await engine.balances(DAVE)
        assert dave_usd == {"USD": (10**11 - taker_fee(100_000, 100) - 10**8, 10**8)}
        assert await engine.positions(DAVE) == {SYMBOL: 100}
        # Dave closes at 110,000: +100,000,000 for him, as much lost by erin.
        await place(engine, buy(ERIN, 100, 110_000, SYMBOL))
        await place(engine, sell(DAVE, 100, 110_000, SYMBOL))
        await check_books(engine, journal, users)
        balances = await snapshot(engine, users)
        fees = taker_fee(100_000, 100) + taker_fee(110_000, 100)
        assert balances[DAVE][0] == {"USD": (10**11 + 10**8 - fees, 0)}
        assert balances[ERIN][0] == {"USD": (10**11 - 10**8, 0)}
        assert balances[DAVE][2] == {}
        assert balances[ERIN][2] == {}
        settled = [e for e in await journal.read(ACCOUNTS_STREAM) if isinstance(e, MarginSettled)]
        # The buyer's side first, then the seller's.
        assert [(e.user_id, e.realized) for e in settled] == [
            (DAVE, 0), (ERIN, 0), (ERIN, -(10**8)), (DAVE, 10**8),
        ]  # fmt: skip
    await audit_ok(journal)


async def test_partial_closes_and_a_reversal_keep_exact_cost() -> None:
    journal = InMemoryJournal()
    users = [DAVE, ERIN]
    async with margin_market(journal, {DAVE: 10**11, ERIN: 10**11}) as engine:
        await trade(engine, ERIN, DAVE, 3, 100_001)  # cost 30,000,300: not divisible by 3 lots
        await trade(engine, DAVE, ERIN, 1, 100_000)  # close a third
        margin = await engine.margin(DAVE)
        assert margin["positions"] == {SYMBOL: (2, 30_000_300 - 10_000_100)}
        await trade(engine, DAVE, ERIN, 5, 99_000)  # close 2, open 3 short
        assert (await engine.margin(DAVE))["positions"] == {SYMBOL: (-3, -29_700_000)}
        assert (await engine.margin(ERIN))["positions"] == {SYMBOL: (3, 29_700_000)}
        await trade(engine, ERIN, DAVE, 3, 98_000)  # dave's short closes at a profit
        await check_books(engine, journal, users)
        realized = {
            user: sum(
                e.realized
                for e in await journal.read(ACCOUNTS_STREAM)
                if isinstance(e, MarginSettled) and e.user_id == user
            )
            for user in users
        }
        # -100 on the first lot, -200,200 on the next two, +300,000 on the short.
        assert realized[DAVE] == -100 - 200_200 + 300_000
        assert realized[ERIN] == -realized[DAVE]
        assert (await engine.margin(DAVE))["positions"] == {}
    await audit_ok(journal)


async def test_an_order_beyond_the_collateral_is_refused_for_margin() -> None:
    journal = InMemoryJournal()
    # 100 lots at 100,000 need 100 x (1,000,000 + 10,000) of margin.
    async with margin_market(journal, {DAVE: 101_000_000 - 1, ERIN: 10**11}) as engine:
        refused = await reject(engine, buy(DAVE, 100, 100_000, SYMBOL))
        assert refused.reasons == (RejectReason.INSUFFICIENT_MARGIN,)
        await place(engine, buy(DAVE, 99, 100_000, SYMBOL))
        assert await engine.balances(DAVE) == {"USD": (1_010_000 - 1, 99 * 1_010_000)}
        reserved = OrderRequest(
            ERIN, SYMBOL, Side.SELL, OrderType.LIMIT, 1, 100_000,
            client_order_id=ClientOrderId("liq-1"),
        )  # fmt: skip
        with trio.fail_after(5):
            try:
                await engine.submit(reserved)
            except InvalidInput:
                pass
            else:
                raise AssertionError("a liq- client order id was accepted")
        await engine.cancel_all(DAVE)
        assert await engine.balances(DAVE) == {"USD": (101_000_000 - 1, 0)}
    await audit_ok(journal)


async def drive_mark(engine: Engine, price: int, below: int) -> None:
    """Trade 1 lot at ``price`` between two other users until the mark is below ``below``."""
    with trio.fail_after(10):
        for _ in range(100):
            ticker = await engine.ticker(SYMBOL)
            assert ticker is not None
            if ticker["mark"] is not None and ticker["mark"] < below:
                return
            await trade(engine, MAKER, TAKER, 1, price)
        raise AssertionError("the mark did not move")


async def wait_flat(engine: Engine, user: UserId) -> None:
    with trio.fail_after(5):
        while (await engine.margin(user))["positions"]:
            await trio.sleep(0.001)


async def test_a_falling_mark_liquidates_a_long_into_the_book() -> None:
    journal = InMemoryJournal()
    users = [DAVE, ERIN, MAKER, TAKER]
    funding = {DAVE: 120_000_000, ERIN: RICH, MAKER: RICH, TAKER: RICH}
    async with margin_market(journal, funding) as engine:
        await trade(engine, ERIN, DAVE, 100, 100_000)  # dave's collateral: 119,000,000
        await place(engine, buy(ERIN, 200, 91_000, SYMBOL))  # the liquidity for the liquidation
        await place(engine, buy(DAVE, 1, 90_500, SYMBOL))  # cancelled by the liquidation
        # Equity 119,000,000 + 10,000 x (mark - 100,000) < maintenance 500 x mark
        # below a mark of 92,736.
        await drive_mark(engine, 91_500, 92_736)
        await wait_flat(engine, DAVE)
        events = [e for e in await journal.read(ACCOUNTS_STREAM) if isinstance(e, Liquidated)]
        assert [(e.user_id, e.quantity) for e in events] == [(DAVE, 100)]
        assert events[0].equity < events[0].maintenance
        await check_books(engine, journal, users)
        fee = taker_fee(100_000, 100) + taker_fee(91_000, 100)
        loss = 100 * 9_000 * 100
        assert await engine.balances(DAVE) == {"USD": (120_000_000 - fee - loss, 0)}
        assert await engine.user_orders(DAVE, open_only=True) == []
        settled = [e for e in await journal.read(ACCOUNTS_STREAM) if isinstance(e, MarginSettled)]
        assert all(e.insurance == 0 for e in settled)
    await audit_ok(journal)


async def test_a_gap_past_the_collateral_is_paid_by_the_insurance_fund() -> None:
    journal = InMemoryJournal()
    users = [DAVE, ERIN, MAKER, TAKER]
    funding = {DAVE: 102_000_000, ERIN: RICH, MAKER: RICH, TAKER: RICH}
    async with margin_market(journal, funding) as engine:
        await trade(engine, ERIN, DAVE, 100, 100_000)  # collateral 101,000,000
        await drive_mark(engine, 97_000, 98_800)  # the band now reaches 89,000
        await place(engine, buy(ERIN, 200, 89_000, SYMBOL))
        # Liquidated below a mark of 94,631, into the bid at 89,000: a loss of
        # 110,000,000 plus the fee, more than the collateral.
        await drive_mark(engine, 92_000, 94_631)
        await wait_flat(engine, DAVE)
        await check_books(engine, journal, users)
        assert await engine.balances(DAVE) == {"USD": (0, 0)}
        settled = [
            e
            for e in await journal.read(ACCOUNTS_STREAM)
            if isinstance(e, MarginSettled) and e.insurance
        ]
        expected = 100 * 11_000 * 100 + taker_fee(89_000, 100) - 101_000_000
        assert [(e.user_id, e.insurance) for e in settled] == [(DAVE, expected)]
    await audit_ok(journal)


async def test_a_restart_rebuilds_balances_positions_and_requirements() -> None:
    journal = InMemoryJournal()
    users = [DAVE, ERIN, MAKER, TAKER]
    funding = {DAVE: 200_000_000, ERIN: RICH, MAKER: RICH, TAKER: RICH}
    async with margin_market(journal, funding) as engine:
        await trade(engine, ERIN, DAVE, 100, 100_000)
        await trade(engine, DAVE, ERIN, 30, 101_000)
        await place(engine, buy(DAVE, 10, 99_000, SYMBOL))  # an open margin order
        await place(engine, sell(MAKER, 5, 102_000, SYMBOL))
        await check_books(engine, journal, users)
        before = await snapshot(engine, users)
    async with open_engine(CONFIG, journal) as engine:
        with trio.fail_after(5):
            await engine.ticker(SYMBOL)
        assert await snapshot(engine, users) == before
        await check_books(engine, journal, users)
    await audit_ok(journal)


async def test_a_margin_trade_whose_settlement_was_not_written_is_settled_after_a_restart() -> None:
    journal = InMemoryJournal()
    users = [DAVE, ERIN]
    async with margin_market(journal, {DAVE: 10**11, ERIN: 10**11}) as engine:
        await trade(engine, ERIN, DAVE, 100, 100_000)
        await trade(engine, DAVE, ERIN, 100, 105_000)
        await check_books(engine, journal, users)
        before = await snapshot(engine, users)
    # A crash between the trade's commit and its MarginSettled commit: drop the last two.
    stream = journal._streams[ACCOUNTS_STREAM]
    lost = stream[-2:]
    assert all(isinstance(e, MarginSettled) for e in lost)
    del stream[-2:]
    # Their postings were never made, so never journaled either.
    ledger = journal._streams[LEDGER_STREAM]
    posted = {f"margin:{e.seq}" for e in lost}
    lost += [e for e in ledger if isinstance(e, Posted) and e.posting_id in posted]
    assert len(lost) == 4
    assert ledger[-2:] == lost[2:]
    del ledger[-2:]
    journal._log = [(s, e) for s, e in journal._log if not any(e is x for x in lost)]
    async with open_engine(CONFIG, journal) as engine:
        await check_books(engine, journal, users)
        assert await snapshot(engine, users) == before
    rewritten = (await journal.read(ACCOUNTS_STREAM))[-2:]

    def sides(events: list[Any]) -> list[tuple[UserId, int, int]]:
        return [(e.user_id, e.realized, e.fee) for e in events if isinstance(e, MarginSettled)]

    assert sides(rewritten) == sides(lost)
    assert len(sides(rewritten)) == 2
    await audit_ok(journal)


async def test_an_amend_of_a_margin_order_checks_its_margin_again() -> None:
    journal = InMemoryJournal()
    # Exactly the margin of 10 lots at 100,000: 10 x (1,000,000 + 10,000).
    async with margin_market(journal, {DAVE: 10_100_000}) as engine:
        order_id = (await place(engine, buy(DAVE, 5, 100_000, SYMBOL))).order.order_id
        assert await engine.balances(DAVE) == {"USD": (5_050_000, 5_050_000)}
        with trio.fail_after(5):
            refused = await engine.amend(order_id, DAVE, quantity=11)
            assert isinstance(refused, Refused)
            assert refused.code == "insufficient_margin"
            assert await engine.balances(DAVE) == {"USD": (5_050_000, 5_050_000)}
            assert not isinstance(await engine.amend(order_id, DAVE, quantity=10), Refused)
            assert await engine.balances(DAVE) == {"USD": (0, 10_100_000)}
            # A higher price needs more per lot: 10 x (1,010,000 + 10,100) is too much.
            refused = await engine.amend(order_id, DAVE, price=101_000)
            assert isinstance(refused, Refused)
            assert refused.code == "insufficient_margin"
            # A lower one releases margin: 10 x (990,000 + 9,900).
            assert not isinstance(await engine.amend(order_id, DAVE, price=99_000), Refused)
            assert await engine.balances(DAVE) == {"USD": (101_000, 9_999_000)}
            view = await engine.order(order_id)
            assert view is not None
            assert (view.price, view.quantity) == (99_000, 10)
    await audit_ok(journal)


async def test_a_stop_order_in_a_margin_symbol_holds_margin_at_its_protection_price() -> None:
    journal = InMemoryJournal()
    # A buy stop at 105,000 may trade up to the band's edge, 115,500: one lot needs
    # 10% of 11,550,000 plus the 10 bps fee on it, 1,166,550.
    needed = 10 * (1_155_000 + 11_550)
    stop = OrderRequest(DAVE, SYMBOL, Side.BUY, OrderType.STOP, 10, stop_price=105_000)
    async with margin_market(journal, {DAVE: needed - 1}) as engine:
        refused = await reject(engine, stop)
        assert refused.reasons == (RejectReason.INSUFFICIENT_MARGIN,)
        with trio.fail_after(5):
            check = await engine.check(stop)
            assert (check.hold_asset, check.hold_amount) == ("USD", needed)
            assert isinstance(await engine.deposit(DAVE, "USD", 1), tuple)
        placed = await place(engine, stop)
        assert placed.order.status is OrderStatus.PENDING_TRIGGER
        assert await engine.balances(DAVE) == {"USD": (0, needed)}
        margin = (await engine.margin(DAVE))["assets"]["USD"]
        assert (margin["requirement"], margin["margin_held"]) == (needed, needed)
        await engine.cancel_all(DAVE)
        assert await engine.balances(DAVE) == {"USD": (needed, 0)}
    await audit_ok(journal)


async def test_self_trade_prevention_in_a_margin_symbol_moves_no_position() -> None:
    journal = InMemoryJournal()
    async with margin_market(journal, {DAVE: 10**11}) as engine:
        await place(engine, sell(DAVE, 10, 100_000, SYMBOL))
        newest = await place(engine, buy(DAVE, 10, 100_000, SYMBOL))
        assert (newest.trades, newest.order.reason) == ((), "self_trade_prevention")
        decremented = await place(engine, buy(DAVE, 4, 100_000, SYMBOL, stp=StpMode.DECREMENT))
        assert decremented.trades == ()
        assert [v.remaining for v in await engine.user_orders(DAVE, open_only=True)] == [6]
        assert (await engine.margin(DAVE))["positions"] == {}
        assert await engine.positions(DAVE) == {}
        # Allowed to trade with itself: a trade, but the two sides cancel out.
        traded = await place(engine, buy(DAVE, 6, 100_000, SYMBOL, stp=StpMode.NONE))
        assert [t.quantity for t in traded.trades] == [6]
        assert (await engine.margin(DAVE))["positions"] == {}
        assert await engine.positions(DAVE) == {}
        assert await engine.self_trades_prevented() == {DAVE: 2}
        # Only the taker's fee moved money: 10 bps of 6 lots at 100,000.
        await check_books(engine, journal, [DAVE])
        assert await engine.balances(DAVE) == {"USD": (10**11 - 60_000, 0)}
    await audit_ok(journal)
