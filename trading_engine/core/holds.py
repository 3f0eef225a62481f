"""What open orders need held, computed from the orders alone, and where held differs.

The risk actor keeps holds incrementally: an order's hold (or margin) is
taken when it is accepted, brought to what is left of the order by each
fill, reduction and amend, and released when it ends. This module computes
the same figure from scratch, from the open orders and positions only, so
that a check can compare it with what the accounts hold:

- a spot order needs what ``hold_for`` holds for its remaining lots at its
  current price: a buy its remaining lots at its price plus the worst fee
  (``per_lot_cost``), in the quote asset; a sell its remaining base quantity;
  the two legs of an OCO pair (``core.lists``) need the larger of the two;
- a margin order needs ``remaining x order_margin_per_lot(price)`` of the
  quote asset (none if reduce-only), and a position ``initial_margin(cost)``;
  their sum is the user's requirement in that asset, of which
  ``min(requirement, collateral)`` is held (collateral: available plus
  margin held, as ``core.risk.Accounts`` keeps it).

So a user's held balance in an asset is exactly the spot holds of their
open orders in it plus, in a collateral asset, the margin held.
``hold_mismatches`` lists every user and asset where it is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from trading_engine.core.enums import Side
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.margin import Rate, initial_margin, order_margin_per_lot
from trading_engine.core.orders import OrderSpec
from trading_engine.core.risk import per_lot_cost

__all__ = [
    "HoldMismatch",
    "OpenOrder",
    "expected_held",
    "hold_mismatches",
    "margin_requirements",
    "spot_holds",
]

Key = tuple[UserId, str]
"""A user and an asset."""

OpenOrder = tuple[Instrument, OrderSpec, int, int]
"""An open order as its events leave it: its instrument, its spec, its price now and its
remaining lots (an amend changes the price; the spec keeps what was first asked). A plain
tuple: a check builds one per open order."""


class HoldMismatch(NamedTuple):
    """A user's held balance in an asset that is not what their open orders need."""

    user_id: UserId
    asset: str
    expected: int
    actual: int

    def __str__(self) -> str:
        return (
            f"{self.user_id} {self.asset}: held {self.actual}, its open orders need {self.expected}"
        )


def spot_holds(
    orders: Iterable[OpenOrder], pairs: Mapping[OrderId, OrderId] | None = None
) -> dict[Key, int]:
    """Per user and asset, what the open spot orders among ``orders`` hold: what
    ``core.risk.hold_for`` holds for their remaining lots at their price now; the legs of
    an OCO pair (``pairs``: each leg and the id of its pair's one hold) the larger of
    what each needs, not the sum."""
    needed: dict[Key, int] = {}
    paired: dict[tuple[Key, OrderId], int] = {}
    per_lot: dict[tuple[Symbol, int], int] = {}
    for instrument, spec, price, remaining in orders:
        if remaining <= 0 or instrument.mode is Mode.MARGIN:
            continue
        if spec.side is Side.SELL:
            key = (spec.user_id, instrument.base_asset)
            amount = instrument.base_units(remaining)
        else:
            key = (spec.user_id, instrument.quote_asset)
            cost = per_lot.get((instrument.symbol, price))
            if cost is None:
                cost = per_lot[(instrument.symbol, price)] = per_lot_cost(instrument, price)
            amount = remaining * cost
        if pairs and spec.order_id in pairs:
            pair = (key, pairs[spec.order_id])
            paired[pair] = max(paired.get(pair, 0), amount)
            continue
        needed[key] = needed.get(key, 0) + amount
    for (key, _), amount in paired.items():
        needed[key] = needed.get(key, 0) + amount
    return needed


def margin_requirements(
    orders: Iterable[OpenOrder], positions: Iterable[tuple[UserId, str, int]], rate: Rate
) -> dict[Key, int]:
    """Per user and collateral asset, what the open margin orders among ``orders`` and the
    ``positions`` (user, collateral asset, cost) need at the initial margin ``rate``."""
    needed: dict[Key, int] = {}
    for instrument, spec, price, remaining in orders:
        if instrument.mode is not Mode.MARGIN or spec.reduce_only or remaining <= 0:
            continue
        key = (spec.user_id, instrument.quote_asset)
        per_lot = order_margin_per_lot(instrument, price, rate)
        needed[key] = needed.get(key, 0) + remaining * per_lot
    for user_id, asset, cost in positions:
        key = (user_id, asset)
        needed[key] = needed.get(key, 0) + initial_margin(cost, rate)
    return needed


def expected_held(
    spot: Mapping[Key, int], requirements: Mapping[Key, int], collateral: Mapping[Key, int]
) -> dict[Key, int]:
    """Per user and asset, the held balance: the spot holds plus ``min(requirement,
    collateral)`` of each margin requirement (a missing collateral counts as 0)."""
    held = dict(spot)
    for key, required in requirements.items():
        margin = min(required, collateral.get(key, 0))
        if margin:
            held[key] = held.get(key, 0) + margin
    return held


def hold_mismatches(expected: Mapping[Key, int], held: Mapping[Key, int]) -> list[HoldMismatch]:
    """Every user and asset where ``held`` is not ``expected`` (a missing entry is 0),
    sorted by user and asset."""
    mismatches = []
    for key in sorted(set(expected) | set(held)):
        wanted, actual = expected.get(key, 0), held.get(key, 0)
        if wanted != actual:
            mismatches.append(HoldMismatch(key[0], key[1], wanted, actual))
    return mismatches
