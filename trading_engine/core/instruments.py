"""Instruments: a symbol's grid, limits and fees, and the arithmetic that uses them.

Prices inside the engine are integer ticks of ``tick_size`` and quantities
integer lots of ``lot_size``. Balances are integers in each asset's minor unit
(``10 ** -decimals`` of the asset). An instrument is only valid when one tick
times one lot is a whole number of quote minor units and one lot is a whole
number of base minor units, so that every notional and every fee is an exact
integer.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum

import attrs

from trading_engine.core.ids import Symbol
from trading_engine.core.numbers import format_decimal, from_units, parse_decimal, to_units
from trading_engine.errors import InvalidInput

__all__ = ["DEFAULT_ASSET_DECIMALS", "Instrument", "Mode", "fee_for", "lots_within"]

DEFAULT_ASSET_DECIMALS = 8
_SYMBOL = re.compile(r"^[A-Z0-9]{1,16}_[A-Z0-9]{1,16}$")
_ASSET = re.compile(r"^[A-Z0-9]{1,16}$")
_BPS = 10_000


class Mode(StrEnum):
    SPOT = "spot"
    MARGIN = "margin"


def fee_for(notional: int, rate_bps: int) -> int:
    """Fee in quote minor units for ``notional`` at ``rate_bps`` basis points.

    Rounded in the exchange's favour: a fee (positive rate) rounds up, a rebate
    (negative rate) rounds toward zero. Both are ``ceil(notional * rate / 10000)``.
    """
    return -((-notional * rate_bps) // _BPS)


def lots_within(budget: int, per_lot: int, rate_bps: int, buying: bool) -> int:
    """The most lots, each worth ``per_lot`` quote minor units, that a taker paying
    ``rate_bps`` may trade in one fill and keep within ``budget``: a buy's cost (notional
    plus fee) at most ``budget``, a sell's proceeds (notional less fee) at most ``budget``.

    ``rate_bps`` is from 0 to below 10,000 (a taker's fee). Exact: the first guess ignores
    the fee's rounding, then steps to the answer.
    """
    if budget <= 0 or per_lot <= 0:
        return 0
    signed = rate_bps if buying else -rate_bps
    lots = budget * _BPS // (per_lot * (_BPS + signed))
    while lots > 0 and _quote_value(lots, per_lot, rate_bps, buying) > budget:
        lots -= 1
    while _quote_value(lots + 1, per_lot, rate_bps, buying) <= budget:
        lots += 1
    return lots


def _quote_value(lots: int, per_lot: int, rate_bps: int, buying: bool) -> int:
    """What ``lots`` cost a taker (buying) or bring it (selling), fee included."""
    notional = lots * per_lot
    fee = fee_for(notional, rate_bps)
    return notional + fee if buying else notional - fee


@attrs.frozen
class Instrument:
    """A tradable symbol. Build one with ``Instrument.create``, which checks every rule."""

    symbol: Symbol
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: int
    """In lots; at least 1."""
    min_notional: int
    """In quote minor units; 0 for none."""
    price_band_bps: int
    """Band around the reference price in basis points; 0 switches the band off."""
    maker_fee_bps: int
    """Negative for a rebate."""
    taker_fee_bps: int
    mode: Mode
    base_decimals: int
    quote_decimals: int
    quote_per_tick_lot: int
    """Quote minor units in one tick times one lot: notional = price * qty * this."""
    base_per_lot: int
    """Base minor units in one lot."""

    @classmethod
    def create(
        cls,
        symbol: str,
        base_asset: str,
        quote_asset: str,
        tick_size: object,
        lot_size: object,
        *,
        min_quantity: object | None = None,
        min_notional: object | None = None,
        price_band_pct: object | None = None,
        maker_fee_bps: int = 0,
        taker_fee_bps: int = 0,
        mode: str = "spot",
        base_decimals: int = DEFAULT_ASSET_DECIMALS,
        quote_decimals: int = DEFAULT_ASSET_DECIMALS,
    ) -> Instrument:
        """Parse and check an instrument's definition.

        ``tick_size``, ``lot_size``, ``min_quantity`` (in base units, on the lot
        grid), ``min_notional`` (in quote units) and ``price_band_pct`` are
        decimal strings or integers. Raises ``InvalidInput`` naming the field.
        """
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
            raise InvalidInput("symbol", "must look like BASE_QUOTE in capitals, e.g. BTC_AIT")
        for name, asset in (("base_asset", base_asset), ("quote_asset", quote_asset)):
            if not isinstance(asset, str) or not _ASSET.match(asset):
                raise InvalidInput(name, "must be 1 to 16 capital letters or digits")
        if base_asset == quote_asset:
            raise InvalidInput("quote_asset", "must differ from base_asset")
        tick = _positive(tick_size, "tick_size")
        lot = _positive(lot_size, "lot_size")
        for name, decimals in (
            ("base_decimals", base_decimals),
            ("quote_decimals", quote_decimals),
        ):
            if (
                isinstance(decimals, bool)
                or not isinstance(decimals, int)
                or not 0 <= decimals <= 18
            ):
                raise InvalidInput(name, "must be an integer from 0 to 18")
        quote_per_tick_lot = tick * lot * (Decimal(10) ** quote_decimals)
        if quote_per_tick_lot != quote_per_tick_lot.to_integral_value():
            raise InvalidInput(
                "tick_size",
                f"tick_size x lot_size must be a whole number of {quote_asset} minor units "
                f"(10^-{quote_decimals})",
            )
        base_per_lot = lot * (Decimal(10) ** base_decimals)
        if base_per_lot != base_per_lot.to_integral_value():
            raise InvalidInput(
                "lot_size",
                f"must be a whole number of {base_asset} minor units (10^-{base_decimals})",
            )
        min_qty = 1
        if min_quantity is not None:
            min_qty = to_units(
                parse_decimal(min_quantity, field="min_quantity"), lot, field="min_quantity"
            )
            if min_qty < 1:
                raise InvalidInput("min_quantity", "must be at least one lot")
        min_notional_units = 0
        if min_notional is not None:
            value = parse_decimal(min_notional, field="min_notional")
            if value < 0:
                raise InvalidInput("min_notional", "must not be negative")
            min_notional_units = to_units(
                value, Decimal(10) ** -quote_decimals, field="min_notional"
            )
        band_bps = 0
        if price_band_pct is not None:
            pct = parse_decimal(price_band_pct, field="price_band_pct")
            if not 0 <= pct < 100:
                raise InvalidInput("price_band_pct", "must be from 0 (off) to below 100")
            band_bps = to_units(pct, Decimal("0.01"), field="price_band_pct")
        for name, bps in (("maker_fee_bps", maker_fee_bps), ("taker_fee_bps", taker_fee_bps)):
            if isinstance(bps, bool) or not isinstance(bps, int) or not -_BPS < bps < _BPS:
                raise InvalidInput(name, "must be an integer number of basis points")
        if taker_fee_bps < 0 or maker_fee_bps + taker_fee_bps < 0:
            raise InvalidInput(
                "maker_fee_bps",
                "a maker rebate may not exceed the taker fee (the exchange would pay)",
            )
        try:
            parsed_mode = Mode(mode)
        except ValueError:
            raise InvalidInput("mode", "must be 'spot' or 'margin'") from None
        return cls(
            symbol=Symbol(symbol),
            base_asset=base_asset,
            quote_asset=quote_asset,
            tick_size=tick,
            lot_size=lot,
            min_quantity=min_qty,
            min_notional=min_notional_units,
            price_band_bps=band_bps,
            maker_fee_bps=maker_fee_bps,
            taker_fee_bps=taker_fee_bps,
            mode=parsed_mode,
            base_decimals=base_decimals,
            quote_decimals=quote_decimals,
            quote_per_tick_lot=int(quote_per_tick_lot),
            base_per_lot=int(base_per_lot),
        )

    # Conversions at the edge.
    def price_to_ticks(self, raw: object, *, field: str = "price") -> int:
        """Parse a price; raises ``InvalidInput`` unless positive and on the tick grid."""
        ticks = to_units(parse_decimal(raw, field=field), self.tick_size, field=field)
        if ticks <= 0:
            raise InvalidInput(field, "must be positive")
        return ticks

    def quantity_to_lots(self, raw: object, *, field: str = "quantity") -> int:
        """Parse a quantity; raises ``InvalidInput`` unless positive and on the lot grid."""
        lots = to_units(parse_decimal(raw, field=field), self.lot_size, field=field)
        if lots <= 0:
            raise InvalidInput(field, "must be positive")
        return lots

    def quote_to_units(self, raw: object, *, field: str) -> int:
        """Parse an amount of the quote asset into its minor units; raises ``InvalidInput``
        unless positive and a whole number of them."""
        units = to_units(
            parse_decimal(raw, field=field), Decimal(10) ** -self.quote_decimals, field=field
        )
        if units <= 0:
            raise InvalidInput(field, "must be positive")
        return units

    def lots_for_quote(self, budget: int, price: int, buying: bool) -> int:
        """The most lots at ``price`` a taker may trade within ``budget`` quote minor units,
        fee included (``lots_within`` at the taker fee)."""
        return lots_within(budget, price * self.quote_per_tick_lot, self.taker_fee_bps, buying)

    def price_str(self, ticks: int) -> str:
        return format_decimal(from_units(ticks, self.tick_size))

    def quantity_str(self, lots: int) -> str:
        return format_decimal(from_units(lots, self.lot_size))

    def notional(self, price: int, quantity: int) -> int:
        """Quote minor units for ``quantity`` lots at ``price`` ticks."""
        return price * quantity * self.quote_per_tick_lot

    def base_units(self, quantity: int) -> int:
        """Base minor units in ``quantity`` lots."""
        return quantity * self.base_per_lot

    def band_limits(self, reference: int) -> tuple[int, int]:
        """The lowest and highest price in ticks inside the band around ``reference``.

        The low limit rounds up and the high limit rounds down, so both lie inside.
        """
        width = reference * self.price_band_bps
        low = -((-(reference * _BPS - width)) // _BPS)
        high = (reference * _BPS + width) // _BPS
        return max(low, 1), high


def _positive(raw: object, field: str) -> Decimal:
    value = parse_decimal(raw, field=field)
    if value <= 0:
        raise InvalidInput(field, "must be positive")
    return value
