"""Take-profit, trailing-stop, iceberg and quote-sized market orders through the actors:
their holds, exact and released exactly, and a restart that rebuilds them."""

from __future__ import annotations

import trio

from tests.actors.helpers import (
    ALICE,
    BOB,
    BTC,
    BTC_MID,
    buy,
    buy_hold,
    open_market,
    place,
    quiesce,
    sell,
)
from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderRequest, OrderResult, Rejected
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderStatus, OrderType, RejectReason, Side, StpMode
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.risk import protection_price
from trading_engine.core.views import OrderView
from trading_engine.storage.journal import InMemoryJournal

CONFIG = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)


async def held(engine: Engine, user: UserId, asset: str) -> int:
    with trio.fail_after(5):
        return (await engine.balances(user))[asset][1]


async def print_at(engine: Engine, price: int) -> None:
    """Print a trade of one lot at ``price`` (Bob with himself, self-trade prevention off)."""
    await place(engine, sell(BOB, 1, price))
    await place(engine, buy(BOB, 1, price, stp=StpMode.NONE))


async def cancel(engine: Engine, result: OrderResult, user: UserId) -> None:
    with trio.fail_after(5):
        assert isinstance(await engine.cancel(result.order.order_id, user), OrderResult)


# ---------------------------------------------------------------------------- take-profit


