"""The risk actor through the engine: every rejection reason, holds, dry runs, resends, refusals."""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict, Unpack

import pytest
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
    ceil_fee,
    market,
    open_market,
    place,
    quiesce,
    reject,
    sell,
)
from trading_engine.actors.engine import Engine
from trading_engine.actors.messages import ClientIdReused, OrderResult, Refused, Rejected
from trading_engine.actors.risk import RiskConfig
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderStatus, RejectReason, Side
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, UserId
from trading_engine.errors import InvalidInput
from trading_engine.storage.journal import InMemoryJournal

R = RejectReason


class _Risk(TypedDict, total=False):
    """``RiskConfig``'s fields, each optional: its own defaults apply to those left out."""

    enabled: bool
    max_order_size: Decimal | None
    max_position_size: Decimal | None
    max_open_orders: int
    keep_finished: int


def _config(**risk: Unpack[_Risk]) -> EngineConfig:
    return EngineConfig(risk=RiskConfig(**risk), settlement_interval=3600.0)


async def _with_reference(engine: Engine, price: int = BTC_MID) -> None:
    """Rest one BTC ask of bob's at ``price``, which becomes the band's reference."""
    await place(engine, sell(BOB, 1000, price))
    await quiesce(engine)


# ---------------------------------------------------------------- every rejection reason


async def test_order_of_unknown_user_is_rejected_with_unknown_user(engine: Engine) -> None:
    outcome = await reject(engine, buy(UserId("mallory"), 1000, BTC_MID))
    assert outcome.reasons == (R.UNKNOWN_USER,)


async def test_order_for_unknown_symbol_is_rejected_with_symbol_unknown(engine: Engine) -> None:
    outcome = await reject(engine, buy(ALICE, 1000, BTC_MID, symbol=Symbol("DOGE_AIT")))
    assert outcome.reasons == (R.SYMBOL_UNKNOWN,)


async def test_order_for_halted_symbol_is_rejected_with_symbol_halted(engine: Engine) -> None:
    with trio.fail_after(5):
        assert await engine.halt(BTC.symbol) is None
    outcome = await reject(engine, buy(ALICE, 1000, BTC_MID))
    assert outcome.reasons == (R.SYMBOL_HALTED,)


async def test_order_below_min_quantity_is_rejected(engine: Engine) -> None:
    # 5 lots of 0.001 ETH at 2,000 AIT is exactly the 10 AIT minimum notional.
    outcome = await reject(engine, buy(ALICE, 5, ETH_MID, symbol=ETH.symbol))
    assert outcome.reasons == (R.BELOW_MIN_QUANTITY,)


async def test_order_below_min_notional_is_rejected(engine: Engine) -> None:
    # 10 lots (0.01 ETH) at 50 AIT is 0.5 AIT of notional.
    outcome = await reject(engine, buy(ALICE, 10, 5_000, symbol=ETH.symbol))
    assert outcome.reasons == (R.BELOW_MIN_NOTIONAL,)


@pytest.mark.parametrize(("side", "price"), [(Side.BUY, 110_001), (Side.SELL, 89_999)])
async def test_limit_order_outside_price_band_is_rejected(
    engine: Engine, side: Side, price: int
) -> None:
    await _with_reference(engine)
    request = buy(ALICE, 100, price) if side is Side.BUY else sell(ALICE, 100, price)
    outcome = await reject(engine, request)
    assert outcome.reasons == (R.OUTSIDE_PRICE_BAND,)


async def test_limit_order_on_the_band_edge_is_accepted(engine: Engine) -> None:
    await _with_reference(engine)
    # The ask goes first: a bid would move the reference to the mid price.
    await place(engine, sell(ALICE, 100, 110_000))
    await quiesce(engine)
    await place(engine, buy(ALICE, 100, 90_000))


async def test_order_above_max_order_size_is_rejected(journal: InMemoryJournal) -> None:
    async with open_market(journal, _config(max_order_size=Decimal("1"))) as engine:
        await place(engine, buy(ALICE, 10_000, BTC_MID))  # exactly 1 BTC
        outcome = await reject(engine, buy(ALICE, 10_001, BTC_MID))
        assert outcome.reasons == (R.ABOVE_MAX_ORDER_SIZE,)


