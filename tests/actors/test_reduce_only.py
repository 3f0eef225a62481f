"""Reduce-only orders and liquidations end to end, on the margin symbol of ``test_margin``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from tests.actors.helpers import buy, place, reject, sell
from tests.actors.test_margin import (
    CONFIG,
    DAVE,
    ERIN,
    MAKER,
    RICH,
    SYMBOL,
    TAKER,
    audit_ok,
    check_books,
    drive_mark,
    margin_market,
    snapshot,
    trade,
    wait_flat,
)
from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderRequest
from trading_engine.core.account_events import ACCOUNTS_STREAM, Liquidated
from trading_engine.core.enums import CancelReason, OrderStatus, OrderType, RejectReason, Side
from trading_engine.core.events import OrderAccepted, OrderCancelled
from trading_engine.core.ids import UserId
from trading_engine.errors import InvalidInput
from trading_engine.storage.journal import InMemoryJournal

EVERYONE = [DAVE, ERIN, MAKER, TAKER]
ONE_LOT = 1_010_000
"""The margin one lot at 100,000 needs: 10% of 10,000,000 and the worst fee, 10 bps."""


def reducing(side: Side, quantity: int, price: int = 0, user: UserId = DAVE) -> OrderRequest:
    """A reduce-only limit order (a market order without ``price``)."""
    kind = OrderType.LIMIT if price else OrderType.MARKET
    return OrderRequest(user, SYMBOL, side, kind, quantity, price, reduce_only=True)


async def usd(engine: Engine, user: UserId) -> tuple[int, int]:
    with trio.fail_after(5):
        return (await engine.balances(user))["USD"]


async def position(engine: Engine, user: UserId) -> int:
    with trio.fail_after(5):
        return (await engine.positions(user)).get(SYMBOL, 0)


@asynccontextmanager
async def dave_long_100(journal: InMemoryJournal) -> AsyncIterator[Engine]:
    """Dave long 100 lots at 100,000 on 120,000,000 of collateral (119,000,000 after the
    fee): equity falls below maintenance at a mark under 92,736."""
    funding = {DAVE: 120_000_000, ERIN: RICH, MAKER: RICH, TAKER: RICH}
    async with margin_market(journal, funding) as engine:
        await trade(engine, ERIN, DAVE, 100, 100_000)
        yield engine


async def liquidations(journal: InMemoryJournal) -> list[Liquidated]:
    return [e for e in await journal.read(ACCOUNTS_STREAM) if isinstance(e, Liquidated)]


async def test_a_reduce_only_order_needs_no_margin_and_closes_the_position() -> None:
    journal = InMemoryJournal()
    async with margin_market(journal, {DAVE: 10 * ONE_LOT, ERIN: RICH}) as engine:
        await trade(engine, ERIN, DAVE, 10, 100_000)  # the fee, 100,000, leaves 10,000,000
        assert await usd(engine, DAVE) == (0, 10_000_000)  # all of it the position's margin
        refused = await reject(engine, sell(DAVE, 10, 101_000, SYMBOL))
        assert refused.reasons == (RejectReason.INSUFFICIENT_MARGIN,)
        placed = await place(engine, reducing(Side.SELL, 10, 101_000))
        assert placed.order.reduce_only
        assert await usd(engine, DAVE) == (0, 10_000_000)
        await place(engine, buy(ERIN, 10, 101_000, SYMBOL))
        assert await position(engine, DAVE) == 0
        # 10 lots x 1,000 ticks x 100: the profit; the maker pays no fee.
        assert await usd(engine, DAVE) == (11_000_000, 0)
        await check_books(engine, journal, [DAVE, ERIN])
    await audit_ok(journal)


async def test_a_reduce_only_order_with_nothing_to_reduce_is_rejected() -> None:
    journal = InMemoryJournal()
    async with margin_market(journal, {DAVE: RICH, ERIN: RICH}) as engine:
        flat = await reject(engine, reducing(Side.SELL, 1, 100_000))
        assert flat.reasons == (RejectReason.REDUCE_ONLY_WOULD_INCREASE,)
        await trade(engine, ERIN, DAVE, 5, 100_000)  # dave long, erin short
        for request in (reducing(Side.BUY, 1, 99_000), reducing(Side.SELL, 1, 101_000, ERIN)):
            refused = await reject(engine, request)
            assert refused.reasons == (RejectReason.REDUCE_ONLY_WOULD_INCREASE,)
            with trio.fail_after(5):
                check = await engine.check(request)
            assert check.reasons == (RejectReason.REDUCE_ONLY_WOULD_INCREASE,)
        with trio.fail_after(5):
            check = await engine.check(reducing(Side.SELL, 5, 101_000))
        assert (check.allowed, check.hold_asset, check.hold_amount) == (True, "USD", 0)
        assert await engine.user_orders(DAVE, open_only=True) == []
    await audit_ok(journal)


async def test_a_reduce_only_order_in_a_spot_symbol_is_bad_input() -> None:
    journal = InMemoryJournal()
    async with margin_market(journal, {DAVE: RICH}) as engine:
        spot = OrderRequest(DAVE, buy(DAVE, 1, 1).symbol, Side.SELL, OrderType.LIMIT, 1, 100_000,
                            reduce_only=True)  # fmt: skip
        for ask in (engine.submit, engine.check):
            with trio.fail_after(5), pytest.raises(InvalidInput) as refused:
                await ask(spot)
            assert refused.value.field == "reduce_only"
        assert await engine.user_orders(DAVE) == []


async def test_a_reduce_only_order_larger_than_the_position_is_cut_to_it() -> None:
    journal = InMemoryJournal()
    async with margin_market(journal, {DAVE: RICH, ERIN: RICH}) as engine:
        await trade(engine, ERIN, DAVE, 10, 100_000)
        resting = await place(engine, reducing(Side.SELL, 25, 105_000))
        assert (resting.order.quantity, resting.order.status) == (10, OrderStatus.OPEN)
        await engine.cancel_all(DAVE)
        await place(engine, buy(ERIN, 50, 99_000, SYMBOL))
        closed = await place(engine, reducing(Side.SELL, 25))  # a market order
        assert (closed.order.quantity, closed.order.filled) == (10, 10)
        assert closed.order.status is OrderStatus.FILLED
        assert await position(engine, DAVE) == 0  # flat, not short 15
        book = await engine.orderbook(SYMBOL)
        assert book is not None
        assert book[1] == [(99_000, 40)]
        await check_books(engine, journal, [DAVE, ERIN])
    await audit_ok(journal)


async def test_a_resting_reduce_only_order_follows_the_position_other_orders_close() -> None:
    journal = InMemoryJournal()
    users = [DAVE, ERIN]
    async with margin_market(journal, {DAVE: RICH, ERIN: RICH}) as engine:
        await trade(engine, ERIN, DAVE, 10, 100_000)
        take_profit = (await place(engine, reducing(Side.SELL, 10, 105_000))).order.order_id
        await trade(engine, DAVE, ERIN, 6, 99_000)  # an ordinary sell: dave long 4
        view = await engine.order(take_profit)
        assert view is not None
        assert (view.quantity, view.remaining, view.status) == (10, 4, OrderStatus.OPEN)
        book = await engine.orderbook(SYMBOL)
        assert book is not None
        assert book[2] == [(105_000, 4)]
        await trade(engine, DAVE, ERIN, 4, 99_000)  # flat: the take-profit has nothing left
        view = await engine.order(take_profit)
        assert view is not None
        assert (view.remaining, view.status, view.reason) == (
            0,
            OrderStatus.CANCELLED,
            "reduce_only",
        )
        assert await engine.user_orders(DAVE, open_only=True) == []
        await check_books(engine, journal, EVERYONE)
        before = await snapshot(engine, users)
    async with open_engine(CONFIG, journal) as engine:
        assert await engine.order(take_profit) == view
        assert await snapshot(engine, users) == before
    await audit_ok(journal)


async def test_a_reduce_only_order_left_by_another_that_closed_the_position_is_cancelled() -> None:
    # Two reduce-only sells of the whole position rest; a buyer takes both prices at once.
    journal = InMemoryJournal()
    async with margin_market(journal, {DAVE: RICH, ERIN: RICH}) as engine:
        await trade(engine, ERIN, DAVE, 5, 100_000)
        first = (await place(engine, reducing(Side.SELL, 5, 101_000))).order.order_id
        second = (await place(engine, reducing(Side.SELL, 5, 102_000))).order.order_id
        taken = await place(engine, buy(ERIN, 10, 102_000, SYMBOL))
        assert [(t.maker_order_id, t.quantity) for t in taken.trades] == [(first, 5)]
        assert await position(engine, DAVE) == 0
        events = [e for e in await journal.read(SYMBOL) if isinstance(e, OrderCancelled)]
        assert [(e.order_id, e.reason) for e in events] == [(second, CancelReason.REDUCE_ONLY)]
        await check_books(engine, journal, [DAVE, ERIN])
    await audit_ok(journal)


async def test_a_partly_filled_liquidation_is_followed_by_another_for_the_rest() -> None:
    journal = InMemoryJournal()
    async with dave_long_100(journal) as engine:
        await place(engine, buy(ERIN, 40, 91_000, SYMBOL))  # a thin book: 40 of 100 lots
        await drive_mark(engine, 91_500, 92_736)
        with trio.fail_after(5):
            while await position(engine, DAVE) != 60:
                await trio.sleep(0.001)
        first = await liquidations(journal)
        assert [(e.user_id, e.quantity) for e in first] == [(DAVE, 100)]
        # The rest stays open while equity covers maintenance; a deeper bid and a lower
        # mark liquidate it, so the first liquidation left nothing stuck.
        await place(engine, buy(ERIN, 200, 90_000, SYMBOL))
        await drive_mark(engine, 90_500, 91_000)
        await wait_flat(engine, DAVE)
        assert [(e.user_id, e.quantity) for e in await liquidations(journal)] == [
            (DAVE, 100),
            (DAVE, 60),
        ]
        orders = [
            e.spec
            for e in await journal.read(SYMBOL)
            if isinstance(e, OrderAccepted) and e.spec.user_id == DAVE and e.spec.client_order_id
        ]
        assert [(s.quantity, s.reduce_only) for s in orders] == [(100, True), (60, True)]
        await check_books(engine, journal, EVERYONE)
    await audit_ok(journal)


def _lose_last_liquidation_order(journal: InMemoryJournal, liquidated: Liquidated) -> None:
    """Drop the last liquidation's order from the journal, as a crash between the commit
    of its ``Liquidated`` and its own would have."""
    stream = journal._streams[SYMBOL]
    client_id = f"liq-{liquidated.seq}"
    start = next(
        i
        for i, e in enumerate(stream)
        if isinstance(e, OrderAccepted) and e.spec.client_order_id == client_id
    )
    lost: list[Any] = stream[start:]
    accepted = stream[start]
    assert isinstance(accepted, OrderAccepted)
    order_id = accepted.spec.order_id
    assert all(getattr(e, "order_id", None) == order_id for e in lost[1:]), lost
    del stream[start:]
    journal._log = [(s, e) for s, e in journal._log if not any(e is x for x in lost)]


async def test_a_liquidation_whose_order_a_crash_lost_is_tried_again_after_a_restart() -> None:
    journal = InMemoryJournal()
    async with dave_long_100(journal) as engine:
        await drive_mark(engine, 91_500, 92_736)  # liquidated into an empty book: no fill
        with trio.fail_after(5):
            while not (await liquidations(journal)) or await engine.user_orders(
                DAVE, open_only=True
            ):
                await trio.sleep(0.001)
            await engine.check_invariants()
        assert await position(engine, DAVE) == 100
    last = (await liquidations(journal))[-1]
    _lose_last_liquidation_order(journal, last)
    async with open_engine(CONFIG, journal) as engine:
        await place(engine, buy(ERIN, 200, 91_000, SYMBOL))
        await trade(engine, MAKER, TAKER, 1, 91_500)  # a new mark: dave is checked again
        await wait_flat(engine, DAVE)
        assert (await liquidations(journal))[-1].seq > last.seq
        await check_books(engine, journal, EVERYONE)
    await audit_ok(journal)
