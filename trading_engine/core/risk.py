"""Pre-trade risk and funds, without I/O: accounts, holds, positions and checks.

Balances are integers in each asset's minor unit, per user: ``available``
(free to use) and ``held`` (reserved by open orders). Invariants:
- no available or held balance is ever negative;
- an order's hold covers the worst it can cost: a buy holds
  ``quantity x (notional of one lot at its price + the worst fee on it)`` in
  the quote asset (a market or stop buy at its protection price), a sell holds
  its base quantity. The per-lot worst fee is rounded up, so the sum of the
  per-fill fees (each rounded up) never exceeds it;
- a fill moves held funds to the counterparty at once (so they are available
  to the very next order), and what the rest of the order does not need (the
  fill cost less than the worst) goes back to available: an open order holds
  exactly what its remaining quantity needs (``core.holds`` checks it); when
  an order ends, what is left of its hold goes back to available.

Margin symbols (``core.margin``) hold no funds per order: instead
``margin_held`` (part of ``held``) is ``min(margin_required, available +
margin_held)`` per user and collateral asset, at all times.

Every state change comes from an event (a deposit, an accepted order, a fill,
an end), so replaying the journal rebuilds the same accounts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

import attrs

from trading_engine.core.enums import OrderType, RejectReason, Side
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument, fee_for
from trading_engine.core.orders import PROTECTED, WITH_LIMIT, OrderSpec
from trading_engine.errors import InvariantViolation

__all__ = [
    "Accounts",
    "Figure",
    "Hold",
    "Rejection",
    "RiskLimits",
    "Unit",
    "check_order",
    "hold_for",
    "protection_price",
    "shortfall",
]


@attrs.frozen
class RiskLimits:
    """Limits in instrument-independent units; ``enabled`` false switches all but funds off."""

    enabled: bool = True
    max_order_lots: int | None = None
    """Per symbol, converted from base units by the engine; None for no limit."""
    max_position_lots: int | None = None
    max_open_orders: int = 1000


class Hold(NamedTuple):
    asset: str
    amount: int


class Unit(StrEnum):
    """What a ``Figure``'s value counts."""

    PRICE = "price"
    """Ticks."""
    QUANTITY = "quantity"
    """Lots; a position's is signed (long > 0)."""
    MONEY = "money"
    """Minor units of the figure's ``asset``."""
    COUNT = "count"


class Figure(NamedTuple):
    """A number that a rejection quotes, named as the API shows it (``low``, ``needed``)."""

    name: str
    value: int
    unit: Unit
    asset: str = ""
    """The asset of a ``MONEY`` figure; empty otherwise."""


class Rejection(NamedTuple):
    """A reason an order fails pre-trade checks, with the figures that show why: what the
    order asks and the limit it passes (``outside_price_band``: its price, the band's
    ``low`` and ``high`` and the ``reference``; ``insufficient_funds``: ``needed`` and
    ``available``). Reasons with nothing to quote have no figures."""

    reason: RejectReason
    figures: tuple[Figure, ...] = ()


def per_lot_cost(instrument: Instrument, price: int) -> int:
    """The most one lot bought at ``price`` can cost, fee included, in quote minor units."""
    notional = instrument.notional(price, 1)
    worst_bps = max(instrument.maker_fee_bps, instrument.taker_fee_bps, 0)
    return notional + fee_for(notional, worst_bps)


def protection_price(instrument: Instrument, side: Side, reference: int | None) -> int | None:
    """The worst price a market order may trade at: the band's edge around ``reference``."""
    if reference is None or not instrument.price_band_bps:
        return None
    low, high = instrument.band_limits(reference)
    return high if side is Side.BUY else low


def hold_for(instrument: Instrument, spec: OrderSpec, quantity: int | None = None) -> Hold:
    """What ``spec`` must hold for ``quantity`` lots (default: all of it).

    A buy's ``spec.price`` must be set: the limit price or the protection price. A
    quote-sized buy holds its ``quote_quantity``, whatever its lots: the matcher never
    spends more (it never rests, so nothing else needs it held).
    """
    lots = spec.quantity if quantity is None else quantity
    if spec.side is Side.SELL:
        return Hold(instrument.base_asset, instrument.base_units(lots))
    if spec.quote_quantity:
        return Hold(instrument.quote_asset, spec.quote_quantity)
    if spec.price <= 0:
        raise InvariantViolation(f"order {spec.order_id}: a buy needs a price to hold against")
    return Hold(instrument.quote_asset, lots * per_lot_cost(instrument, spec.price))