async def test_open_orders_count_toward_max_position(journal: InMemoryJournal) -> None:
    async with open_market(journal, _config(max_position_size=Decimal("0.5"))) as engine:
        await place(engine, buy(ALICE, 3000, BTC_MID))
        outcome = await reject(engine, buy(ALICE, 2001, BTC_MID))
        assert outcome.reasons == (R.ABOVE_MAX_POSITION,)
        await place(engine, buy(ALICE, 2000, BTC_MID))


async def test_filled_position_counts_toward_max_position(journal: InMemoryJournal) -> None:
    async with open_market(journal, _config(max_position_size=Decimal("0.5"))) as engine:
        await place(engine, sell(BOB, 4000, BTC_MID))
        taken = await place(engine, buy(ALICE, 4000, BTC_MID))
        assert taken.order.status is OrderStatus.FILLED
        with trio.fail_after(5):
            assert await engine.positions(ALICE) == {BTC.symbol: 4000}
        outcome = await reject(engine, buy(ALICE, 1001, BTC_MID))
        assert outcome.reasons == (R.ABOVE_MAX_POSITION,)
        # Selling reduces the position, so a sell of 9,000 (to -5,000) is within the limit.
        await place(engine, sell(ALICE, 9000, BTC_MID + 100))
        outcome = await reject(engine, sell(ALICE, 1, BTC_MID + 100))
        assert outcome.reasons == (R.ABOVE_MAX_POSITION,)


async def test_order_beyond_max_open_orders_is_rejected(journal: InMemoryJournal) -> None:
    async with open_market(journal, _config(max_open_orders=3)) as engine:
        await place(engine, buy(ALICE, 100, BTC_MID))
        await place(engine, buy(ALICE, 100, BTC_MID - 1))
        await place(engine, buy(ALICE, 10, ETH_MID, symbol=ETH.symbol))
        outcome = await reject(engine, buy(ALICE, 100, BTC_MID - 2))
        assert outcome.reasons == (R.TOO_MANY_OPEN_ORDERS,)
        # Another user's orders do not count.
        await place(engine, buy(BOB, 100, BTC_MID - 2))


async def test_buy_beyond_available_quote_is_rejected_with_insufficient_funds(
    engine: Engine,
) -> None:
    outcome = await reject(engine, buy(CAROL, 1, BTC_MID))
    assert outcome.reasons == (R.INSUFFICIENT_FUNDS,)


async def test_sell_beyond_available_base_is_rejected_with_insufficient_funds(
    engine: Engine,
) -> None:
    outcome = await reject(engine, sell(ALICE, 100_001, BTC_MID))  # 10.0001 BTC of 10
    assert outcome.reasons == (R.INSUFFICIENT_FUNDS,)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_market_order_on_empty_book_is_rejected_with_no_reference_price(
    engine: Engine, side: Side
) -> None:
    outcome = await reject(engine, market(ALICE, side, 100))
    assert outcome.reasons == (R.NO_REFERENCE_PRICE,)


async def test_market_buy_holds_at_its_protection_price_and_releases_the_rest(
    engine: Engine,
) -> None:
    await _with_reference(engine)  # bob asks 1000 lots at 100,000
    result = await place(engine, market(ALICE, Side.BUY, 1500))
    assert result.order.filled == 1000
    assert result.order.status is OrderStatus.CANCELLED
    with trio.fail_after(5):
        balances = await engine.balances(ALICE)
    paid = 1000 * BTC_MID * BTC.quote_per_tick_lot
    fee = ceil_fee(paid, BTC.taker_fee_bps)
    assert balances["AIT"] == (RICH["AIT"] - paid - fee, 0)
    assert balances["BTC"] == (RICH["BTC"] + 1000 * BTC.base_per_lot, 0)


