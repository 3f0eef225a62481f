from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_engine.actors.risk import RiskConfig
from trading_engine.core.enums import OrderType, RejectReason, Side
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument, fee_for
from trading_engine.core.orders import OrderSpec
from trading_engine.core.risk import (
    Accounts,
    Figure,
    Hold,
    Rejection,
    RiskLimits,
    Unit,
    check_order,
    hold_for,
    per_lot_cost,
    protection_price,
)
from trading_engine.errors import InvariantViolation

R = RejectReason

ALICE = UserId("alice")
BTC = Instrument.create(
    "BTC_AIT", "BTC", "AIT", "0.01", "0.0001", maker_fee_bps=-2, taker_fee_bps=10,
    price_band_pct="10", min_quantity="0.001", min_notional="10",
)  # fmt: skip
DEFAULT_LIMITS = RiskLimits()
"""``checks``'s default: frozen, so one instance serves every call."""


def order(
    side: Side = Side.BUY,
    kind: OrderType = OrderType.LIMIT,
    qty: int = 100,
    *,
    price: int | None = None,
) -> OrderSpec:
    if price is None:
        price = 100_000 if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else 0
    return OrderSpec.create(OrderId(1), ALICE, side, kind, qty, price)


def checks(
    spec: OrderSpec,
    *,
    limits: RiskLimits = DEFAULT_LIMITS,
    reference: int | None = 100_000,
    available: int | None = 10**15,
    open_orders: int = 0,
    position: int = 0,
    open_exposure: int = 0,
) -> list[RejectReason]:
    return [r.reason for r in rejections(spec, limits=limits, reference=reference,
            available=available, open_orders=open_orders, position=position,
            open_exposure=open_exposure)]  # fmt: skip


def rejections(
    spec: OrderSpec,
    *,
    limits: RiskLimits = DEFAULT_LIMITS,
    reference: int | None = 100_000,
    available: int | None = 10**15,
    open_orders: int = 0,
    position: int = 0,
    open_exposure: int = 0,
) -> list[Rejection]:
    return check_order(
        BTC,
        spec,
        limits=limits,
        reference=reference,
        available=available,
        open_orders=open_orders,
        position=position,
        open_exposure=open_exposure,
    )


def test_a_buy_holds_notional_plus_the_worst_fee_per_lot_rounded_up() -> None:
    one_lot = BTC.notional(100_000, 1)
    assert per_lot_cost(BTC, 100_000) == one_lot + fee_for(one_lot, 10)
    assert hold_for(BTC, order(qty=7)) == Hold("AIT", 7 * per_lot_cost(BTC, 100_000))


def test_a_sell_holds_its_base_quantity() -> None:
    assert hold_for(BTC, order(Side.SELL, qty=25)) == Hold("BTC", 25 * BTC.base_per_lot)


@given(st.integers(1, 5000), st.integers(1, 10**7), st.lists(st.integers(1, 50), max_size=20))
@settings(max_examples=200, deadline=None)
def test_the_hold_covers_any_split_into_fills_at_or_below_the_limit(
    qty: int, price: int, splits: list[int]
) -> None:
    held = hold_for(BTC, order(qty=qty, price=price)).amount
    spent, left = 0, qty
    for part in splits:
        fill = min(part, left)
        if not fill:
            break
        notional = BTC.notional(price, fill)
        spent += notional + fee_for(notional, BTC.taker_fee_bps)
        left -= fill
    assert spent <= held


def test_protection_price_is_the_band_edge_and_needs_a_reference() -> None:
    assert protection_price(BTC, Side.BUY, 100_000) == 110_000
    assert protection_price(BTC, Side.SELL, 100_000) == 90_000
    assert protection_price(BTC, Side.BUY, None) is None


def test_every_failing_reason_is_listed_at_once() -> None:
    spec = order(qty=1, price=200_000)  # 0.0001 BTC at 2000: tiny and far outside the band
    reasons = checks(spec, available=0, open_orders=5, limits=RiskLimits(max_open_orders=5))
    assert reasons == [
        RejectReason.BELOW_MIN_QUANTITY,
        RejectReason.BELOW_MIN_NOTIONAL,
        RejectReason.OUTSIDE_PRICE_BAND,
        RejectReason.TOO_MANY_OPEN_ORDERS,
        RejectReason.INSUFFICIENT_FUNDS,
    ]


