"""Exact numbers at the edges: ``Decimal`` in, integer ticks and lots inside.

Nothing here accepts ``float`` or ``bool``: a float cannot hold most decimal
prices exactly, and ``True`` is an ``int`` that nobody means as a quantity.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal
from fractions import Fraction

from trading_engine.errors import InvalidInput, OffGridError

__all__ = [
    "GRAMMAR",
    "MAX_FRACTION_DIGITS",
    "MAX_WHOLE_DIGITS",
    "format_decimal",
    "format_seconds",
    "format_units",
    "from_units",
    "parse_decimal",
    "quantize_ratio",
    "to_units",
]

# Wide enough for any price times any quantity we accept (below 10^40 in value, so
# below 10^58 in minor units of 18 decimals) and for balances summing many of them,
# so that no arithmetic here ever rounds.
_EXACT = decimal.Context(prec=100, traps=[decimal.InvalidOperation, decimal.Inexact])
MAX_WHOLE_DIGITS = 20
"""Digits before the point a number from outside may have: every value is below 10^20."""
MAX_FRACTION_DIGITS = 18
"""Digits after the point a number from outside may have."""
_PLAIN = re.compile(rf"[0-9]{{1,{MAX_WHOLE_DIGITS}}}(?:\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})?")
GRAMMAR = (
    f"a plain decimal number: 1 to {MAX_WHOLE_DIGITS} digits, optionally a point and 1 to "
    f"{MAX_FRACTION_DIGITS} more (no sign, exponent or spaces)"
)
"""What ``parse_decimal`` accepts, in words, for error messages and the docs."""


def parse_decimal(raw: object, *, field: str) -> Decimal:
    """Parse a decimal string or JSON number into a non-negative ``Decimal``.

    A string must match the one grammar (``GRAMMAR``): ASCII digits, optionally
    a point and more digits; "1." and ".5", signs, exponents, spaces and other
    spellings ("1_000", "٣", "NaN") are refused. An ``int`` or a ``Decimal``
    (a JSON number) must be non-negative and fit the same bounds. Raises
    ``InvalidInput`` for those, for ``float`` and ``bool``, and for anything else.
    """
    if isinstance(raw, (bool, float)):
        raise InvalidInput(field, "must be a decimal string or an integer, not a float")
    if isinstance(raw, str):
        if not _PLAIN.fullmatch(raw):
            shown = raw if len(raw) <= 30 else raw[:30] + "..."
            raise InvalidInput(field, f"{shown!r} is not {GRAMMAR}")
        return Decimal(raw)
    if isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, Decimal):
        value = raw
    else:
        raise InvalidInput(field, "must be a decimal string or a number")
    exponent = value.as_tuple().exponent
    if (
        not value.is_finite()
        or value.is_signed()
        or value.adjusted() >= MAX_WHOLE_DIGITS
        or (isinstance(exponent, int) and exponent < -MAX_FRACTION_DIGITS)
    ):
        raise InvalidInput(field, f"{value} is not {GRAMMAR}")
    return value


def to_units(value: Decimal, unit: Decimal, *, field: str) -> int:
    """Return ``value / unit`` as an ``int``; the unit is a tick or lot size.

    Raises ``OffGridError`` naming the grid when ``value`` is not a whole
    multiple of ``unit``.
    """
    try:
        units = _EXACT.divide(value, unit)
        whole = units.to_integral_exact(context=_EXACT)
    except (decimal.Inexact, decimal.InvalidOperation):
        whole = None
    if whole is None or whole != units:
        raise OffGridError(field, f"{value} is not a multiple of {format_decimal(unit)}")
    return int(whole)


def from_units(units: int, unit: Decimal) -> Decimal:
    """Return ``units * unit`` exactly."""
    return _EXACT.multiply(Decimal(units), unit)


def format_decimal(value: Decimal) -> str:
    """Render a decimal as exchanges do: plain notation, no exponent, no trailing zeros."""
    if value == 0:
        return "0"
    return format(value.normalize(_EXACT), "f")


def format_units(units: int, decimals: int) -> str:
    """An amount in an asset's minor units (``10 ** -decimals``) as a decimal string."""
    return format_decimal(Decimal(units).scaleb(-decimals, _EXACT))


def format_seconds(ns: int) -> str:
    """A time in nanoseconds since the epoch as the API shows it: seconds, a decimal string."""
    return format_units(ns, 9)


def quantize_ratio(ratio: Fraction, quantum: Decimal) -> Decimal:
    """``ratio`` rounded half-even to ``quantum``'s exponent, as ``Decimal.quantize`` rounds.

    Exact for any size: the default context would first round the quotient to 28
    digits, and ``quantize`` raises ``InvalidOperation`` past them.
    """
    exponent = quantum.as_tuple().exponent
    assert isinstance(exponent, int), "a finite quantum"
    return Decimal(round(ratio / Fraction(10) ** exponent)).scaleb(exponent, _EXACT)