async def test_disabled_limits_let_limit_breaches_through(journal: InMemoryJournal) -> None:
    env = {
        "RISK_LIMITS_ENABLED": "false",
        "MAX_ORDER_SIZE": "0.01",
        "MAX_POSITION_SIZE": "0.01",
        "MAX_OPEN_ORDERS": "1",
    }
    async with open_market(journal, EngineConfig.from_env(env)) as engine:
        await _with_reference(engine)
        # Above max size and position, beyond the open-order count, outside the band.
        await place(engine, buy(ALICE, 5000, 80_000))
        await place(engine, buy(ALICE, 5000, 80_001))


async def test_disabled_limits_still_check_funds(journal: InMemoryJournal) -> None:
    async with open_market(
        journal, _config(enabled=False, max_order_size=Decimal("0.01"))
    ) as engine:
        outcome = await reject(engine, buy(CAROL, 1000, BTC_MID))
        assert outcome.reasons == (R.INSUFFICIENT_FUNDS,)
        outcome = await reject(engine, sell(ALICE, 100_001, BTC_MID))
        assert outcome.reasons == (R.INSUFFICIENT_FUNDS,)


# ---------------------------------------------------------------- holds


async def test_resting_buy_holds_price_times_quantity_plus_worst_fee(engine: Engine) -> None:
    await place(engine, buy(ALICE, 4000, 100_100))
    hold = buy_hold(BTC, 4000, 100_100)
    assert hold == 4000 * (10_010_000 + 10_010)  # the taker fee of 10 bps is the worst
    with trio.fail_after(5):
        balances = await engine.balances(ALICE)
    assert balances["AIT"] == (RICH["AIT"] - hold, hold)
    assert balances["BTC"] == (RICH["BTC"], 0)


async def test_resting_sell_holds_its_base_quantity(engine: Engine) -> None:
    await place(engine, sell(ALICE, 4000, 100_100))
    with trio.fail_after(5):
        balances = await engine.balances(ALICE)
    assert balances["BTC"] == (RICH["BTC"] - 4000 * BTC.base_per_lot, 4000 * BTC.base_per_lot)
    assert balances["AIT"] == (RICH["AIT"], 0)


async def test_cancel_releases_what_is_left_of_the_hold(engine: Engine) -> None:
    resting = await place(engine, buy(ALICE, 4000, BTC_MID))
    await place(engine, sell(BOB, 1000, BTC_MID))
    with trio.fail_after(5):
        cancelled = await engine.cancel(resting.order.order_id, ALICE)
        view = await engine.order(resting.order.order_id)
        balances = await engine.balances(ALICE)
    assert isinstance(cancelled, OrderResult)
    assert view is not None
    assert (view.status, view.filled, view.cancelled, view.remaining) == (
        OrderStatus.CANCELLED,
        1000,
        3000,
        0,
    )
    notional = 1000 * BTC_MID * BTC.quote_per_tick_lot
    rebate = ceil_fee(notional, BTC.maker_fee_bps)  # negative: alice was the maker
    assert balances["AIT"] == (RICH["AIT"] - notional - rebate, 0)
    assert balances["BTC"] == (RICH["BTC"] + 1000 * BTC.base_per_lot, 0)


async def test_cancel_reply_reports_the_order_as_the_engine_keeps_it(engine: Engine) -> None:
    resting = await place(engine, buy(ALICE, 4000, BTC_MID))
    await place(engine, sell(BOB, 1000, BTC_MID))
    with trio.fail_after(5):
        cancelled = await engine.cancel(resting.order.order_id, ALICE)
        view = await engine.order(resting.order.order_id)
    assert isinstance(cancelled, OrderResult)
    assert view is not None
    assert cancelled.order.cancelled == 3000
    assert cancelled.order.filled + cancelled.order.remaining + cancelled.order.cancelled == 4000
    assert cancelled.order == view


