"""Exact numbers at the edges: ``Decimal`` in, integer ticks and lots inside.

Nothing here accepts ``float`` or ``bool``: a float cannot hold most decimal
prices exactly, and ``True`` is an ``int`` that nobody means as a quantity.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

from trading_engine.errors import InvalidInput, OffGridError

__all__ = [
    "format_decimal",
    "format_seconds",
    "format_units",
    "from_units",
    "parse_decimal",
    "quantize_ratio",
    "to_units",
]

# Wide enough for any price times any quantity we accept, so that no
# arithmetic here ever rounds.
_EXACT = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.Inexact])
_MAX_DIGITS = 40


def parse_decimal(raw: object, *, field: str) -> Decimal:
    """Parse a JSON number or decimal string into a finite ``Decimal``.

    Accepts ``str`` (ASCII: "1_000" and "٣" are refused), ``int`` and ``Decimal``.
    Raises ``InvalidInput`` for ``float``, ``bool``, anything else, text that is not a
    number, NaN and infinities, and numbers with absurdly many digits.
    """
    if isinstance(raw, (bool, float)):
        raise InvalidInput(field, "must be a decimal string or an integer, not a float")
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if not text or len(text) > 64:
            raise InvalidInput(field, "must be a decimal number")
        # Decimal() also reads Python's own spellings: "1_000", and digits of any
        # script ("٣" is 3). A decimal string is ASCII digits, sign, point and exponent.
        if not text.isascii() or "_" in text:
            raise InvalidInput(field, f"{raw!r} is not a decimal number")
        try:
            value = Decimal(text)
        except decimal.InvalidOperation:
            raise InvalidInput(field, f"{raw!r} is not a decimal number") from None
    else:
        raise InvalidInput(field, "must be a decimal string or a number")
    if not value.is_finite():
        raise InvalidInput(field, "must be a finite number")
    if (
        len(value.as_tuple().digits) > _MAX_DIGITS
        or not -_MAX_DIGITS < value.adjusted() < _MAX_DIGITS
    ):
        raise InvalidInput(field, "has too many digits")
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