def test_each_reason_quotes_the_figures_that_show_why() -> None:
    spec = order(qty=1, price=200_000)
    limits = RiskLimits(max_open_orders=5, max_order_lots=0, max_position_lots=0)
    found = rejections(spec, available=7, open_orders=5, limits=limits, position=-3)
    notional = BTC.notional(200_000, 1)
    assert found == [
        Rejection(R.BELOW_MIN_QUANTITY, (Figure("quantity", 1, Unit.QUANTITY),
                                         Figure("min_quantity", 10, Unit.QUANTITY))),
        Rejection(R.BELOW_MIN_NOTIONAL, (Figure("notional", notional, Unit.MONEY, "AIT"),
                                         Figure("min_notional", BTC.min_notional, Unit.MONEY,
                                                "AIT"))),
        Rejection(R.OUTSIDE_PRICE_BAND, (Figure("price", 200_000, Unit.PRICE),
                                         Figure("low", 90_000, Unit.PRICE),
                                         Figure("high", 110_000, Unit.PRICE),
                                         Figure("reference", 100_000, Unit.PRICE))),
        Rejection(R.ABOVE_MAX_ORDER_SIZE, (Figure("quantity", 1, Unit.QUANTITY),
                                           Figure("max_order_size", 0, Unit.QUANTITY))),
        Rejection(R.ABOVE_MAX_POSITION, (Figure("position", -3, Unit.QUANTITY),
                                         Figure("projected_position", -2, Unit.QUANTITY),
                                         Figure("max_position_size", 0, Unit.QUANTITY))),
        Rejection(R.TOO_MANY_OPEN_ORDERS, (Figure("open_orders", 5, Unit.COUNT),
                                           Figure("max_open_orders", 5, Unit.COUNT))),
        Rejection(R.INSUFFICIENT_FUNDS, (Figure("needed", hold_for(BTC, spec).amount,
                                                Unit.MONEY, "AIT"),
                                         Figure("available", 7, Unit.MONEY, "AIT"))),
    ]  # fmt: skip
    market = order(kind=OrderType.MARKET)  # no protection price: nothing to quote
    assert rejections(market, reference=None) == [Rejection(R.NO_REFERENCE_PRICE)]


def test_limits_off_keeps_the_funds_check() -> None:
    spec = order(qty=100, price=200_000)
    off = RiskLimits(enabled=False, max_order_lots=1, max_position_lots=1, max_open_orders=1)
    assert checks(spec, available=0, limits=off, open_orders=9) == [RejectReason.INSUFFICIENT_FUNDS]


def test_order_size_and_position_limits() -> None:
    limits = RiskLimits(max_order_lots=500, max_position_lots=220)
    assert checks(order(qty=600), limits=limits) == [
        RejectReason.ABOVE_MAX_ORDER_SIZE,
        RejectReason.ABOVE_MAX_POSITION,
    ]
    assert checks(order(qty=150), limits=limits, position=50, open_exposure=40) == [
        RejectReason.ABOVE_MAX_POSITION
    ]
    # Selling from a long position moves toward zero: 50 - 150 = -100 is within 220.
    assert checks(order(Side.SELL, qty=150), limits=limits, position=50) == []


def test_a_market_order_without_protection_price_needs_a_reference() -> None:
    assert checks(order(kind=OrderType.MARKET)) == [RejectReason.NO_REFERENCE_PRICE]


def test_accounts_move_holds_and_release_what_is_left() -> None:
    accounts = Accounts()
    accounts.credit(ALICE, "AIT", 1_000)
    accounts.hold(OrderId(1), ALICE, Hold("AIT", 600))
    assert accounts.balance(ALICE, "AIT") == (400, 600)
    accounts.consume(OrderId(1), 250)
    accounts.release(OrderId(1))
    assert accounts.balance(ALICE, "AIT") == (750, 0)
    accounts.check()


def test_accounts_refuse_to_go_negative_or_overspend_a_hold() -> None:
    accounts = Accounts()
    accounts.credit(ALICE, "AIT", 100)
    with pytest.raises(InvariantViolation):
        accounts.hold(OrderId(1), ALICE, Hold("AIT", 101))
    accounts.hold(OrderId(2), ALICE, Hold("AIT", 50))
    with pytest.raises(InvariantViolation):
        accounts.consume(OrderId(2), 51)
    assert not accounts.adjust_hold(OrderId(2), 101)  # needs 51 more; 50 are available
    assert accounts.adjust_hold(OrderId(2), 100)
    assert accounts.balance(ALICE, "AIT") == (0, 100)


def test_withdrawals_only_from_available() -> None:
    accounts = Accounts()
    accounts.credit(ALICE, "AIT", 100)
    accounts.hold(OrderId(1), ALICE, Hold("AIT", 60))
    assert accounts.can_withdraw(ALICE, "AIT", 40)
    assert not accounts.can_withdraw(ALICE, "AIT", 41)
    assert not accounts.can_withdraw(ALICE, "AIT", 0)


def test_limits_convert_base_units_to_lots() -> None:
    config = RiskConfig(max_order_size=Decimal("1.5"), max_position_size=Decimal("0.00015"))
    limits = config.limits_for(BTC)
    assert (limits.max_order_lots, limits.max_position_lots) == (15_000, 1)
