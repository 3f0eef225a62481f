"""Margin mode, without I/O: positions, their realized profit, and margin requirements.

A symbol listed with ``mode="margin"`` never moves its base asset: a trade
opens, grows, reduces or reverses each side's ``Position`` and the only money
that moves is realized profit or loss and fees, in the quote asset (the
collateral). Numbers are exact integers: quantities in lots, money in quote
minor units, rates as exact fractions.

``Position.cost`` is the signed notional of the open quantity (positive for a
long). Invariant of ``fill``: ``Δcost - realized == signed notional`` of the
fill (positive for a buy), so over a trade's buyer and seller the sum of
``Δcost - realized`` is zero, and a position closed to zero has cost zero.

Requirements per user and collateral asset (``MarginBook.requirement``):
each open order's ``remaining x order_margin_per_lot(price)`` plus each
position's ``initial_margin(cost)``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument, fee_for
from trading_engine.errors import InvalidInput

__all__ = [
    "MarginBook",
    "MarginRates",
    "Position",
    "Rate",
    "ceil_times",
    "fill",
    "initial_margin",
    "maintenance",
    "order_margin_per_lot",
    "rate_of",
    "unrealized",
]


class Rate(NamedTuple):
    """An exact fraction ``numerator / denominator`` (denominator positive)."""

    numerator: int
    denominator: int


def rate_of(value: Decimal, *, field: str = "rate") -> Rate:
    """The exact fraction of a ``Decimal``; raises ``InvalidInput`` unless 0 < value <= 1."""
    if not value.is_finite() or not 0 < value <= 1:
        raise InvalidInput(field, "must be a fraction above 0 and at most 1")
    numerator, denominator = value.as_integer_ratio()
    return Rate(numerator, denominator)


class MarginRates(NamedTuple):
    """``initial``: margin to open (``MARGIN_REQUIREMENT``); ``maintenance``: to stay open."""

    initial: Rate
    maintenance: Rate


def ceil_times(amount: int, rate: Rate) -> int:
    """``ceil(amount x rate)`` for ``amount >= 0``."""
    return -((-amount * rate.numerator) // rate.denominator)


class Position:
    """A user's open quantity in one margin symbol: ``qty`` signed lots, ``cost`` signed money."""

    def __init__(self, qty: int = 0, cost: int = 0) -> None:
        self.qty = qty
        self.cost = cost

    def __repr__(self) -> str:
        return f"Position(qty={self.qty}, cost={self.cost})"


def fill(position: Position, buy: bool, quantity: int, notional: int) -> int:
    """Apply a fill of ``quantity`` lots worth ``notional`` (> 0) to ``position``; the realized.

    Same direction (or flat): the position grows, nothing is realized.
    Opposite: ``close = min(quantity, |qty|)`` lots are closed, taking the
    proportional part of ``cost`` (its rounding remainder stays in ``cost``;
    closing all of it takes all of it), against the proportional part of
    ``notional``; any rest opens the other way at the rest of ``notional``.
    """
    qty = position.qty
    if qty == 0 or (qty > 0) == buy:
        position.qty = qty + (quantity if buy else -quantity)
        position.cost += notional if buy else -notional
        return 0
    held = -qty if qty < 0 else qty
    close = quantity if quantity < held else held
    cost_part = position.cost * close // held
    exit_value = notional * close // quantity
    # Closing a long sells (receives exit_value), closing a short buys (pays it).
    realized = exit_value - cost_part if qty > 0 else -cost_part - exit_value
    position.qty = qty + (close if buy else -close)
    position.cost -= cost_part
    rest = quantity - close
    if rest:
        rest_notional = notional - exit_value
        position.qty += rest if buy else -rest
        position.cost += rest_notional if buy else -rest_notional
    return realized


def initial_margin(cost: int, rate: Rate) -> int:
    """The margin an open position needs: ``ceil(|cost| x rate)``."""
    return ceil_times(-cost if cost < 0 else cost, rate)


