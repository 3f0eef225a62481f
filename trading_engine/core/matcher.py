"""The matcher: one symbol's book, stop orders and expiries, driven by commands.

Each command (``submit``, ``cancel``, ``amend``, ``cancel_all``, ``expire``)
returns the events it caused, numbered by the symbol's ``seq``, or a
``Refusal`` when it could do nothing (an unknown order, say). ``apply``
replays events into an empty matcher and rebuilds the same state; recovery
depends on it and the property tests check it.

Matching rules:
- price-time priority; a trade happens at the resting (maker) order's price;
- a limit order's remainder rests (GTC, GTD) or is cancelled (IOC);
- FOK fills completely or is rejected, leaving the book untouched;
- post-only is rejected if it would take liquidity;
- a market order sweeps up to the price band around the reference price (the
  pricing actor's, else the last trade, else the best opposite price at
  arrival) and its remainder is cancelled with ``price_band`` or ``no_liquidity``;
- a quote-sized market order (``quote_quantity``) also stops at the first lot
  that would take its cost (a buy: notional plus taker fee) or its proceeds (a
  sell: notional less taker fee), summed over its fills, past its quote amount;
  its remainder is cancelled with ``quote_quantity_reached``;
- self-trade prevention acts when a taker meets a resting order of its own
  user; the taker's ``stp`` mode decides (see ``StpMode``);
- an iceberg (``display_quantity``) rests showing a slice of that size and
  hiding the rest (``IcebergRefilled``); a taker trades its slice only, and
  when the slice is filled the next one is shown at the back of its level's
  queue (it loses time priority) and may trade with the same taker; hidden
  lots never reach the book's levels;
- stop orders trigger on trade prices, a buy stop when a trade prints at or
  above its stop price, a sell stop at or below; a take-profit the other way.
  The stops triggered by one taker run in the order the taker's trades crossed them, then the stops
  their trades trigger, all within the same command;
- fees: ``fee_for(notional, bps)`` per side and trade, rounded in the
  exchange's favour;
- reduce-only orders (margin symbols): the matcher keeps each user's net
  position from the symbol's own trades (``positions``; positions in a
  margin symbol move only through them). A reduce-only order is rejected
  (``reduce_only_would_increase``) if its user is flat or on its side, and
  accepted for at most the position's size. After every taker's trades each
  live reduce-only order (resting or waiting for its trigger) of a user whose
  position moved is cut to the position (``OrderReduced``) or cancelled if
  none is left on the other side (reason ``reduce_only``); a resting one is
  checked again just before it trades. So no fill of a reduce-only order ever
  grows or reverses a position, and since every cut is an event, replay
  rebuilds the same book without deciding anything.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Final, NamedTuple

from trading_engine.core.book import BookSide
from trading_engine.core.enums import (
    CancelReason,
    Liquidity,
    OrderStatus,
    OrderType,
    RefusalReason,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from trading_engine.core.events import (
    Event,
    OrderAccepted,
    OrderAmended,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    SelfTradePrevented,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import OrderId, TradeId, UserId
from trading_engine.core.orders import (
    RESTING_TYPES,
    TRAILING,
    TRANSITIONS,
    TRIGGERED,
    WITH_LIMIT,
    Order,
    OrderSpec,
    advance,
    triggers_rising,
)
from trading_engine.core.replay import Replay
from trading_engine.errors import InvalidTransition

__all__ = ["Matcher", "Refusal"]

_NO_LIMIT: Final = 1 << 62
_BPS: Final = 10_000
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_FILLED: Final = OrderStatus.FILLED
_PARTIAL: Final = OrderStatus.PARTIALLY_FILLED
_CANCELLED: Final = OrderStatus.CANCELLED
_PENDING: Final = OrderStatus.PENDING_TRIGGER
_TRIGGERED: Final = TRIGGERED
_WITH_LIMIT: Final = WITH_LIMIT
_RESTING_TYPES: Final = RESTING_TYPES
_TRAILING: Final = TRAILING
_STP_NONE: Final = StpMode.NONE
_MAKER: Final = Liquidity.MAKER
_TAKER: Final = Liquidity.TAKER
_RESTING_TIFS: Final = frozenset({TimeInForce.GTC, TimeInForce.GTD})
_TRANSITIONS: Final = TRANSITIONS


def _fill(order: Order, quantity: int, notional: int, ts: int) -> OrderStatus:
    """Record a fill of ``quantity`` on ``order``; returns its new status (via the table)."""
    remaining = order.remaining = order.remaining - quantity
    order.filled += quantity
    order.notional += notional
    order.updated_ts = ts
    status = _PARTIAL if remaining else _FILLED
    if status not in _TRANSITIONS[order.status]:
        raise InvalidTransition(f"order {order.order_id}: {order.status} -> {status}")
    order.status = status
    return status


class Refusal(NamedTuple):
    """A cancel or amend that changed nothing, and why."""

    order_id: OrderId
    reason: RefusalReason


class Matcher(Replay):
    """One symbol's matching state; owned by one symbol actor, never shared.

    Public state: ``seq`` (of the last event emitted or applied),
    ``last_trade_id``, ``last_trade_price``, ``reference_price`` (set by the
    pricing actor: the centre of the market-order band), ``book``, ``orders``
    (every live order: resting, pending a trigger, or the current taker),
    ``by_user``, ``client_ids`` and, in a margin symbol, ``positions``.
    """

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's arguments and then its state (engine snapshots)."""
        return Matcher, (self.instrument,), self.__getstate__()

    def submit(self, spec: OrderSpec, ts: int) -> list[Event]:
        """Accept or reject a new order, match it, and run the stops it triggers."""
        out: list[Event] = []
        self._out = out
        self._touched = []
        self._ts = ts
        requested = spec
        reason = None
        if spec.reduce_only:
            reason, spec = self._reduce_only_check(spec)
        if reason is None:
            reason = self._precheck(spec, ts)
        if reason is not None:
            self.seq += 1
            out.append(OrderRejected(self.seq, ts, self.symbol, requested, reason))
            return out
        order = Order.from_spec(spec, ts)
        self.seq += 1
        out.append(OrderAccepted(self.seq, ts, self.symbol, spec, order.status))
        self._index(order)
        if order.status is _PENDING:
            self._add_pending(order)
        else:
            self._run(order)
            if self._activations:
                self._activate()
        self._emit_levels()
        return out

    def cancel(
        self,
        order_id: OrderId,
        ts: int,
        *,
        user_id: UserId | None = None,
        reason: CancelReason = CancelReason.USER,
    ) -> list[Event] | Refusal:
        """Cancel a live order; with ``user_id``, only if that user owns it."""
        order = self.orders.get(order_id)
        if order is None:  # a list's deferred member too: cancel_list cancels it
            return Refusal(order_id, RefusalReason.UNKNOWN_ORDER)
        if user_id is not None and order.user_id != user_id:
            return Refusal(order_id, RefusalReason.NOT_OWNER)
        out = self._begin(ts)
        self._cancel(order, reason)
        self._emit_levels()
        return out

    def cancel_all(
        self, user_id: UserId, ts: int, *, reason: CancelReason = CancelReason.MASS_CANCEL
    ) -> list[Event]:
        """Cancel every live order of ``user_id`` in this symbol, oldest first."""
        out = self._begin(ts)
        orders = self.orders
        for order in list(self.by_user.get(user_id, {}).values()):
            if orders.get(order.order_id) is order:  # a list it cut may have cancelled it
                self._cancel(order, reason)
        self._emit_levels()
        return out

    def expire(self, now: int) -> list[Event]:
        """Expire every GTD order whose expiry time is at or before ``now``."""
        out = self._begin(now)
        expiries = self._expiries
        orders = self.orders
        symbol = self.symbol
        while expiries and expiries[0][0] <= now:
            _, order_id = heapq.heappop(expiries)
            order = orders.get(order_id)
            if order is None or order.spec.expire_time is None or order.spec.expire_time > now:
                continue
            if order.resting:
                self._touched.append(self.book.side(order.side).remove(order))
            quantity = order.remaining
            order.cancelled += quantity
            order.remaining = 0
            order.updated_ts = now
            advance(order, OrderStatus.EXPIRED)
            self._unindex(order)
            self.seq += 1
            out.append(
                OrderExpired(
                    self.seq, now, symbol, order.order_id, order.user_id, quantity, order.filled
                )
            )
            if self._list_of and order_id in self._list_of:
                self._member_ended(order, None)
        self._emit_levels()
        return out

    def amend(
        self,
        order_id: OrderId,
        ts: int,
        *,
        price: int | None = None,
        quantity: int | None = None,
        user_id: UserId | None = None,
    ) -> list[Event] | Refusal:
        """Change a live limit order's price and/or total quantity.

        A quantity reduction at the same price keeps the order's place in the
        queue; a price change or an increase sends it to the back, and a new
        price may cross and trade at once. ``quantity`` is the new total,
        filled part included, and must exceed what is already filled or cancelled.
        """
        order = self.orders.get(order_id)
        if order is None:
            return Refusal(order_id, RefusalReason.UNKNOWN_ORDER)
        if user_id is not None and order.user_id != user_id:
            return Refusal(order_id, RefusalReason.NOT_OWNER)
        if order.spec.list_id:
            return Refusal(
                order_id, RefusalReason.INVALID_AMEND
            )  # a list's members keep their terms
        spec = order.spec
        new_price = order.price if price is None else price
        new_quantity = order.quantity if quantity is None else quantity
        has_limit = spec.type in _WITH_LIMIT
        if (
            (price is not None and (not has_limit or price <= 0))
            or new_quantity <= order.filled + order.cancelled
            or (new_price == order.price and new_quantity == order.quantity)
        ):
            return Refusal(order_id, RefusalReason.INVALID_AMEND)
        keep = new_price == order.price and new_quantity < order.quantity
        pending = order.status is _PENDING
        if not keep and not pending and spec.post_only and self._would_take(spec.side, new_price):
            return Refusal(order_id, RefusalReason.POST_ONLY_WOULD_TAKE)
        out = self._begin(ts)
        remaining = new_quantity - order.filled - order.cancelled
        self.seq += 1
        out.append(
            OrderAmended(
                self.seq, ts, self.symbol, order_id, order.user_id,
                new_price, new_quantity, remaining, keep or pending,
            )
        )  # fmt: skip
        moved = self._apply_amend(order, new_price, new_quantity, remaining, keep or pending, ts)
        live = not spec.reduce_only or self._clamp(moved)
        if moved is not order and live:
            self._run(moved)
            if self._activations:
                self._activate()
        self._emit_levels()
        return out

    def _precheck(self, spec: OrderSpec, ts: int) -> RejectReason | None:
        if spec.order_id in self.orders:
            return RejectReason.DUPLICATE_ORDER_ID
        if (
            spec.client_order_id is not None
            and (spec.user_id, spec.client_order_id) in self.client_ids
        ):
            return RejectReason.DUPLICATE_CLIENT_ORDER_ID
        kind = spec.type
        if spec.quantity <= 0 or (kind is OrderType.LIMIT and spec.price <= 0):
            return RejectReason.INVALID_ORDER
        if spec.expire_time is not None and spec.expire_time <= ts:
            return RejectReason.ALREADY_EXPIRED
        if kind in _TRAILING:
            if (
                spec.post_only
                or spec.time_in_force is TimeInForce.FOK
                or (spec.trailing_delta <= 0 and spec.trailing_bps <= 0)
            ):
                return RejectReason.INVALID_ORDER
            return None
        if kind in _TRIGGERED:
            last = self.last_trade_price
            if (
                spec.stop_price <= 0
                or (kind in _WITH_LIMIT and spec.price <= 0)
                or spec.post_only
                or spec.time_in_force is TimeInForce.FOK
            ):
                return RejectReason.INVALID_ORDER
            if last is not None and (
                last >= spec.stop_price
                if triggers_rising(spec.side, kind)
                else last <= spec.stop_price
            ):
                return RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY
            return None
        if spec.post_only and self._would_take(spec.side, spec.price):
            return RejectReason.POST_ONLY_WOULD_TAKE
        if spec.time_in_force is TimeInForce.FOK and not self._fok_fillable(spec):
            return RejectReason.FOK_NOT_FILLABLE
        return None

    def _would_take(self, side: Side, price: int) -> bool:
        if side is _BUY:
            best = self.book.asks.best()
            return best is not None and best <= price
        best = self.book.bids.best()
        return best is not None and best >= price

    def _opposite(self, side: Side) -> BookSide:
        return self.book.asks if side is _BUY else self.book.bids

    def _limit_key(self, order: Order) -> int:
        """The worst key (sign x price) the taker may trade at on the opposite side."""
        opposite = self._opposite(order.side)
        if order.price:
            return order.price * opposite.sign
        band = self.instrument.price_band_bps
        if not band:
            return _NO_LIMIT
        reference = self.reference_price or self.last_trade_price or opposite.best()
        if reference is None:
            return _NO_LIMIT
        low, high = self.instrument.band_limits(reference)
        return high if order.side is _BUY else -low

    def _fok_fillable(self, spec: OrderSpec) -> bool:
        probe = Order.from_spec(spec, 0)
        opposite = self._opposite(spec.side)
        limit_key = self._limit_key(probe)
        sign = opposite.sign
        need = spec.quantity
        prevent = spec.stp is not _STP_NONE
        # A reduce-only maker trades at most its user's position as the fills before it
        # leave it: follow the positions of the makers' users (a self-trade moves none).
        positions: dict[UserId, int] | None = {} if self._reduce_only else None
        for key in sorted(price * sign for price in opposite.levels):
            if key > limit_key:
                break
            level = opposite.levels[key * sign]
            if not prevent and positions is None and not self._icebergs:
                need -= level.quantity
            else:
                for maker in level.live():
                    user_id = maker.user_id
                    quantity = maker.remaining
                    if user_id == spec.user_id:
                        if prevent and spec.stp is not StpMode.CANCEL_OLDEST:
                            return False
                        if prevent:
                            continue
                    elif positions is not None:
                        held = positions.get(user_id, self.positions.get(user_id, 0))
                        if maker.spec.reduce_only:
                            room = held if maker.side is _SELL else -held
                            quantity = min(quantity, room if room > 0 else 0)
                        positions[user_id] = (
                            held - quantity if maker.side is _SELL else held + quantity
                        )
                    need -= quantity
                    if need <= 0:
                        return True
            if need <= 0:
                return True
        return False

    def _run(self, taker: Order) -> None:
        """Match an active taker, settle its remainder, then run the stops it triggers."""
        queue: deque[tuple[Order, int]] | None = None
        while True:
            crossed = self._take(taker)
            if taker.remaining and taker.status is not _CANCELLED:
                self._settle_remainder(taker)
            if self._moved:
                self._clamp_moved()
            if crossed is not None and (self._stops_up or self._stops_down or self._trailing):
                if queue is None:
                    queue = deque()
                # Each triggered stop remembers the last price of the taker that crossed it.
                price = self.last_trade_price or 0
                queue.extend((stop, price) for stop in self._triggered(taker.side, *crossed))
                if self._trailing:
                    trailed = self._trail(taker.side is _BUY, *crossed)
                    queue.extend((stop, price) for stop in trailed)
            # A reduce-only stop that a cut above cancelled no longer triggers.
            while queue and queue[0][0].status is not _PENDING:
                queue.popleft()
            if not queue:
                return
            taker, price = queue.popleft()
            advance(taker, OrderStatus.OPEN)
            taker.updated_ts = self._ts
            self.seq += 1
            self._out.append(
                StopTriggered(self.seq, self._ts, self.symbol, taker.order_id, taker.user_id, price)
            )
            if self._links and taker.order_id in self._links:
                self._resolve(taker)  # an OCO leg triggered: the other is cancelled first

    def _settle_remainder(self, taker: Order) -> None:
        spec = taker.spec
        if spec.type in _RESTING_TYPES:
            if spec.time_in_force in _RESTING_TIFS:
                if spec.display_quantity:
                    self._show_slice(taker)
                else:
                    self._touched.append(self.book.side(taker.side).add(taker))
                if spec.expire_time is not None:
                    heapq.heappush(self._expiries, (spec.expire_time, taker.order_id))
                return
            self._cancel(taker, CancelReason.UNFILLED_IOC)
            return
        if self._quote_spent:
            self._quote_spent = False
            self._cancel(taker, CancelReason.QUOTE_QUANTITY_REACHED)
            return
        opposite = self._opposite(taker.side)
        self._cancel(
            taker, CancelReason.PRICE_BAND if opposite.levels else CancelReason.NO_LIQUIDITY
        )

    def _take(self, taker: Order) -> tuple[int, int] | None:
        """Trade ``taker`` against the opposite side; returns the (low, high) traded price.

        The hot path of the engine: locals instead of attribute look-ups, and
        makers popped from the front of their queue directly.
        """
        opposite = self.book.asks if taker.side is _BUY else self.book.bids
        heap = opposite.heap
        if not heap:
            return None
        sign = opposite.sign
        limit_key = taker.price * sign if taker.price else self._limit_key(taker)
        if heap[0] > limit_key:
            return None
        levels = opposite.levels
        symbol = self.symbol
        per_tick_lot = self._per_tick_lot
        maker_bps = self._maker_bps
        taker_bps = self._taker_bps
        out = self._out
        touched = self._touched
        orders = self.orders
        by_user = self.by_user
        ts = self._ts
        taker_id = taker.order_id
        taker_user = taker.user_id
        taker_side = taker.side
        taker_buys = taker_side is _BUY
        prevent = taker.spec.stp is not _STP_NONE
        margin = self._margin
        links = self._links
        list_of = self._list_of
        # A quote-sized order's quote left to spend (or receive); -1 for any other.
        budget = taker.spec.quote_quantity or -1
        if budget >= 0:
            self._quote_spent = False
        first = last = 0
        while heap and taker.remaining and budget:
            key = heap[0]
            if key > limit_key:
                break
            price = key * sign
            level = levels[price]
            queue = level.orders
            touched.append(level)
            while True:
                maker = queue[0]
                if not maker.resting:
                    queue.popleft()
                    continue
                if prevent and maker.user_id == taker_user:
                    self._prevent_self_trade(taker, maker)
                    if level.count == 0 or not taker.remaining:
                        break
                    continue
                # A trade of this taker may have shrunk the maker's position since the last cut.
                if margin and maker.spec.reduce_only and not self._clamp(maker):
                    if level.count == 0:
                        break
                    continue
                quantity = maker.remaining - maker.hidden  # an iceberg's shown slice
                quantity = min(quantity, taker.remaining)
                if budget >= 0:
                    quantity = min(quantity, self._lots_for_quote(budget, price, taker_buys))
                    if not quantity:
                        budget = 0  # ends the outer loop too
                        self._quote_spent = True
                        break
                if links:  # an OCO leg's first trade: its other leg is cancelled before it
                    if maker.order_id in links:
                        self._resolve(maker)
                    if taker_id in links:
                        self._resolve(taker)
                if not first:
                    first = price
                last = price
                notional = price * quantity
                self.last_trade_id = trade_id = TradeId(self.last_trade_id + 1)
                maker_fee = -((-notional * per_tick_lot * maker_bps) // _BPS)
                taker_fee = -((-notional * per_tick_lot * taker_bps) // _BPS)
                if budget >= 0:
                    money = notional * per_tick_lot
                    budget -= money + taker_fee if taker_buys else money - taker_fee
                    if not budget:
                        self._quote_spent = True
                seq = self.seq + 1
                maker_id = maker.order_id
                out.append(
                    Trade(
                        seq, ts, symbol, trade_id, price, quantity, taker_side, maker_id,
                        taker_id, maker.user_id, taker_user, maker_fee, taker_fee,
                    )
                )  # fmt: skip
                level.quantity -= quantity
                status = _fill(maker, quantity, notional, ts)
                rest = maker.remaining
                out.append(
                    OrderFilled(
                        seq + 1, ts, symbol, maker_id, maker.user_id, trade_id, price, quantity,
                        _MAKER, maker_fee, maker.filled, rest, status,
                    )
                )  # fmt: skip
                status = _fill(taker, quantity, notional, ts)
                taker_rest = taker.remaining
                if margin:
                    self._shift(taker_user, maker.user_id, taker_buys, quantity, live=True)
                self.seq = seq + 2
                out.append(
                    OrderFilled(
                        seq + 2, ts, symbol, taker_id, taker_user, trade_id, price, quantity,
                        _TAKER, taker_fee, taker.filled, taker_rest, status,
                    )
                )  # fmt: skip
                if not rest:
                    queue.popleft()
                    maker.resting = False
                    del orders[maker_id]
                    del by_user[maker.user_id][maker_id]
                    if maker.spec.client_order_id is not None:
                        self._forget_client_id(maker)
                    if margin and maker.spec.reduce_only:
                        self._forget_reduce_only(maker)
                    if maker.spec.display_quantity:
                        self._icebergs -= 1
                    if list_of and maker_id in list_of:
                        self._filled(maker_id)
                    level.count -= 1
                    if not level.count:
                        opposite.drop(level)
                        break
                elif rest == maker.hidden:
                    self._show_slice(maker)  # its next slice, at the back of the queue
                if not taker_rest:
                    break
        if not first:
            return None
        if taker.status is _FILLED:
            del orders[taker_id]
            del by_user[taker_user][taker_id]
            if taker.spec.client_order_id is not None:
                self._forget_client_id(taker)
            if margin and taker.spec.reduce_only:
                self._forget_reduce_only(taker)
            if taker.spec.display_quantity:
                self._icebergs -= 1
            if list_of and taker_id in list_of:
                self._filled(taker_id)
        self.last_trade_price = last
        return (first, last) if first <= last else (last, first)

    def _lots_for_quote(self, budget: int, price: int, buying: bool) -> int:
        return self.instrument.lots_for_quote(budget, price, buying)

    def _prevent_self_trade(self, taker: Order, maker: Order) -> None:
        mode = taker.spec.stp
        quantity = min(taker.remaining, maker.remaining)
        self.seq += 1
        self._out.append(
            SelfTradePrevented(
                self.seq, self._ts, self.symbol, taker.order_id, maker.order_id,
                taker.user_id, mode, quantity,
            )
        )  # fmt: skip
        reason = CancelReason.SELF_TRADE_PREVENTION
        if mode is StpMode.CANCEL_NEWEST:
            self._cancel(taker, reason)
        elif mode is StpMode.CANCEL_OLDEST:
            self._cancel(maker, reason)
        elif mode is StpMode.CANCEL_BOTH:
            self._cancel(maker, reason)
            self._cancel(taker, reason)
        else:
            for order in (maker, taker):
                if order.remaining == quantity:
                    self._cancel(order, reason)
                else:
                    self._cut(order, quantity, reason)