def check_order(
    instrument: Instrument,
    spec: OrderSpec,
    *,
    limits: RiskLimits,
    reference: int | None,
    available: int | None,
    open_orders: int,
    position: int,
    open_exposure: int,
) -> list[Rejection]:
    """Every reason ``spec`` fails pre-trade checks, with its figures; empty when it may
    go to the book.

    ``available`` is the user's free balance in the asset the order holds (None: no
    funds check, for orders whose funds are checked otherwise: margin, amends);
    ``position`` the user's net filled lots in the symbol (bought minus sold);
    ``open_exposure`` the lots of the user's open orders on the same side.
    """
    out: list[Rejection] = []
    kind = spec.type
    price, quantity = Unit.PRICE, Unit.QUANTITY
    needs_protection = kind in PROTECTED
    if needs_protection and spec.price <= 0:
        out.append(Rejection(RejectReason.NO_REFERENCE_PRICE))
    if spec.quantity < instrument.min_quantity:
        out.append(
            Rejection(
                RejectReason.BELOW_MIN_QUANTITY,
                (
                    Figure("quantity", spec.quantity, quantity),
                    Figure("min_quantity", instrument.min_quantity, quantity),
                ),
            )
        )
    if kind in WITH_LIMIT and instrument.min_notional:
        notional = instrument.notional(spec.price, spec.quantity)
        if notional < instrument.min_notional:
            quote = instrument.quote_asset
            out.append(
                Rejection(
                    RejectReason.BELOW_MIN_NOTIONAL,
                    (
                        Figure("notional", notional, Unit.MONEY, quote),
                        Figure("min_notional", instrument.min_notional, Unit.MONEY, quote),
                    ),
                )
            )
    if limits.enabled:
        if (
            kind is OrderType.LIMIT
            and reference is not None
            and instrument.price_band_bps
            and not _inside(instrument, reference, spec.price)
        ):
            low, high = instrument.band_limits(reference)
            out.append(
                Rejection(
                    RejectReason.OUTSIDE_PRICE_BAND,
                    (
                        Figure("price", spec.price, price),
                        Figure("low", low, price),
                        Figure("high", high, price),
                        Figure("reference", reference, price),
                    ),
                )
            )
        if limits.max_order_lots is not None and spec.quantity > limits.max_order_lots:
            out.append(
                Rejection(
                    RejectReason.ABOVE_MAX_ORDER_SIZE,
                    (
                        Figure("quantity", spec.quantity, quantity),
                        Figure("max_order_size", limits.max_order_lots, quantity),
                    ),
                )
            )
        if limits.max_position_lots is not None:
            signed = spec.quantity + open_exposure
            projected = position + signed if spec.side is Side.BUY else position - signed
            if abs(projected) > limits.max_position_lots:
                out.append(
                    Rejection(
                        RejectReason.ABOVE_MAX_POSITION,
                        (
                            Figure("position", position, quantity),
                            Figure("projected_position", projected, quantity),
                            Figure("max_position_size", limits.max_position_lots, quantity),
                        ),
                    )
                )
        if open_orders >= limits.max_open_orders:
            out.append(
                Rejection(
                    RejectReason.TOO_MANY_OPEN_ORDERS,
                    (
                        Figure("open_orders", open_orders, Unit.COUNT),
                        Figure("max_open_orders", limits.max_open_orders, Unit.COUNT),
                    ),
                )
            )
    has_price = spec.side is Side.SELL or spec.price > 0
    if available is not None and has_price:
        hold = hold_for(instrument, spec)
        if hold.amount > available:
            out.append(shortfall(RejectReason.INSUFFICIENT_FUNDS, hold, available))
    return out


def shortfall(reason: RejectReason, needed: Hold, available: int) -> Rejection:
    """``reason`` (funds or margin) with what the order needs and what is available."""
    return Rejection(
        reason,
        (
            Figure("needed", needed.amount, Unit.MONEY, needed.asset),
            Figure("available", available, Unit.MONEY, needed.asset),
        ),
    )


def _inside(instrument: Instrument, reference: int, price: int) -> bool:
    low, high = instrument.band_limits(reference)
    return low <= price <= high