def maintenance(instrument: Instrument, qty: int, mark: int, rate: Rate) -> int:
    """What equity must stay above for ``qty`` lots at ``mark``: ``ceil(notional x rate)``."""
    return ceil_times(instrument.notional(mark, -qty if qty < 0 else qty), rate)


def unrealized(instrument: Instrument, position: Position, mark: int) -> int:
    """Profit (or loss, negative) if ``position`` were closed at ``mark``."""
    qty = position.qty
    value = instrument.notional(mark, -qty if qty < 0 else qty)
    return (value if qty > 0 else -value) - position.cost


def order_margin_per_lot(instrument: Instrument, price: int, rate: Rate) -> int:
    """The most one lot of an order at ``price`` can need: initial margin plus the worst fee."""
    notional = instrument.notional(price, 1)
    worst_bps = max(instrument.maker_fee_bps, instrument.taker_fee_bps, 0)
    return ceil_times(notional, rate) + fee_for(notional, worst_bps)


class MarginBook:
    """Positions and the margin of open orders, per user; the requirement per collateral asset.

    Totals are kept incrementally: ``requirement(user, asset)`` is the sum of
    ``order_total`` (the margin of open orders) and ``position_total`` (the
    initial margin of positions) for that user and asset.
    """

    def __init__(self, rates: MarginRates) -> None:
        self.rates = rates
        self.positions: dict[UserId, dict[Symbol, Position]] = {}
        self.position_assets: dict[Symbol, str] = {}
        self.orders: dict[OrderId, tuple[UserId, str, int]] = {}
        """Per open margin order: its user, the collateral asset and its margin."""
        self.order_total: dict[tuple[UserId, str], int] = {}
        self.position_total: dict[tuple[UserId, str], int] = {}

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's arguments and then its state (engine snapshots)."""
        return MarginBook, (self.rates,), self.__getstate__()

    def requirement(self, user_id: UserId, asset: str) -> int:
        key = (user_id, asset)
        return self.order_total.get(key, 0) + self.position_total.get(key, 0)

    def set_order(self, order_id: OrderId, user_id: UserId, asset: str, amount: int) -> None:
        """Set the margin of an open order (adding it if new)."""
        old = self.orders.get(order_id)
        key = (user_id, asset)
        previous = 0 if old is None else old[2]
        self.orders[order_id] = (user_id, asset, amount)
        self.order_total[key] = self.order_total.get(key, 0) + amount - previous

    def order_margin(self, order_id: OrderId) -> int | None:
        entry = self.orders.get(order_id)
        return None if entry is None else entry[2]

    def remove_order(self, order_id: OrderId) -> tuple[UserId, str] | None:
        """Forget an ended order; its ``(user, asset)``, or None if it had no entry."""
        entry = self.orders.pop(order_id, None)
        if entry is None:
            return None
        user_id, asset, amount = entry
        self.order_total[(user_id, asset)] -= amount
        return user_id, asset

    def position(self, user_id: UserId, symbol: Symbol) -> Position:
        """The user's position in ``symbol`` (flat if none)."""
        found = self.positions.get(user_id, {}).get(symbol)
        return found if found is not None else Position()

    def fill(
        self, user_id: UserId, symbol: Symbol, asset: str, buy: bool, quantity: int, notional: int
    ) -> int:
        """Apply one side of a trade to the user's position; the realized profit or loss."""
        per_user = self.positions.setdefault(user_id, {})
        position = per_user.get(symbol)
        if position is None:
            position = per_user[symbol] = Position()
            self.position_assets[symbol] = asset
        rate = self.rates.initial
        before = initial_margin(position.cost, rate)
        realized = fill(position, buy, quantity, notional)
        key = (user_id, asset)
        self.position_total[key] = (
            self.position_total.get(key, 0) + initial_margin(position.cost, rate) - before
        )
        return realized
