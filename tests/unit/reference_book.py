"""A naive reference order book and matcher, to check ``trading_engine.core.matcher`` against.

Deliberately slow and plain: the live orders sit in one dict, the book is the
orders flagged ``resting``, and every step finds the best maker with a linear
scan (best price, then earliest ``priority``). There is no heap, no level
object, no lazy deletion and no event stream: only the outcome of each command
(accepted, a reject or refusal reason), the trades, the resting orders and
the L2 depth, which is what the property tests compare.

The rules, from the docstrings of ``trading_engine.core.matcher`` and
``trading_engine.core.enums``; where those are silent, the reference does what
the matcher's code does, and says so:

- price-time priority, a trade at the maker's price, fees ``fee_for`` per
  side on the trade's notional;
- a limit order (or a triggered stop-limit) rests its remainder if GTC or GTD,
  else cancels it; FOK fills completely or is rejected: here decided by
  running the order against a copy of the book and checking that it filled;
- post-only is rejected if the best opposite price crosses its price;
- a market order (or a triggered stop) trades no worse than its protection
  price if the risk actor gave it one (a nonzero ``price``), else up to the
  band around the reference price (``reference_price``, else the last trade,
  else the best opposite price when it starts to take), or without limit
  when the band is off or there is no reference;
- self-trade prevention follows the taker's ``stp`` (``StpMode``);
- a stop is rejected when the last trade already reached its stop price; it
  triggers when a trade prints at or beyond it; the stops one taker triggers
  run after it in the order its trades crossed them (for a buy taker, sell
  stops by descending stop price, then buy stops by ascending stop price; a
  sell taker the reverse; equal stop prices by acceptance), and the stops
  they trigger run after those. A stop may be neither FOK nor post-only;
- a cancel or amend of an unknown order, or of another user's order when
  the user is given, is refused; an amend that changes nothing, gives a
  price to an order without one, or leaves no open quantity (the new total
  must exceed what is already filled or cancelled) is refused;
- an amend that only reduces quantity keeps priority; any other amend of an
  active order sends it to the back and runs it as a taker at its new price
  (a post-only order is refused instead if the new price would take); an
  amend of a stop still waiting for its trigger just changes it in place;
- an iceberg (``display_quantity``) rests showing a slice of at most that
  many lots (``hidden`` is the rest); the depth shows the slice, a taker
  trades the slice, and when it is gone the next one is shown with a new
  priority (the back of its price's queue) and may trade with the same
  taker; an amend that keeps priority takes the hidden lots first, as does a
  self-trade decrement (its quantity is the smaller remainder, hidden lots
  included);
- an OCO pair (``submit_oco``): a limit leg and a stop leg on one side,
  refused whole (``"<leg>:<reason>"``) if a leg would be rejected or the
  limit leg would take at once; when a leg is about to trade (its first
  trade) or its trigger is run, the other is cancelled first; a leg that
  ends otherwise (cancelled, expired, self-trade) cancels the other; the
  legs of a pair, resolved or not, cannot be amended.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

from trading_engine.core.enums import (
    OrderType,
    RefusalReason,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from trading_engine.core.instruments import Instrument, fee_for
from trading_engine.core.orders import OrderSpec

__all__ = ["ACCEPTED", "OK", "RefOrder", "RefTrade", "ReferenceBook"]

ACCEPTED = "accepted"
"""What ``submit`` returns for an accepted order; otherwise a ``RejectReason`` value."""
OK = "ok"
"""What ``cancel`` and ``amend`` return when they did something; otherwise a refusal reason."""


@dataclass
class RefOrder:
    spec: OrderSpec
    price: int
    quantity: int
    remaining: int
    accepted: int
    """Acceptance number: the tie-break between stops with the same stop price."""
    filled: int = 0
    cancelled: int = 0
    pending: bool = False
    """A stop waiting for its trigger."""
    resting: bool = False
    priority: int = 0
    """When the order last entered the book: lower is earlier."""
    hidden: int = 0
    """A resting iceberg's lots the book does not show."""

    @property
    def order_id(self) -> int:
        return self.spec.order_id

    @property
    def user_id(self) -> str:
        return self.spec.user_id

    @property
    def side(self) -> Side:
        return self.spec.side

    @property
    def rests(self) -> bool:
        return self.spec.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and (
            self.spec.time_in_force in (TimeInForce.GTC, TimeInForce.GTD)
        )


