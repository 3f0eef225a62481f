"""Order lists through the actors: one hold for an OCO pair, holds for deferred members,
every hold given back exactly, and a restart that rebuilds the lists."""

from __future__ import annotations

import trio

from tests.actors.helpers import (
    ALICE,
    BOB,
    BTC,
    BTC_MID,
    CAROL,
    buy,
    buy_hold,
    open_market,
    place,
    quiesce,
    sell,
)
from tests.actors.test_order_types import held, print_at
from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import (
    ListRefused,
    ListRequest,
    ListResult,
    OrderRequest,
    Refused,
    Rejected,
)
from trading_engine.config import EngineConfig
from trading_engine.core.enums import (
    ListStatus,
    ListType,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
)
from trading_engine.core.list_views import ListView
from trading_engine.storage.journal import InMemoryJournal

CONFIG = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)


def stop_sell(quantity: int, stop_price: int) -> OrderRequest:
    return OrderRequest(ALICE, BTC.symbol, Side.SELL, OrderType.STOP, quantity, 0, stop_price)


def stop_buy(quantity: int, stop_price: int, price: int) -> OrderRequest:
    return OrderRequest(
        ALICE, BTC.symbol, Side.BUY, OrderType.STOP_LIMIT, quantity, price, stop_price
    )


async def place_list(engine: Engine, kind: ListType, *orders: OrderRequest) -> ListView:
    with trio.fail_after(5):
        outcome = await engine.submit_list(ListRequest(ALICE, kind, orders))
    assert isinstance(outcome, ListResult), outcome
    return outcome.order_list


async def shown(engine: Engine, list_id: int) -> ListView:
    with trio.fail_after(5):
        view = await engine.order_list(list_id)
    assert view is not None
    return view