class Accounts:
    """Balances per user and asset, the holds of open orders, and positions per symbol."""

    def __init__(self) -> None:
        self.available: dict[tuple[UserId, str], int] = {}
        self.held: dict[tuple[UserId, str], int] = {}
        self.holds: dict[OrderId, tuple[UserId, str, int]] = {}
        """Per open order: its user, the held asset and what is left of the hold."""
        self.positions: dict[tuple[UserId, Symbol], int] = {}
        self.margin_required: dict[tuple[UserId, str], int] = {}
        """Margin mode: what the user's margin orders and positions need, per collateral asset."""
        self.margin_held: dict[tuple[UserId, str], int] = {}
        """Part of ``held``: always ``min(margin_required, available + margin_held)``."""
        self.insurance: dict[str, int] = {}
        """The insurance fund per asset: minus what it paid for users' shortfalls (may be < 0)."""

    def balance(self, user_id: UserId, asset: str) -> tuple[int, int]:
        """``(available, held)``."""
        key = (user_id, asset)
        return self.available.get(key, 0), self.held.get(key, 0)

    def assets(self, user_id: UserId) -> list[str]:
        keys = set(self.available) | set(self.held)
        return sorted(asset for user, asset in keys if user == user_id)

    def credit(self, user_id: UserId, asset: str, amount: int) -> None:
        key = (user_id, asset)
        if self.margin_required and key in self.margin_required:
            self._credit_collateral(key, amount)
            return
        value = self.available.get(key, 0) + amount
        if value < 0:
            raise InvariantViolation(f"{user_id} {asset}: available would go negative")
        self.available[key] = value

    def _credit_collateral(self, key: tuple[UserId, str], amount: int) -> None:
        """Credit a margin user's collateral: margin held is what the requirement takes of it."""
        margin_held = self.margin_held.get(key, 0)
        total = self.available.get(key, 0) + margin_held + amount
        if total < 0:
            raise InvariantViolation(f"{key[0]} {key[1]}: collateral would go negative")
        wanted = min(self.margin_required[key], total)
        self.available[key] = total - wanted
        self.margin_held[key] = wanted
        self.held[key] = self.held.get(key, 0) + wanted - margin_held

    def set_margin_requirement(self, user_id: UserId, asset: str, required: int) -> None:
        """Hold ``min(required, available + margin held)`` of ``asset`` as the user's margin."""
        key = (user_id, asset)
        self.margin_required[key] = required
        self._credit_collateral(key, 0)

    def collateral(self, user_id: UserId, asset: str) -> int:
        """Available plus margin held: what margin losses may take (spot holds excluded)."""
        key = (user_id, asset)
        return self.available.get(key, 0) + self.margin_held.get(key, 0)

    def pay_insurance(self, user_id: UserId, asset: str, amount: int) -> None:
        """The insurance fund covers ``amount`` of the user's shortfall."""
        self.insurance[asset] = self.insurance.get(asset, 0) - amount
        self.credit(user_id, asset, amount)

    def can_withdraw(self, user_id: UserId, asset: str, amount: int) -> bool:
        return 0 < amount <= self.available.get((user_id, asset), 0)

    def hold(self, order_id: OrderId, user_id: UserId, hold: Hold) -> None:
        """Move ``hold`` from available to held for ``order_id``."""
        if order_id in self.holds:
            raise InvariantViolation(f"order {order_id} already holds funds")
        self.credit(user_id, hold.asset, -hold.amount)
        key = (user_id, hold.asset)
        self.held[key] = self.held.get(key, 0) + hold.amount
        self.holds[order_id] = (user_id, hold.asset, hold.amount)

    def adjust_hold(self, order_id: OrderId, amount: int) -> bool:
        """Set the hold of ``order_id`` to ``amount``; False if available can't cover a rise."""
        user_id, asset, current = self.holds[order_id]
        delta = amount - current
        if delta > self.available.get((user_id, asset), 0):
            return False
        self.credit(user_id, asset, -delta)
        self.held[(user_id, asset)] += delta
        self.holds[order_id] = (user_id, asset, amount)
        return True

    def consume(self, order_id: OrderId, amount: int) -> None:
        """Spend ``amount`` of the order's hold (a fill paid from it)."""
        user_id, asset, left = self.holds[order_id]
        if amount > left:
            raise InvariantViolation(f"order {order_id}: fill of {amount} exceeds its hold {left}")
        self.holds[order_id] = (user_id, asset, left - amount)
        self.held[(user_id, asset)] -= amount

    def release(self, order_id: OrderId) -> None:
        """An order ended: what is left of its hold becomes available again."""
        entry = self.holds.pop(order_id, None)
        if entry is None:
            return
        user_id, asset, left = entry
        self.held[(user_id, asset)] -= left
        self.credit(user_id, asset, left)

    def move_position(self, user_id: UserId, symbol: Symbol, lots: int) -> None:
        key = (user_id, symbol)
        self.positions[key] = self.positions.get(key, 0) + lots

    def check(self) -> None:
        """Raise ``InvariantViolation`` if a balance is negative or holds disagree with held."""
        if any(v < 0 for v in self.available.values()) or any(v < 0 for v in self.held.values()):
            # The insurance fund (``insurance``) is not a balance and may be negative.
            raise InvariantViolation("a balance is negative")
        per_key: dict[tuple[UserId, str], int] = {}
        for user_id, asset, left in self.holds.values():
            per_key[(user_id, asset)] = per_key.get((user_id, asset), 0) + left
        for key, margin in self.margin_held.items():
            per_key[key] = per_key.get(key, 0) + margin
            if margin != min(self.margin_required.get(key, 0), margin + self.available[key]):
                raise InvariantViolation(f"{key}: margin held {margin} is not what is required")
        for key, value in self.held.items():
            if per_key.get(key, 0) != value:
                raise InvariantViolation(
                    f"{key}: held {value} != sum of holds and margin {per_key.get(key, 0)}"
                )