async def test_buy_take_profit_holds_at_its_protection_price_and_releases_it_on_cancel(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await print_at(engine, BTC_MID)
        stop = BTC_MID - 1_000
        request = OrderRequest(ALICE, BTC.symbol, Side.BUY, OrderType.TAKE_PROFIT, 30, 0, stop)
        pending = await holds_at_cap_until_cancelled(engine, request, stop)
        assert pending.order.status is OrderStatus.PENDING_TRIGGER


async def holds_at_cap_until_cancelled(
    engine: Engine, request: OrderRequest, around: int
) -> OrderResult:
    """Place Alice's buy ``request``: its protection price is the band's edge ``around``
    a price, it holds for its lots there, and its cancel releases exactly that."""
    await quiesce(engine)
    before = await held(engine, ALICE, "AIT")
    pending = await place(engine, request)
    cap = protection_price(BTC, Side.BUY, around)
    assert cap is not None
    assert pending.order.protection_price == cap
    await quiesce(engine)
    assert await held(engine, ALICE, "AIT") == before + buy_hold(BTC, request.quantity, cap)
    await cancel(engine, pending, ALICE)
    await quiesce(engine)
    assert await held(engine, ALICE, "AIT") == before
    return pending


async def test_sell_take_profit_limit_triggers_rests_and_survives_a_restart(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await print_at(engine, BTC_MID)
        request = OrderRequest(
            ALICE, BTC.symbol, Side.SELL, OrderType.TAKE_PROFIT_LIMIT, 20, BTC_MID + 600,
            BTC_MID + 500,
        )  # fmt: skip
        pending = await place(engine, request)
        await print_at(engine, BTC_MID + 500)  # reaches it: it rests at its limit
        await quiesce(engine)
        with trio.fail_after(5):
            open_orders = await engine.user_orders(ALICE, open_only=True)
            book = await engine.book(BTC.symbol)
            balances = await engine.balances(ALICE)
        [view] = [o for o in open_orders if o.order_id == pending.order.order_id]
        assert (view.status, view.price, view.remaining) == (OrderStatus.OPEN, BTC_MID + 600, 20)
        assert balances["BTC"][1] == BTC.base_units(20)
    async with open_engine(CONFIG, journal) as engine:
        await quiesce(engine)
        with trio.fail_after(5):
            assert await engine.user_orders(ALICE, open_only=True) == open_orders
            assert await engine.book(BTC.symbol) == book
            assert await engine.balances(ALICE) == balances


# ---------------------------------------------------------------------------- quote-sized


def quote_market(user: UserId, side: Side, quote: int) -> OrderRequest:
    return OrderRequest(user, BTC.symbol, side, OrderType.MARKET, 0, quote_quantity=quote)


async def test_quote_sized_buy_spends_at_most_its_quote_and_holds_nothing_after(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await place(engine, sell(BOB, 10, BTC_MID))
        await place(engine, sell(BOB, 10, BTC_MID + 100))
        await quiesce(engine)
        with trio.fail_after(5):
            before = await engine.balances(ALICE)
            check = await engine.check(quote_market(ALICE, Side.BUY, 1_234_567_89))
        assert (check.hold_asset, check.hold_amount) == ("AIT", 1_234_567_89)
        taken = await place(engine, quote_market(ALICE, Side.BUY, 1_234_567_89))
        assert taken.order.quote_quantity == 1_234_567_89
        assert taken.order.status is OrderStatus.CANCELLED
        assert taken.order.reason == "quote_quantity_reached"
        cost = sum(BTC.notional(t.price, t.quantity) + t.taker_fee for t in taken.trades)
        assert 0 < cost <= 1_234_567_89
        await quiesce(engine)  # checks the holds and that money is conserved
        with trio.fail_after(5):
            after = await engine.balances(ALICE)
        assert after["AIT"] == (before["AIT"][0] - cost, before["AIT"][1])
        assert after["BTC"][0] == before["BTC"][0] + BTC.base_units(taken.order.filled)


async def test_quote_sized_buy_beyond_the_available_balance_is_rejected(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await place(engine, sell(BOB, 10, BTC_MID))
        await quiesce(engine)
        with trio.fail_after(5):
            available = (await engine.balances(ALICE))["AIT"][0]
            outcome = await engine.submit(quote_market(ALICE, Side.BUY, available + 1))
        assert isinstance(outcome, Rejected)
        [rejection] = outcome.rejections
        assert rejection.reason is RejectReason.INSUFFICIENT_FUNDS
        assert rejection.figures[0].value == available + 1


async def test_quote_sized_sell_holds_its_lot_cap_and_receives_at_most_its_quote(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await place(engine, buy(BOB, 50, BTC_MID))
        await quiesce(engine)
        with trio.fail_after(5):
            before = await engine.balances(ALICE)
        taken = await place(engine, quote_market(ALICE, Side.SELL, 35_000_000))
        got = sum(BTC.notional(t.price, t.quantity) - t.taker_fee for t in taken.trades)
        assert 0 < got <= 35_000_000
        await quiesce(engine)
        with trio.fail_after(5):
            after = await engine.balances(ALICE)
        assert after["AIT"] == (before["AIT"][0] + got, before["AIT"][1])
        assert after["BTC"] == (
            before["BTC"][0] - BTC.base_units(taken.order.filled),
            before["BTC"][1],
        )


# ---------------------------------------------------------------------------- trailing


def trailing(
    user: UserId, side: Side, quantity: int, delta: int, limit_offset: int | None = None
) -> OrderRequest:
    kind = OrderType.TRAILING_STOP if limit_offset is None else OrderType.TRAILING_STOP_LIMIT
    return OrderRequest(
        user, BTC.symbol, side, kind, quantity, trailing_delta=delta,
        limit_offset=limit_offset or 0,
    )  # fmt: skip


async def view_of(engine: Engine, user: UserId, result: OrderResult) -> OrderView:
    with trio.fail_after(5):
        [view] = [o for o in await engine.user_orders(user) if o.order_id == result.order.order_id]
    return view


async def test_a_restart_resumes_a_trailing_stop_at_the_stop_price_it_reached(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await print_at(engine, BTC_MID)
        pending = await place(engine, trailing(ALICE, Side.SELL, 20, 300))
        assert pending.order.stop_price == BTC_MID - 300
        await print_at(engine, BTC_MID + 1_000)
        await print_at(engine, BTC_MID + 800)  # a fall does not move it back
        await quiesce(engine)
        before = await view_of(engine, ALICE, pending)
        assert (before.status, before.stop_price) == (
            OrderStatus.PENDING_TRIGGER,
            BTC_MID + 700,
        )
        with trio.fail_after(5):
            balances = await engine.balances(ALICE)
        assert balances["BTC"][1] == BTC.base_units(20)
    async with open_engine(CONFIG, journal) as engine:
        await quiesce(engine)
        assert await view_of(engine, ALICE, pending) == before
        with trio.fail_after(5):
            assert await engine.balances(ALICE) == balances
        await place(engine, buy(BOB, 50, BTC_MID))  # what the triggered stop sells to
        await print_at(engine, BTC_MID + 700)  # reaches the stop it had before the restart
        await quiesce(engine)
        after = await view_of(engine, ALICE, pending)
        assert (after.status, after.filled) == (OrderStatus.FILLED, 20)
        assert (await held(engine, ALICE, "BTC")) == 0


async def test_buy_trailing_stop_limit_holds_at_its_cap_and_releases_it_on_cancel(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await print_at(engine, BTC_MID)
        request = trailing(ALICE, Side.BUY, 10, 200, limit_offset=50)
        pending = await holds_at_cap_until_cancelled(engine, request, BTC_MID + 250)
        assert pending.order.price == BTC_MID + 250  # the limit it would have had


# ---------------------------------------------------------------------------- iceberg


async def test_a_restart_rebuilds_an_icebergs_slices_and_its_hold(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await quiesce(engine)
        before = await held(engine, ALICE, "AIT")
        resting = await place(engine, buy(ALICE, 100, BTC_MID, display_quantity=30))
        await place(engine, buy(BOB, 10, BTC_MID))
        taken = await place(engine, sell(BOB, 40, BTC_MID, stp=StpMode.NONE))
        # Alice's slice (30), Bob's order behind it (10), then nothing of her next slice.
        assert [(t.maker_order_id, t.quantity) for t in taken.trades] == [
            (resting.order.order_id, 30),
            (OrderId(resting.order.order_id + 1), 10),
        ]
        await quiesce(engine)
        with trio.fail_after(5):
            book = await engine.book(BTC.symbol)
            depth = await engine.orderbook(BTC.symbol)
            view = await view_of(engine, ALICE, resting)
        assert (view.remaining, view.hidden, view.display_quantity) == (70, 40, 30)
        assert await held(engine, ALICE, "AIT") == before + buy_hold(BTC, 70, BTC_MID)
    async with open_engine(CONFIG, journal) as engine:
        await quiesce(engine)
        with trio.fail_after(5):
            assert await engine.book(BTC.symbol) == book
            assert await engine.orderbook(BTC.symbol) == depth
        assert await view_of(engine, ALICE, resting) == view
        assert await held(engine, ALICE, "AIT") == before + buy_hold(BTC, 70, BTC_MID)
        await cancel(engine, resting, ALICE)
        await quiesce(engine)
        assert await held(engine, ALICE, "AIT") == before
