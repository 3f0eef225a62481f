"""The margin part of a risk profile: positions, entry and liquidation prices, margin ratio.

For display only (money never moves here). The liquidation price of a
position is where, with every other position at its current mark, equity
would fall to maintenance: solving ``C + s*p*A - cost = M + m*p*A`` for the
price ``p``, where ``A`` is the position's size in quote units per tick,
``s`` its sign, ``m`` the maintenance fraction, and ``C`` and ``M`` the
equity and maintenance of everything else.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from trading_engine.actors.answers import MarginReport
from trading_engine.api.schemas import asset_decimals
from trading_engine.core.ids import Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.core.numbers import format_decimal, format_units, quantize_ratio

__all__ = ["render_margin"]

_RATIO = Decimal("0.0001")
"""The margin ratio's precision."""


def render_margin(
    margin: MarginReport,
    instruments: dict[Symbol, Instrument],
    references: dict[Symbol, int | None],
    maintenance_fraction: Decimal,
) -> dict[str, Any] | None:
    """The ``margin`` object of a risk profile, or None for a user with no margin activity."""
    positions, assets = margin["positions"], margin["assets"]
    if not positions and not assets:
        return None
    out_assets: dict[str, Any] = {}
    for asset, profile in assets.items():
        decimals = asset_decimals(instruments, asset)
        rendered: dict[str, str | None] = {
            "collateral": format_units(profile["collateral"], decimals),
            "equity": format_units(profile["equity"], decimals),
            "maintenance": format_units(profile["maintenance"], decimals),
            "requirement": format_units(profile["requirement"], decimals),
            "margin_held": format_units(profile["margin_held"], decimals),
        }
        maintenance = profile["maintenance"]
        rendered["margin_ratio"] = (
            format_decimal(quantize_ratio(Fraction(profile["equity"], maintenance), _RATIO))
            if maintenance
            else None
        )
        out_assets[asset] = rendered
    out_positions: dict[str, Any] = {}
    for symbol, (quantity, cost) in positions.items():
        instrument = instruments[symbol]
        size = abs(quantity) * instrument.quote_per_tick_lot
        entry = None
        if quantity:
            entry = _price(instrument, Fraction(abs(cost), size))
        quoted = assets.get(instrument.quote_asset)
        mark = references.get(symbol)
        liquidation = None
        if quantity and mark and quoted is not None:
            fraction = Fraction(maintenance_fraction)
            sign = 1 if quantity > 0 else -1
            here_unrealized = sign * mark * size - cost
            here_maintenance = fraction * mark * size
            rest_equity = quoted["equity"] - here_unrealized
            rest_maintenance = quoted["maintenance"] - here_maintenance
            denominator = (sign - fraction) * size
            price = (rest_maintenance - rest_equity + cost) / denominator
            liquidation = _price(instrument, price) if price > 0 else None
        out_positions[symbol] = {
            "quantity": ("-" if quantity < 0 else "") + instrument.quantity_str(abs(quantity)),
            "entry_price": entry,
            "mark_price": instrument.price_str(mark) if mark else None,
            "liquidation_price": liquidation,
        }
    return {"positions": out_positions, "assets": out_assets}


def _price(instrument: Instrument, ticks: Fraction) -> str:
    tick = instrument.tick_size
    return format_decimal(quantize_ratio(ticks * Fraction(tick), tick))
