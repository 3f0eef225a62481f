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
- a list's member that waits for its working order (``OrderDeferred``) needs
  ``pending_hold``: what it will need once placed, less what the working
  order's remaining lots deliver at least in that asset when they fill
  (``delivered_at_least``), never less than 0; so the working order's fills
  fund it, and it holds in full once the working order has filled;
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
from trading_engine.core.instruments import Instrument, Mode, fee_for
from trading_engine.core.margin import Rate, initial_margin, order_margin_per_lot
from trading_engine.core.orders import WITH_LIMIT, OrderSpec
from trading_engine.core.risk import Hold, hold_for, per_lot_cost

__all__ = [
    "HoldMismatch",
    "OpenOrder",
    "delivered_at_least",
    "expected_held",
    "hold_mismatches",
    "margin_requirements",
    "pending_hold",
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


def delivered_at_least(
    instrument: Instrument, working: OrderSpec, lots: int, pending: OrderSpec
) -> int:
    """The least that ``lots`` lots of the spot order ``working`` deliver, once filled, in
    the asset that ``pending`` (an order of the same user, on the same symbol) spends.

    A buy receives the base units of what it buys (its fee is paid in the quote asset); a
    sell with a limit price (``WITH_LIMIT``: the price does not move) receives at least
    each lot's notional at that price less the worst fee on it, rounded up as every fee is
    (a fill at a better price, or at a lower fee, receives more; a fee on several lots at
    once, rounded up once, is no more than the per-lot fees rounded up one by one).
    Nothing if ``pending`` is on ``working``'s side (it spends what ``working`` spends) or
    ``working`` is a sell with no limit (it may sell at any price)."""
    if pending.side is working.side:
        return 0
    if working.side is Side.BUY:
        return instrument.base_units(lots)
    if working.type not in WITH_LIMIT:
        return 0
    notional = instrument.notional(working.price, 1)
    worst_bps = max(instrument.maker_fee_bps, instrument.taker_fee_bps, 0)
    return lots * (notional - fee_for(notional, worst_bps))


def pending_hold(
    instrument: Instrument, working: OrderSpec, remaining: int, pending: OrderSpec
) -> Hold:
    """What ``pending``, a list's member waiting for its working order ``working`` with
    ``remaining`` lots left to fill, holds: what ``hold_for`` holds for it less
    ``delivered_at_least`` of those lots, never less than 0. With no lots left it is the
    member's full hold; each fill raises it by no more than the fill delivered."""
    hold = hold_for(instrument, pending)
    credit = delivered_at_least(instrument, working, remaining, pending)
    return Hold(hold.asset, max(hold.amount - credit, 0))


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
