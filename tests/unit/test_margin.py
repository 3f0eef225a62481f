"""Margin mode's pure core: positions, realized profit, requirements, collateral."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.ledger import margin_posting
from trading_engine.core.margin import (
    MarginBook,
    MarginRates,
    Position,
    Rate,
    fill,
    initial_margin,
    maintenance,
    order_margin_per_lot,
    rate_of,
    unrealized,
)
from trading_engine.core.risk import Accounts
from trading_engine.errors import InvalidInput, InvariantViolation

PERP = Instrument.create(
    "XBT_USD", "XBT", "USD", "0.01", "0.0001", taker_fee_bps=10, price_band_pct="10",
    mode="margin",
)  # fmt: skip
"""One tick x one lot is 100 USD minor units."""
DAVE = UserId("dave")
RATES = MarginRates(Rate(1, 10), Rate(1, 20))


def test_buying_from_flat_opens_a_long_at_its_notional() -> None:
    position = Position()
    assert fill(position, True, 10, 1_000) == 0
    assert (position.qty, position.cost) == (10, 1_000)
    assert fill(position, True, 5, 600) == 0
    assert (position.qty, position.cost) == (15, 1_600)


def test_closing_a_long_in_parts_realizes_profit_and_ends_at_cost_zero() -> None:
    position = Position(3, 1_000)  # an average cost that does not divide evenly
    assert fill(position, False, 1, 500) == 500 - 333
    assert (position.qty, position.cost) == (2, 667)
    assert fill(position, False, 2, 600) == 600 - 667
    assert (position.qty, position.cost) == (0, 0)


def test_closing_a_short_realizes_the_opposite_way() -> None:
    position = Position()
    fill(position, False, 10, 1_000)
    assert (position.qty, position.cost) == (-10, -1_000)
    assert fill(position, True, 10, 900) == 100  # bought back cheaper: a profit
    assert (position.qty, position.cost) == (0, 0)


def test_a_fill_larger_than_the_position_reverses_it() -> None:
    position = Position(10, 1_000)
    realized = fill(position, False, 15, 1_800)  # 10 close at 1,200, 5 open short at 600
    assert realized == 200
    assert (position.qty, position.cost) == (-5, -600)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(1, 50), st.integers(1, 10_000)),
        min_size=1,
        max_size=40,
    )
)
def test_every_fill_changes_cost_by_realized_plus_its_signed_notional(
    fills: list[tuple[bool, int, int]],
) -> None:
    position = Position()
    for buy, quantity, price in fills:
        notional = PERP.notional(price, quantity)
        cost = position.cost
        realized = fill(position, buy, quantity, notional)
        assert (position.cost - cost) - realized == (notional if buy else -notional)
        if position.qty == 0:
            assert position.cost == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(1, 50), st.integers(1, 10_000)),
        min_size=1,
        max_size=40,
    )
)
def test_over_both_sides_of_every_trade_the_identity_sums_to_zero(
    trades: list[tuple[bool, int, int]],
) -> None:
    """Two traders trading only with each other: their realized sums mirror their costs."""
    a, b = Position(), Position()
    total_realized = 0
    for a_buys, quantity, price in trades:
        notional = PERP.notional(price, quantity)
        before = a.cost + b.cost
        realized = fill(a, a_buys, quantity, notional) + fill(b, not a_buys, quantity, notional)
        assert (a.cost + b.cost - before) - realized == 0
        total_realized += realized
    assert a.qty == -b.qty
    assert total_realized == a.cost + b.cost


def test_requirements_round_up_and_unrealized_follows_the_mark() -> None:
    assert initial_margin(-1_001, Rate(1, 10)) == 101
    assert maintenance(PERP, -10, 1_000, Rate(1, 20)) == 50_000  # notional 1,000,000
    position = Position(10, 1_000_000)
    assert unrealized(PERP, position, 1_100) == 100_000
    assert unrealized(PERP, Position(-10, -1_000_000), 1_100) == -100_000
    # One lot at 100,000 ticks: 10,000,000 notional, 10% margin, 10 bps worst fee.
    assert order_margin_per_lot(PERP, 100_000, Rate(1, 10)) == 1_000_000 + 10_000


def test_rates_are_exact_fractions_of_the_configured_decimals() -> None:
    assert rate_of(Decimal("0.10")) == Rate(1, 10)
    assert rate_of(Decimal("0.075")) == Rate(3, 40)
    with pytest.raises(InvalidInput):
        rate_of(Decimal(0))


def test_the_book_keeps_requirements_per_user_and_asset() -> None:
    book = MarginBook(RATES)
    symbol = Symbol("XBT_USD")
    book.set_order(OrderId(1), DAVE, "USD", 500)
    book.set_order(OrderId(2), DAVE, "USD", 300)
    book.set_order(OrderId(1), DAVE, "USD", 200)
    assert book.requirement(DAVE, "USD") == 500
    assert book.fill(DAVE, symbol, "USD", True, 10, 1_000) == 0
    assert book.requirement(DAVE, "USD") == 500 + 100
    assert book.remove_order(OrderId(2)) == (DAVE, "USD")
    book.fill(DAVE, symbol, "USD", False, 10, 1_200)
    assert book.requirement(DAVE, "USD") == 200
    assert book.position(DAVE, symbol).qty == 0


def test_margin_held_is_what_the_requirement_takes_of_the_collateral() -> None:
    accounts = Accounts()
    accounts.credit(DAVE, "USD", 1_000)
    accounts.set_margin_requirement(DAVE, "USD", 300)
    assert accounts.balance(DAVE, "USD") == (700, 300)
    accounts.set_margin_requirement(DAVE, "USD", 1_500)
    assert accounts.balance(DAVE, "USD") == (0, 1_000)
    accounts.credit(DAVE, "USD", 200)  # a deposit goes to margin first
    assert accounts.balance(DAVE, "USD") == (0, 1_200)
    accounts.credit(DAVE, "USD", -1_100)  # a loss takes margin held once available is gone
    assert accounts.balance(DAVE, "USD") == (0, 100)
    accounts.check()
    with pytest.raises(InvariantViolation):
        accounts.credit(DAVE, "USD", -101)
    accounts.pay_insurance(DAVE, "USD", 50)
    assert accounts.insurance == {"USD": -50}
    accounts.set_margin_requirement(DAVE, "USD", 0)
    assert accounts.balance(DAVE, "USD") == (150, 0)
    accounts.check()


def test_a_margin_posting_balances_and_skips_zero_amounts() -> None:
    posting = margin_posting("margin:1", DAVE, "USD", -500, 10, 200, 0)
    assert posting is not None
    assert sum(entry.amount for entry in posting.entries) == 0
    assert {entry.account for entry in posting.entries} == {
        "user:dave", "clearing", "fees", "insurance",
    }  # fmt: skip
    assert margin_posting("margin:2", DAVE, "USD", 0, 0, 0, 0) is None
