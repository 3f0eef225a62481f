"""What open orders need held (``core.holds``), computed here from the instruments' terms."""

from __future__ import annotations

from trading_engine.core.enums import OrderType, Side
from trading_engine.core.holds import (
    HoldMismatch,
    OpenOrder,
    expected_held,
    hold_mismatches,
    margin_requirements,
    spot_holds,
)
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.margin import Rate
from trading_engine.core.orders import OrderSpec

ALICE, BOB = UserId("alice"), UserId("bob")
BTC = Instrument.create(
    "BTC_AIT", "BTC", "AIT", "0.01", "0.0001", maker_fee_bps=-2, taker_fee_bps=10,
    price_band_pct="10",
)  # fmt: skip
"""One tick x one lot is 100 AIT minor units; one lot is 10,000 BTC minor units."""
PERP = Instrument.create(
    "XBT_AIT", "XBT", "AIT", "0.01", "0.0001", taker_fee_bps=10, price_band_pct="10",
    mode="margin",
)  # fmt: skip
TENTH = Rate(1, 10)


def order(
    instrument: Instrument,
    user: UserId,
    side: Side,
    quantity: int,
    price: int,
    *,
    remaining: int | None = None,
    now: int | None = None,
    reduce_only: bool = False,
) -> OpenOrder:
    """An open limit order of ``quantity`` at ``price``, of which ``remaining`` is left,
    at ``now`` (its price after an amend; ``price`` by default)."""
    spec = OrderSpec.create(
        OrderId(1), user, side, OrderType.LIMIT, quantity, price, reduce_only=reduce_only
    )
    left = quantity if remaining is None else remaining
    return (instrument, spec, price if now is None else now, left)


def test_a_buy_needs_its_remaining_lots_at_its_price_now_plus_the_worst_fee() -> None:
    # One lot at 100,000 ticks: 10,000,000 AIT units, and 10 bps of it (the taker's fee).
    per_lot = 100_000 * 100 + 10_000
    orders = [
        order(BTC, ALICE, Side.BUY, 100, 100_000, remaining=60),
        order(BTC, ALICE, Side.BUY, 10, 90_000, now=100_000),  # amended up to 100,000
    ]
    assert spot_holds(orders) == {(ALICE, "AIT"): 70 * per_lot}


def test_a_sell_needs_its_remaining_base_quantity_and_margin_orders_no_hold() -> None:
    orders = [
        order(BTC, BOB, Side.SELL, 50, 101_000, remaining=20),
        order(PERP, BOB, Side.BUY, 10, 100_000),
        order(BTC, BOB, Side.SELL, 5, 101_000, remaining=0),
    ]
    assert spot_holds(orders) == {(BOB, "BTC"): 20 * 10_000}


def test_margin_needs_order_margin_and_position_margin_but_none_for_reduce_only() -> None:
    # Per lot at 100,000: 10% of 10,000,000 plus the 10 bps fee.
    per_lot = 1_000_000 + 10_000
    orders = [
        order(PERP, ALICE, Side.BUY, 10, 100_000, remaining=4),
        order(PERP, ALICE, Side.SELL, 3, 100_000, reduce_only=True),
        order(BTC, ALICE, Side.BUY, 10, 100_000),
    ]
    positions = [(ALICE, "AIT", -30_000_001), (BOB, "AIT", 0)]
    assert margin_requirements(orders, positions, TENTH) == {
        (ALICE, "AIT"): 4 * per_lot + 3_000_001,  # 10% of 30,000,001, rounded up
        (BOB, "AIT"): 0,
    }


def test_held_is_the_spot_holds_plus_as_much_margin_as_the_collateral_covers() -> None:
    spot = {(ALICE, "AIT"): 500, (ALICE, "BTC"): 7}
    requirements = {(ALICE, "AIT"): 1_000, (BOB, "AIT"): 1_000, (BOB, "USD"): 0}
    collateral = {(ALICE, "AIT"): 5_000, (BOB, "AIT"): 300}
    assert expected_held(spot, requirements, collateral) == {
        (ALICE, "AIT"): 1_500,
        (ALICE, "BTC"): 7,
        (BOB, "AIT"): 300,
    }


def test_every_mismatch_names_the_user_the_asset_and_both_figures() -> None:
    expected = {(ALICE, "AIT"): 600, (BOB, "BTC"): 10, (BOB, "AIT"): 5}
    held = {(ALICE, "AIT"): 625, (BOB, "BTC"): 10, (ALICE, "BTC"): 3}
    mismatches = hold_mismatches(expected, held)
    assert mismatches == [
        HoldMismatch(ALICE, "AIT", 600, 625),
        HoldMismatch(ALICE, "BTC", 0, 3),
        HoldMismatch(BOB, "AIT", 5, 0),
    ]
    assert str(mismatches[0]) == "alice AIT: held 625, its open orders need 600"
    assert hold_mismatches(expected, {**held, (ALICE, "AIT"): 600, (ALICE, "BTC"): 0}) == [
        HoldMismatch(BOB, "AIT", 5, 0)
    ]