class RefTrade(NamedTuple):
    maker_order_id: int
    taker_order_id: int
    maker_user_id: str
    taker_user_id: str
    aggressor: Side
    price: int
    quantity: int
    maker_fee: int
    taker_fee: int


class ReferenceBook:
    """The reference: commands in, outcomes and trades out. See the module docstring."""

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.orders: dict[int, RefOrder] = {}
        """Every live order: resting, or a stop waiting for its trigger."""
        self.client_ids: set[tuple[str, str]] = set()
        self.trades: list[RefTrade] = []
        self.last_trade_price: int | None = None
        self.reference_price: int | None = None
        self._clock = 0
        self.links: dict[int, int] = {}
        """Each leg of an unresolved OCO pair, and the other leg."""
        self.in_lists: set[int] = set()
        """Every order ever placed as an OCO leg."""

    # ------------------------------------------------------------------ commands

    def submit(self, spec: OrderSpec, ts: int) -> str:
        reason = self._reject_reason(spec, ts)
        if reason is not None:
            return reason.value
        order = self._new_order(spec)
        self.orders[order.order_id] = order
        if spec.client_order_id is not None:
            self.client_ids.add((spec.user_id, spec.client_order_id))
        if spec.type in (OrderType.STOP, OrderType.STOP_LIMIT):
            order.pending = True
        else:
            self._run(order)
        return ACCEPTED

    def submit_oco(self, limit_leg: OrderSpec, stop_leg: OrderSpec, ts: int) -> str:
        for index, spec in enumerate((limit_leg, stop_leg)):
            reason = self._reject_reason(spec, ts)
            if reason is None and index == 0 and self._would_take(spec.side, spec.price):
                reason = RejectReason.POST_ONLY_WOULD_TAKE
            if reason is not None:
                return f"{index}:{reason.value}"
        first, second = self._new_order(limit_leg), self._new_order(stop_leg)
        second.pending = True
        for order in (first, second):
            self.orders[order.order_id] = order
            self.in_lists.add(order.order_id)
        self.links[first.order_id] = second.order_id
        self.links[second.order_id] = first.order_id
        self._run(first)  # it does not cross: it rests
        return ACCEPTED

    def _resolve(self, order: RefOrder) -> None:
        """An OCO leg trades or triggers: the other is cancelled, the pair unlinked."""
        other = self.links.pop(order.order_id, None)
        if other is not None:
            del self.links[other]
            self._close(self.orders[other])

    def cancel(self, order_id: int, user_id: str | None = None) -> str:
        order = self.orders.get(order_id)
        if order is None:
            return RefusalReason.UNKNOWN_ORDER.value
        if user_id is not None and order.user_id != user_id:
            return RefusalReason.NOT_OWNER.value
        self._close(order)
        return OK

    def cancel_all(self, user_id: str) -> None:
        for order in list(self.orders.values()):
            if order.user_id == user_id and order.order_id in self.orders:
                self._close(order)

    def expire(self, now: int) -> None:
        for order in list(self.orders.values()):
            expire_time = order.spec.expire_time
            if expire_time is not None and expire_time <= now and order.order_id in self.orders:
                self._close(order)

    def amend(
        self,
        order_id: int,
        *,
        price: int | None = None,
        quantity: int | None = None,
        user_id: str | None = None,
    ) -> str:
        order = self.orders.get(order_id)
        if order is None:
            return RefusalReason.UNKNOWN_ORDER.value
        if user_id is not None and order.user_id != user_id:
            return RefusalReason.NOT_OWNER.value
        if order_id in self.in_lists:
            return RefusalReason.INVALID_AMEND.value
        new_price = order.price if price is None else price
        new_quantity = order.quantity if quantity is None else quantity
        has_limit = order.spec.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        new_remaining = new_quantity - order.filled - order.cancelled
        if (
            (price is not None and (not has_limit or price <= 0))
            or new_remaining <= 0
            or (new_price == order.price and new_quantity == order.quantity)
        ):
            return RefusalReason.INVALID_AMEND.value
        keeps_priority = new_price == order.price and new_quantity < order.quantity
        if order.pending or keeps_priority:
            order.hidden -= min(order.hidden, max(order.remaining - new_remaining, 0))
            order.price, order.quantity, order.remaining = new_price, new_quantity, new_remaining
            return OK
        if order.spec.post_only and self._would_take(order.side, new_price):
            return RefusalReason.POST_ONLY_WOULD_TAKE.value
        order.price, order.quantity, order.remaining = new_price, new_quantity, new_remaining
        order.resting = False
        order.hidden = 0
        self._run(order)
        return OK

    # ------------------------------------------------------------------ queries

    def depth(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """L2 ``(bids, asks)``, best first, as ``Matcher.depth`` returns them."""
        totals: dict[tuple[Side, int], int] = {}
        for order in self.orders.values():
            if order.resting:
                key = (order.side, order.price)
                totals[key] = totals.get(key, 0) + order.remaining - order.hidden
        bids = sorted(
            ((price, qty) for (side, price), qty in totals.items() if side is Side.BUY),
            reverse=True,
        )
        asks = sorted((price, qty) for (side, price), qty in totals.items() if side is Side.SELL)
        return bids, asks

    # ------------------------------------------------------------------ rules

    def _new_order(self, spec: OrderSpec) -> RefOrder:
        self._clock += 1
        return RefOrder(spec, spec.price, spec.quantity, spec.quantity, accepted=self._clock)

    def _reject_reason(self, spec: OrderSpec, ts: int) -> RejectReason | None:
        if spec.order_id in self.orders:
            return RejectReason.DUPLICATE_ORDER_ID
        if (
            spec.client_order_id is not None
            and (spec.user_id, spec.client_order_id) in self.client_ids
        ):
            return RejectReason.DUPLICATE_CLIENT_ORDER_ID
        is_stop = spec.type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if (
            spec.quantity <= 0
            or (spec.type is OrderType.LIMIT and spec.price <= 0)
            or (is_stop and spec.stop_price <= 0)
            or (spec.type is OrderType.STOP_LIMIT and spec.price <= 0)
            or (is_stop and (spec.post_only or spec.time_in_force is TimeInForce.FOK))
        ):
            return RejectReason.INVALID_ORDER
        if spec.expire_time is not None and spec.expire_time <= ts:
            return RejectReason.ALREADY_EXPIRED
        if is_stop:
            last = self.last_trade_price
            if last is not None and (
                last >= spec.stop_price if spec.side is Side.BUY else last <= spec.stop_price
            ):
                return RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY
            return None
        if spec.post_only and self._would_take(spec.side, spec.price):
            return RejectReason.POST_ONLY_WOULD_TAKE
        if spec.time_in_force is TimeInForce.FOK and not self._fills_completely(spec):
            return RejectReason.FOK_NOT_FILLABLE
        return None

    def _would_take(self, side: Side, price: int) -> bool:
        return any(
            o.resting
            and o.side is not side
            and (o.price <= price if side is Side.BUY else o.price >= price)
            for o in self.orders.values()
        )

    def _fills_completely(self, spec: OrderSpec) -> bool:
        """Run the order against a copy of the book: does it fill in full?"""
        trial = ReferenceBook(self.instrument)
        trial.last_trade_price = self.last_trade_price
        trial.reference_price = self.reference_price
        trial.orders = {oid: copy.copy(o) for oid, o in self.orders.items() if o.resting}
        probe = trial._new_order(spec)
        trial.orders[probe.order_id] = probe
        trial._take(probe)
        return probe.filled == probe.quantity

    def _limit(self, taker: RefOrder) -> int | None:
        """The worst price ``taker`` may trade at, or None for no limit."""
        if taker.price:
            return taker.price
        if not self.instrument.price_band_bps:
            return None
        reference = self.reference_price or self.last_trade_price or self._best(taker.side.opposite)
        if reference is None:
            return None
        low, high = self.instrument.band_limits(reference)
        return high if taker.side is Side.BUY else low

    def _best(self, side: Side) -> int | None:
        prices = [o.price for o in self.orders.values() if o.resting and o.side is side]
        if not prices:
            return None
        return max(prices) if side is Side.BUY else min(prices)

    def _best_maker(self, taker: RefOrder, limit: int | None) -> RefOrder | None:
        buying = taker.side is Side.BUY
        makers = [
            o
            for o in self.orders.values()
            if o.resting
            and o.side is not taker.side
            and (limit is None or (o.price <= limit if buying else o.price >= limit))
        ]
        if not makers:
            return None
        return min(makers, key=lambda o: (o.price if buying else -o.price, o.priority))

    def _run(self, first: RefOrder) -> None:
        """Match an active order, settle its remainder, then run the stops it triggers."""
        queue = [first]
        while queue:
            taker = queue.pop(0)
            if taker.order_id not in self.orders:
                continue  # an OCO leg whose other leg traded first
            taker.pending = False
            if taker is not first:
                self._resolve(taker)  # a stop triggered: its OCO's other leg goes first
            prices = self._take(taker)
            if taker.remaining > 0:
                if taker.rests:
                    self._clock += 1
                    taker.priority = self._clock
                    taker.resting = True
                    display = taker.spec.display_quantity
                    if display:
                        taker.hidden = taker.remaining - min(display, taker.remaining)
                else:
                    self._close(taker)
            if prices:
                queue.extend(self._triggered(taker.side, min(prices), max(prices)))

    def _take(self, taker: RefOrder) -> list[int]:
        """Trade ``taker`` against the book; returns the prices it traded at."""
        limit = self._limit(taker)
        prices: list[int] = []
        while taker.remaining > 0:
            maker = self._best_maker(taker, limit)
            if maker is None:
                break
            if taker.spec.stp is not StpMode.NONE and maker.user_id == taker.user_id:
                self._prevent_self_trade(taker, maker)
                continue
            for leg in (maker, taker):
                if leg.order_id in self.links:
                    self._resolve(leg)
            quantity = min(maker.remaining - maker.hidden, taker.remaining)
            notional = self.instrument.notional(maker.price, quantity)
            self.trades.append(
                RefTrade(
                    maker.order_id,
                    taker.order_id,
                    maker.user_id,
                    taker.user_id,
                    taker.side,
                    maker.price,
                    quantity,
                    fee_for(notional, self.instrument.maker_fee_bps),
                    fee_for(notional, self.instrument.taker_fee_bps),
                )
            )
            self.last_trade_price = maker.price
            prices.append(maker.price)
            for order in (maker, taker):
                order.remaining -= quantity
                order.filled += quantity
                if order.remaining == 0:
                    self._close(order)
            if maker.remaining and maker.remaining == maker.hidden:
                # The iceberg's slice is gone: the next one goes to the back of the queue.
                maker.hidden -= min(maker.spec.display_quantity, maker.hidden)
                self._clock += 1
                maker.priority = self._clock
        return prices

    def _prevent_self_trade(self, taker: RefOrder, maker: RefOrder) -> None:
        mode = taker.spec.stp
        if mode is StpMode.CANCEL_NEWEST:
            self._close(taker)
        elif mode is StpMode.CANCEL_OLDEST:
            self._close(maker)
        elif mode is StpMode.CANCEL_BOTH:
            self._close(maker)
            self._close(taker)
        else:
            assert mode is StpMode.DECREMENT
            quantity = min(taker.remaining, maker.remaining)
            for order in (maker, taker):
                order.hidden -= min(order.hidden, quantity)
                order.remaining -= quantity
                order.cancelled += quantity
                if order.remaining == 0:
                    self._close(order)

    def _triggered(self, side: Side, low: int, high: int) -> list[RefOrder]:
        waiting = [o for o in self.orders.values() if o.pending]
        buys = sorted(
            (o for o in waiting if o.side is Side.BUY and o.spec.stop_price <= high),
            key=lambda o: (o.spec.stop_price, o.accepted),
        )
        sells = sorted(
            (o for o in waiting if o.side is Side.SELL and o.spec.stop_price >= low),
            key=lambda o: (-o.spec.stop_price, o.accepted),
        )
        crossed = sells + buys if side is Side.BUY else buys + sells
        for order in crossed:
            order.pending = False  # queued: no later trade may trigger it again
        return crossed

    def _close(self, order: RefOrder) -> None:
        """The order is done: whatever is still open is cancelled (or expired)."""
        order.cancelled += order.remaining
        order.remaining = order.hidden = 0
        order.resting = False
        order.pending = False
        del self.orders[order.order_id]
        if order.spec.client_order_id is not None:
            self.client_ids.discard((order.spec.user_id, order.spec.client_order_id))
        other = self.links.pop(order.order_id, None)
        if other is not None:  # an OCO leg ended unresolved: so does the other
            del self.links[other]
            self._close(self.orders[other])