async def test_amend_reply_reports_the_order_as_the_engine_keeps_it(engine: Engine) -> None:
    resting = await place(engine, buy(ALICE, 4000, BTC_MID - 100))
    await place(engine, sell(BOB, 1000, BTC_MID))
    with trio.fail_after(5):
        amended = await engine.amend(resting.order.order_id, ALICE, price=BTC_MID)  # crosses
        view = await engine.order(resting.order.order_id)
    assert isinstance(amended, OrderResult)
    assert view is not None
    assert (amended.order.filled, amended.order.remaining) == (1000, 3000)
    assert amended.order.notional == 1000 * BTC_MID
    assert amended.order == view


async def test_fill_pays_counterparty_and_proceeds_fund_the_very_next_order(
    engine: Engine,
) -> None:
    await place(engine, buy(ALICE, 4000, BTC_MID))
    # Carol has BTC only: selling it is what gives her AIT.
    taken = await place(engine, sell(CAROL, 4000, BTC_MID))
    assert taken.order.status is OrderStatus.FILLED
    # No waiting in between: the proceeds are there for her next order.
    next_order = await place(engine, buy(CAROL, 3000, BTC_MID - 100))
    assert next_order.order.status is OrderStatus.OPEN
    notional = 4000 * BTC_MID * BTC.quote_per_tick_lot
    proceeds = notional - ceil_fee(notional, BTC.taker_fee_bps)
    hold = buy_hold(BTC, 3000, BTC_MID - 100)
    with trio.fail_after(5):
        carol = await engine.balances(CAROL)
        alice = await engine.balances(ALICE)
    assert carol["AIT"] == (proceeds - hold, hold)
    assert carol["BTC"] == (10**9 - 4000 * BTC.base_per_lot, 0)
    assert alice["BTC"] == (RICH["BTC"] + 4000 * BTC.base_per_lot, 0)
    assert alice["AIT"] == (RICH["AIT"] - notional - ceil_fee(notional, BTC.maker_fee_bps), 0)


async def test_amend_down_shrinks_the_hold(engine: Engine) -> None:
    resting = await place(engine, buy(ALICE, 4000, BTC_MID))
    with trio.fail_after(5):
        amended = await engine.amend(resting.order.order_id, ALICE, quantity=1000)
    assert isinstance(amended, OrderResult)
    await quiesce(engine)
    hold = buy_hold(BTC, 1000, BTC_MID)
    with trio.fail_after(5):
        assert (await engine.balances(ALICE))["AIT"] == (RICH["AIT"] - hold, hold)


async def test_amend_needing_a_bigger_hold_than_available_is_refused(
    journal: InMemoryJournal,
) -> None:
    dave = UserId("dave")
    funds = buy_hold(BTC, 1040, BTC_MID)  # 40 lots more than the order holds
    async with open_market(journal, funding={dave: {"AIT": funds}, BOB: RICH}) as engine:
        resting = await place(engine, buy(dave, 1000, BTC_MID))
        order_id = resting.order.order_id
        with trio.fail_after(5):
            refused = await engine.amend(order_id, dave, quantity=1041)
            assert isinstance(refused, Refused)
            assert refused.code == "insufficient_funds"
            # 5% more on 1,000 lots needs 50 lots' worth more.
            refused = await engine.amend(order_id, dave, price=BTC_MID + 5000)
            assert isinstance(refused, Refused)
            assert refused.code == "insufficient_funds"
            order = await engine.order(order_id)
            balances = await engine.balances(dave)
        assert order is not None
        assert (order.quantity, order.price, order.status) == (1000, BTC_MID, OrderStatus.OPEN)
        hold = buy_hold(BTC, 1000, BTC_MID)
        assert balances["AIT"] == (funds - hold, hold)
        # A raise that the available funds cover is taken.
        with trio.fail_after(5):
            amended = await engine.amend(order_id, dave, quantity=1040)
        assert isinstance(amended, OrderResult)
        assert amended.order.quantity == 1040
        with trio.fail_after(5):
            assert (await engine.balances(dave))["AIT"] == (0, funds)


