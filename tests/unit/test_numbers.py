from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_engine.core.instruments import Instrument, fee_for
from trading_engine.core.numbers import (
    format_decimal,
    format_units,
    parse_decimal,
    quantize_ratio,
    to_units,
)
from trading_engine.errors import InvalidInput, OffGridError


@pytest.fixture
def btc() -> Instrument:
    return Instrument.create("BTC_AIT", "BTC", "AIT", "0.01", "0.0001")


@pytest.mark.parametrize(
    "raw", [1.5, True, None, [], "abc", "NaN", "Infinity", "", "1e999999", "1_000", "٣", "\uff11"]
)
def test_parse_decimal_rejects_floats_bools_and_non_numbers(raw: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_decimal(raw, field="price")
    assert info.value.field == "price"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1.10", "1.10"), (3, "3"), ("0.5", "0.5"), (Decimal("0.25"), "0.25"),
     ("99999999999999999999", "99999999999999999999"),
     ("0.000000000000000001", "0.000000000000000001")],
)  # fmt: skip
def test_parse_decimal_accepts_strings_and_ints_exactly(raw: object, expected: str) -> None:
    assert parse_decimal(raw, field="x") == Decimal(expected)


@pytest.mark.parametrize(
    "raw",
    [" 1", "1 ", "+1", "-1", "0.01\n", "1.", ".5", "1e5", "1E5", "0x10", "1,5",
     "100000000000000000000", "0.0000000000000000001", -1, Decimal("-0.5"), Decimal("1E+20"),
     Decimal("1E-19"), 10**20],
)  # fmt: skip
def test_parse_decimal_refuses_signs_spaces_exponents_and_numbers_past_the_maxima(
    raw: object,
) -> None:
    with pytest.raises(InvalidInput, match="plain decimal number") as info:
        parse_decimal(raw, field="amount")
    assert info.value.field == "amount"


@given(
    st.decimals(
        min_value=0, max_value=Decimal("99999999999999999999.999999999999999999"), places=18
    )
)
def test_every_decimal_the_engine_shows_within_the_maxima_is_read_back_as_itself(
    value: Decimal,
) -> None:
    """A client may send back any price or amount it was shown."""
    assert parse_decimal(format_decimal(value), field="x") == value


def test_off_grid_price_names_the_grid(btc: Instrument) -> None:
    with pytest.raises(OffGridError, match=r"not a multiple of 0\.01"):
        btc.price_to_ticks("100.005")


def test_price_and_quantity_round_trip(btc: Instrument) -> None:
    assert btc.price_to_ticks("100.25") == 10025
    assert btc.price_str(10025) == "100.25"
    assert btc.quantity_to_lots("0.0100") == 100
    assert btc.quantity_str(100) == "0.01"


@pytest.mark.parametrize(("raw", "why"), [("0", "positive"), ("-1", "no sign"), (-1, "no sign")])
def test_non_positive_price_is_rejected(btc: Instrument, raw: object, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        btc.price_to_ticks(raw)


def test_to_units_is_exact_for_large_values() -> None:
    assert to_units(Decimal("123456789012345678.000000001"), Decimal("0.000000001"), field="x") == (
        123456789012345678000000001
    )


def test_format_decimal_has_no_exponent() -> None:
    assert format_decimal(Decimal("1E+2")) == "100"
    assert format_decimal(Decimal("0.000000010")) == "0.00000001"
    assert format_decimal(Decimal("0.00")) == "0"


def test_fee_rounds_in_the_exchanges_favour() -> None:
    assert fee_for(15, 10) == 1  # 0.015 rounds up to 1
    assert fee_for(15, -10) == 0  # a rebate of 0.015 rounds toward zero
    assert fee_for(20_000, -10) == -20
    assert fee_for(0, 10) == 0


def test_instrument_needs_whole_minor_units() -> None:
    with pytest.raises(InvalidInput, match="minor units"):
        Instrument.create("X_Y", "X", "Y", "0.001", "0.001", quote_decimals=2)


def test_instrument_rejects_a_rebate_larger_than_the_taker_fee() -> None:
    with pytest.raises(InvalidInput, match="rebate"):
        Instrument.create("X_Y", "X", "Y", "1", "1", maker_fee_bps=-5, taker_fee_bps=3)


def test_band_limits_round_inward() -> None:
    inst = Instrument.create("X_Y", "X", "Y", "1", "1", price_band_pct="10")
    assert inst.band_limits(1005) == (905, 1105)  # 904.5 -> 905, 1105.5 -> 1105


def test_format_units_renders_minor_units_without_trailing_zeros() -> None:

    assert format_units(1_250_000_000, 8) == "12.5"
    assert format_units(-120_000_000, 8) == "-1.2"
    assert format_units(0, 8) == "0"
    # Past the default context's 28 digits, to the last unit.
    assert format_units(10**40 + 1, 8) == "100000000000000000000000000000000.00000001"


def test_quantize_ratio_rounds_half_even_to_the_quantum_as_quantize_does() -> None:
    assert quantize_ratio(Fraction(1, 3), Decimal("0.01")) == Decimal("0.33")
    assert quantize_ratio(Fraction(5, 2), Decimal("1")) == Decimal("2")
    assert quantize_ratio(Fraction(7, 2), Decimal("1")) == Decimal("4")
    assert quantize_ratio(Fraction(-1, 8), Decimal("0.01")) == Decimal("-0.12")
    # The quantum's exponent, not its value, as with Decimal.quantize: 0.05 rounds to 0.01.
    assert quantize_ratio(Fraction(1234, 1000), Decimal("0.05")) == Decimal("1.23")


def test_quantize_ratio_is_exact_past_28_digits() -> None:
    value = quantize_ratio(Fraction(10**40 + 1, 3), Decimal("1E-10"))
    assert str(value) == "3333333333333333333333333333333333333333.6666666667"


def test_amounts_far_past_any_one_trade_are_shown_to_the_last_unit() -> None:
    """A notional of two maximal numbers is below 10^58 minor units; a balance may sum many."""
    units = 10**90 + 1
    assert format_units(units, 18) == "1" + "0" * 72 + "." + "0" * 17 + "1"