async def test_an_oco_pair_holds_the_larger_of_its_legs_not_the_sum(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await quiesce(engine)
        before = await held(engine, ALICE, "AIT")
        take_profit = buy(ALICE, 30, BTC_MID - 1_000)
        stop_loss = stop_buy(30, BTC_MID + 500, BTC_MID + 600)
        placed = await place_list(engine, ListType.OCO, take_profit, stop_loss)
        assert placed.status is ListStatus.OPEN
        assert [o.list_id for o in placed.orders] == [placed.list_id] * 2
        await quiesce(engine)
        larger = buy_hold(BTC, 30, BTC_MID + 600)
        assert await held(engine, ALICE, "AIT") == before + larger
        # Bob sells into the take-profit leg: the stop leg is cancelled, the hold drops to
        # what the rest of the take-profit leg needs, and the trade is paid from it.
        await place(engine, sell(BOB, 10, BTC_MID - 1_000))
        await quiesce(engine)
        view = await shown(engine, placed.list_id)
        assert view.status is ListStatus.DONE
        assert [o.status for o in view.orders] == [
            OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCELLED,
        ]  # fmt: skip
        assert view.orders[1].reason == "oco"
        assert await held(engine, ALICE, "AIT") == before + buy_hold(BTC, 20, BTC_MID - 1_000)
        cancelled = await engine.cancel_list(placed.list_id, ALICE)
        assert isinstance(cancelled, ListView)
        assert cancelled.orders[0].status is OrderStatus.CANCELLED
        await quiesce(engine)
        assert await held(engine, ALICE, "AIT") == before


async def test_an_oto_holds_its_pending_order_from_the_start_and_places_it_once_filled(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await quiesce(engine)
        ait, btc = await held(engine, ALICE, "AIT"), await held(engine, ALICE, "BTC")
        placed = await place_list(
            engine, ListType.OTO, buy(ALICE, 20, BTC_MID - 500), sell(ALICE, 20, BTC_MID + 500)
        )
        assert placed.pending == (placed.orders[1].order_id,)
        await quiesce(engine)
        assert await held(engine, ALICE, "AIT") == ait + buy_hold(BTC, 20, BTC_MID - 500)
        assert await held(engine, ALICE, "BTC") == btc + BTC.base_units(20)
        assert await engine.order(placed.orders[1].order_id) is None  # not an order yet
        await place(engine, sell(BOB, 20, BTC_MID - 500))
        await quiesce(engine)
        view = await shown(engine, placed.list_id)
        assert (view.status, view.pending) == (ListStatus.DONE, ())
        pending = await engine.order(placed.orders[1].order_id)
        assert pending is not None
        assert (pending.status, pending.list_id) == (OrderStatus.OPEN, placed.list_id)
        assert await held(engine, ALICE, "AIT") == ait
        assert await held(engine, ALICE, "BTC") == btc + BTC.base_units(20)


async def test_cancelling_an_otoco_gives_back_every_hold(journal: InMemoryJournal) -> None:
    async with open_market(journal, CONFIG) as engine:
        await print_at(engine, BTC_MID)
        await quiesce(engine)
        ait, btc = await held(engine, ALICE, "AIT"), await held(engine, ALICE, "BTC")
        placed = await place_list(
            engine, ListType.OTOCO,
            buy(ALICE, 20, BTC_MID - 500),
            sell(ALICE, 20, BTC_MID + 500),
            stop_sell(25, BTC_MID - 900),
        )  # fmt: skip
        await quiesce(engine)
        assert await held(engine, ALICE, "BTC") == btc + BTC.base_units(25)  # the larger leg
        cancelled = await engine.cancel_list(placed.list_id, ALICE)
        assert isinstance(cancelled, ListView)
        assert cancelled.status is ListStatus.CANCELLED
        assert [o.status for o in cancelled.orders] == [OrderStatus.CANCELLED] * 3
        await quiesce(engine)
        assert (await held(engine, ALICE, "AIT"), await held(engine, ALICE, "BTC")) == (ait, btc)
        again = await engine.cancel_list(placed.list_id, ALICE)
        assert isinstance(again, Refused)
        assert again.code == "order_list_not_open"


async def test_a_list_refused_by_the_book_or_by_risk_changes_nothing(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        await place(engine, buy(BOB, 5, BTC_MID))
        await quiesce(engine)
        balances = await engine.balances(ALICE)
        seq = len(await journal.read(BTC.symbol))
        with trio.fail_after(5):
            crossing = await engine.submit_list(
                ListRequest(ALICE, ListType.OCO, (sell(ALICE, 5, BTC_MID), stop_sell(5, 90_000)))
            )
        assert crossing == ListRefused(0, RejectReason.POST_ONLY_WOULD_TAKE)
        with trio.fail_after(5):
            poor = await engine.submit_list(
                ListRequest(
                    ALICE, ListType.OTO, (buy(ALICE, 10**6, BTC_MID), sell(ALICE, 1, BTC_MID))
                )
            )
        assert isinstance(poor, Rejected)
        assert poor.reasons == ("insufficient_funds",)
        await quiesce(engine)
        assert await engine.balances(ALICE) == balances
        assert len(await journal.read(BTC.symbol)) == seq


async def test_a_restart_rebuilds_lists_their_pairs_and_holds(journal: InMemoryJournal) -> None:
    async with open_market(journal, CONFIG) as engine:
        await print_at(engine, BTC_MID)
        placed = await place_list(
            engine, ListType.OTOCO,
            buy(ALICE, 20, BTC_MID - 500),
            sell(ALICE, 20, BTC_MID + 500),
            stop_sell(20, BTC_MID - 900),
        )  # fmt: skip
        await place(engine, sell(BOB, 20, BTC_MID - 500))  # the pair is placed
        await quiesce(engine)
        before = await engine.order_list(placed.list_id)
        balances = await engine.balances(ALICE)
    async with open_engine(CONFIG, journal) as engine:
        await quiesce(engine)
        assert await engine.order_list(placed.list_id) == before
        assert await engine.balances(ALICE) == balances
        # The pair still works as an OCO: a trade at the stop triggers it and cancels the
        # take-profit leg.
        await place(engine, buy(BOB, 30, BTC_MID - 900))
        await place(engine, sell(CAROL, 1, BTC_MID - 900))
        await quiesce(engine)
        view = await shown(engine, placed.list_id)
        assert view.status is ListStatus.DONE
        assert [o.status for o in view.orders] == [
            OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.FILLED,
        ]  # fmt: skip
        assert await held(engine, ALICE, "BTC") == 0