async def test_amend_cannot_take_an_order_past_the_risk_limits(journal: InMemoryJournal) -> None:
    config = _config(max_order_size=Decimal("1"))
    async with open_market(journal, config) as engine:
        await _with_reference(engine)
        resting = await place(engine, buy(ALICE, 1000, BTC_MID - 1000))
        order_id = resting.order.order_id
        with trio.fail_after(5):
            too_big = await engine.amend(order_id, ALICE, quantity=10_001)
            off_band = await engine.amend(order_id, ALICE, price=BTC_MID // 2)
            view = await engine.order(order_id)
        assert isinstance(too_big, Refused), too_big
        assert isinstance(off_band, Refused), off_band
        assert view is not None
        assert (view.quantity, view.price) == (1000, BTC_MID - 1000)


async def test_amend_refused_by_the_book_leaves_the_hold_as_it_was(engine: Engine) -> None:
    await place(engine, sell(BOB, 1000, BTC_MID))
    resting = await place(engine, buy(ALICE, 1000, BTC_MID - 1000, post_only=True))
    with trio.fail_after(5):
        refused = await engine.amend(resting.order.order_id, ALICE, price=BTC_MID)
    assert isinstance(refused, Refused)
    assert refused.code == "post_only_would_take"
    await quiesce(engine)
    hold = buy_hold(BTC, 1000, BTC_MID - 1000)
    with trio.fail_after(5):
        assert (await engine.balances(ALICE))["AIT"] == (RICH["AIT"] - hold, hold)


# ---------------------------------------------------------------- dry run


async def test_dry_run_lists_every_failing_reason_and_the_hold(journal: InMemoryJournal) -> None:
    async with open_market(journal, _config(max_order_size=Decimal("1"))) as engine:
        await _with_reference(engine)
        before = await _state(engine)
        with trio.fail_after(5):
            check = await engine.check(buy(CAROL, 20_000, 120_000))
        assert not check.allowed
        assert set(check.reasons) == {
            R.OUTSIDE_PRICE_BAND,
            R.ABOVE_MAX_ORDER_SIZE,
            R.INSUFFICIENT_FUNDS,
        }
        assert (check.hold_asset, check.hold_amount) == ("AIT", buy_hold(BTC, 20_000, 120_000))
        assert await _state(engine) == before


async def test_dry_run_of_a_passing_order_gives_the_hold_the_order_takes(engine: Engine) -> None:
    before = await _state(engine)
    with trio.fail_after(5):
        check = await engine.check(sell(ALICE, 2500, BTC_MID))
    assert (check.allowed, check.reasons) == (True, ())
    assert (check.hold_asset, check.hold_amount) == ("BTC", 2500 * BTC.base_per_lot)
    assert await _state(engine) == before
    await place(engine, sell(ALICE, 2500, BTC_MID))
    with trio.fail_after(5):
        assert (await engine.balances(ALICE))["BTC"][1] == check.hold_amount


async def test_dry_run_of_market_order_on_empty_book_has_no_hold(engine: Engine) -> None:
    with trio.fail_after(5):
        check = await engine.check(market(ALICE, Side.BUY, 100))
    assert (check.allowed, check.reasons) == (False, (R.NO_REFERENCE_PRICE,))
    assert (check.hold_asset, check.hold_amount) == (None, 0)


async def _state(engine: Engine) -> object:
    await quiesce(engine)
    with trio.fail_after(5):
        return (
            [await engine.balances(u) for u in (ALICE, BOB, CAROL)],
            [await engine.user_orders(u) for u in (ALICE, BOB, CAROL)],
            await engine.book(BTC.symbol),
            await engine.orderbook(BTC.symbol),
        )


# ---------------------------------------------------------------- withdrawals


async def test_withdrawal_above_available_is_refused(engine: Engine) -> None:
    hold = buy_hold(BTC, 4000, BTC_MID)
    await place(engine, buy(ALICE, 4000, BTC_MID))
    available = RICH["AIT"] - hold
    with trio.fail_after(5):
        refused = await engine.withdraw(ALICE, "AIT", available + 1)
        assert isinstance(refused, Refused)
        assert refused.code == "insufficient_funds"
        assert await engine.balances(ALICE) == {
            "AIT": (available, hold),
            "BTC": (RICH["BTC"], 0),
            "ETH": (RICH["ETH"], 0),
        }
        assert await engine.withdraw(ALICE, "AIT", available) == (0, hold)
        refused = await engine.withdraw(CAROL, "AIT", 1)
        assert isinstance(refused, Refused)
        assert refused.code == "insufficient_funds"


@pytest.mark.parametrize("amount", [0, -5])
async def test_deposit_or_withdrawal_of_non_positive_amount_is_invalid_input(
    engine: Engine, amount: int
) -> None:
    with trio.fail_after(5):
        with pytest.raises(InvalidInput):
            await engine.withdraw(ALICE, "AIT", amount)
        with pytest.raises(InvalidInput):
            await engine.deposit(ALICE, "AIT", amount)
        assert (await engine.balances(ALICE))["AIT"] == (RICH["AIT"], 0)


async def test_funds_of_unknown_user_are_refused(engine: Engine) -> None:
    with trio.fail_after(5):
        refused = await engine.deposit(UserId("mallory"), "AIT", 100)
    assert isinstance(refused, Refused)
    assert refused.code == "unknown_user"


# ---------------------------------------------------------------- resends, cancels, amends


async def test_resend_with_same_client_order_id_returns_original_without_second_order(
    engine: Engine,
) -> None:
    cid = ClientOrderId("c-1")
    first = await place(engine, buy(ALICE, 1000, BTC_MID, client_order_id=cid))
    assert not first.duplicate
    again = await place(engine, buy(ALICE, 1000, BTC_MID, client_order_id=cid))
    assert again.duplicate
    assert again.order.order_id == first.order.order_id
    assert (again.order.quantity, again.order.price) == (1000, BTC_MID)
    with trio.fail_after(5):
        changed = await engine.submit(buy(ALICE, 3000, BTC_MID - 7, client_order_id=cid))
    assert changed == ClientIdReused(
        first.order.order_id,
        BTC.symbol,
        (("quantity", 1000, 3000), ("price", BTC_MID, BTC_MID - 7)),
    )
    with trio.fail_after(5):
        orders = await engine.user_orders(ALICE)
        balances = await engine.balances(ALICE)
    assert [o.order_id for o in orders] == [first.order.order_id]
    assert balances["AIT"][1] == buy_hold(BTC, 1000, BTC_MID)
    # The same client id of another user is another order.
    other = await place(engine, buy(BOB, 1000, BTC_MID, client_order_id=cid))
    assert not other.duplicate
    assert other.order.order_id != first.order.order_id


async def test_concurrent_resends_with_same_client_order_id_make_one_order(
    engine: Engine,
) -> None:
    cid = ClientOrderId("burst")
    results: list[OrderResult] = []

    async def send() -> None:
        results.append(await place(engine, buy(ALICE, 1000, BTC_MID, client_order_id=cid)))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(send)
    assert len({r.order.order_id for r in results}) == 1
    assert sorted(r.duplicate for r in results) == [False, True, True, True, True]
    with trio.fail_after(5):
        assert len(await engine.user_orders(ALICE)) == 1
        assert (await engine.balances(ALICE))["AIT"][1] == buy_hold(BTC, 1000, BTC_MID)


async def test_a_client_order_id_is_remembered_for_the_newest_finished_orders() -> None:
    """keep_finished=2: a resend of a finished order still in the window gets it back;
    one of an order dropped from memory is a new order at once (it used to wait for
    an answer that never came), and memory holds no more ids than orders."""
    config = EngineConfig(settlement_interval=3600.0, risk=RiskConfig(keep_finished=2))
    async with open_market(InMemoryJournal(), config) as engine:
        first = await place(engine, buy(ALICE, 1000, BTC_MID, client_order_id=ClientOrderId("a")))
        for name in ("a", "b", "c"):
            if name != "a":
                await place(engine, buy(ALICE, 10, BTC_MID, client_order_id=ClientOrderId(name)))
        with trio.fail_after(5):
            await engine.cancel_all(ALICE)
            await quiesce(engine)
            kept = await place(engine, buy(ALICE, 10, BTC_MID, client_order_id=ClientOrderId("c")))
            again = await place(engine, buy(ALICE, 10, BTC_MID, client_order_id=ClientOrderId("a")))
    assert kept.duplicate
    assert kept.order.status is OrderStatus.CANCELLED
    assert not again.duplicate
    assert again.order.order_id > first.order.order_id
    assert again.order.status is OrderStatus.OPEN


async def test_cancel_all_cancels_the_users_open_orders_and_releases_their_holds(
    engine: Engine,
) -> None:
    first = await place(engine, buy(ALICE, 1000, BTC_MID))
    await place(engine, sell(BOB, 400, BTC_MID))
    second = await place(engine, sell(ALICE, 20, ETH_MID, symbol=ETH.symbol))
    others = await place(engine, buy(BOB, 10, BTC_MID - 10))
    with trio.fail_after(5):
        cancelled = await engine.cancel_all(ALICE)
    by_id = {view.order_id: view for view in cancelled}
    assert set(by_id) == {first.order.order_id, second.order.order_id}
    assert (by_id[first.order.order_id].filled, by_id[first.order.order_id].cancelled) == (400, 600)
    assert all(view.status is OrderStatus.CANCELLED for view in cancelled)
    await quiesce(engine)
    with trio.fail_after(5):
        balances = await engine.balances(ALICE)
        assert await engine.user_orders(ALICE, open_only=True) == []
        assert [o.order_id for o in await engine.user_orders(BOB, open_only=True)] == [
            others.order.order_id
        ]
    assert all(held == 0 for _, held in balances.values())


async def test_cancel_and_amend_of_unknown_order_are_refused(engine: Engine) -> None:
    with trio.fail_after(5):
        cancel = await engine.cancel(OrderId(999_999), ALICE)
        amend = await engine.amend(OrderId(999_999), ALICE, quantity=5)
    assert isinstance(cancel, Refused)
    assert isinstance(amend, Refused)
    assert (cancel.code, amend.code) == ("unknown_order", "unknown_order")


async def test_cancel_and_amend_of_someone_elses_order_are_refused_as_unknown(
    engine: Engine,
) -> None:
    resting = await place(engine, buy(BOB, 1000, BTC_MID))
    order_id = resting.order.order_id
    with trio.fail_after(5):
        cancel = await engine.cancel(order_id, ALICE)
        amend = await engine.amend(order_id, ALICE, quantity=500)
        order = await engine.order(order_id)
    assert isinstance(cancel, Refused)
    assert isinstance(amend, Refused)
    assert (cancel.code, amend.code) == ("unknown_order", "unknown_order")
    assert order is not None
    assert (order.status, order.quantity) == (OrderStatus.OPEN, 1000)
    with trio.fail_after(5):
        admin = await engine.cancel(order_id, None)  # an admin may
    assert isinstance(admin, OrderResult)
    assert admin.order.status is OrderStatus.CANCELLED


@pytest.mark.parametrize("how", ["filled", "cancelled"])
async def test_cancel_and_amend_of_final_order_are_refused_as_not_open(
    engine: Engine, how: str
) -> None:
    resting = await place(engine, buy(ALICE, 1000, BTC_MID))
    order_id = resting.order.order_id
    if how == "filled":
        await place(engine, sell(BOB, 1000, BTC_MID))
    else:
        with trio.fail_after(5):
            assert isinstance(await engine.cancel(order_id, ALICE), OrderResult)
    with trio.fail_after(5):
        cancel = await engine.cancel(order_id, ALICE)
        amend = await engine.amend(order_id, ALICE, quantity=2000)
    assert isinstance(cancel, Refused)
    assert isinstance(amend, Refused)
    assert (cancel.code, amend.code) == ("order_not_open", "order_not_open")


async def test_rejected_order_does_not_hold_funds(engine: Engine) -> None:
    outcome = await reject(engine, buy(ALICE, 1000, BTC_MID, symbol=Symbol("DOGE_AIT")))
    assert isinstance(outcome, Rejected)
    with trio.fail_after(5):
        assert (await engine.balances(ALICE))["AIT"] == (RICH["AIT"], 0)
