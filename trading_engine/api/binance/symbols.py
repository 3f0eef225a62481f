"""Names and numbers as the dialect shows them.

Symbols: ``BTC_AIT`` is ``BTCAIT`` (base and quote joined); the engine refuses
to list a symbol whose joined name another one already has (``Engine.add_symbol``),
so each joined name means one symbol. Prices and quantities are decimal strings
padded to the symbol's precision, as Binance pads them (``"0.01000000"``);
money to its asset's decimals; times are integer milliseconds. Never a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from trading_engine.api.binance.errors import invalid_symbol
from trading_engine.core.ids import Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.core.numbers import from_units

__all__ = [
    "Precision",
    "by_joined",
    "fixed",
    "instrument_for",
    "joined",
    "millis",
]

_NS_PER_MS = 1_000_000


def joined(symbol: str) -> str:
    """``BTC_AIT`` as this dialect names it: ``BTCAIT``."""
    return symbol.replace("_", "")


def by_joined(instruments: Mapping[Symbol, Instrument]) -> dict[str, Instrument]:
    return {joined(symbol): instrument for symbol, instrument in instruments.items()}


def instrument_for(instruments: Mapping[Symbol, Instrument], name: str) -> Instrument:
    """The instrument the dialect's ``name`` (``BTCAIT``) means; raises -1121."""
    instrument = by_joined(instruments).get(name)
    if instrument is None:
        raise invalid_symbol()
    return instrument


def millis(ns: int) -> int:
    return ns // _NS_PER_MS


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def fixed(value: Decimal, places: int) -> str:
    """``value`` with exactly ``places`` decimals; ``value`` must fit them (it is on a grid
    at least that coarse), so nothing is rounded."""
    return f"{value:.{places}f}"


class Precision:
    """One instrument's numbers as strings: prices to ``price_places``, quantities to
    ``quantity_places``, quote money to the quote asset's decimals (at least the tick's
    and lot's own places, so no grid value is ever cut)."""

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.price_places = max(instrument.quote_decimals, _places(instrument.tick_size))
        self.quantity_places = max(instrument.base_decimals, _places(instrument.lot_size))
        self.quote_places = instrument.quote_decimals

    def price(self, ticks: int) -> str:
        return fixed(from_units(ticks, self.instrument.tick_size), self.price_places)

    def quantity(self, lots: int) -> str:
        return fixed(from_units(lots, self.instrument.lot_size), self.quantity_places)

    def quote(self, minor_units: int) -> str:
        """Quote money in its minor units (a notional, a fee)."""
        return fixed(Decimal(minor_units).scaleb(-self.quote_places), self.quote_places)

    def notional(self, tick_lots: int) -> str:
        """A notional in ticks x lots (``OrderView.notional``), as quote money."""
        return self.quote(tick_lots * self.instrument.quote_per_tick_lot)

    def step(self, step: Decimal, places: int) -> str:
        return fixed(step, places)
