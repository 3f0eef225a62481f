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
- self-trade prevention acts when a taker meets a resting order of its own
  user; the taker's ``stp`` mode decides (see ``StpMode``);
- stop orders trigger on trade prices, a buy stop when a trade prints at or
  above its stop price, a sell stop at or below. The stops triggered by one
  taker run in the order the taker's trades crossed them, then the stops
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

import hashlib
import heapq
from collections import deque
from typing import Final, NamedTuple

from trading_engine.core.book import Book, BookSide, Level
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
    BookLevel,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderReduced,
    OrderRejected,
    SelfTradePrevented,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import ClientOrderId, OrderId, TradeId, UserId
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.orders import TRANSITIONS, Order, OrderSpec, advance
from trading_engine.errors import InvalidTransition, InvariantViolation

__all__ = ["Matcher", "Refusal"]

_NO_LIMIT: Final = 1 << 62
_BPS: Final = 10_000
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_FILLED: Final = OrderStatus.FILLED
_PARTIAL: Final = OrderStatus.PARTIALLY_FILLED
_CANCELLED: Final = OrderStatus.CANCELLED
_PENDING: Final = OrderStatus.PENDING_TRIGGER
_MARKET: Final = OrderType.MARKET
_STOP: Final = OrderType.STOP
_STOP_LIMIT: Final = OrderType.STOP_LIMIT
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


class Matcher:
    """One symbol's matching state; owned by one symbol actor, never shared.

    Public state: ``seq`` (of the last event emitted or applied),
    ``last_trade_id``, ``last_trade_price``, ``reference_price`` (set by the
    pricing actor: the centre of the market-order band), ``book``, ``orders``
    (every live order: resting, pending a trigger, or the current taker),
    ``by_user``, ``client_ids`` and, in a margin symbol, ``positions``.
    """

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        # Copied out of the (frozen attrs) instrument: read on every trade.
        self._per_tick_lot = instrument.quote_per_tick_lot
        self._maker_bps = instrument.maker_fee_bps
        self._taker_bps = instrument.taker_fee_bps
        self.seq = 0
        self.last_trade_id = 0
        self.last_trade_price: int | None = None
        self.reference_price: int | None = None
        self.book = Book()
        self.orders: dict[OrderId, Order] = {}
        self.by_user: dict[UserId, dict[OrderId, Order]] = {}
        self.client_ids: dict[tuple[UserId, ClientOrderId], OrderId] = {}
        self._stops_up: list[tuple[int, int, OrderId]] = []
        self._stops_down: list[tuple[int, int, OrderId]] = []
        self._expiries: list[tuple[int, OrderId]] = []
        self._margin = instrument.mode is Mode.MARGIN
        self.positions: dict[UserId, int] = {}
        """Margin symbols: each user's net position in lots (bought minus sold; no zeros)."""
        self._reduce_only: dict[UserId, dict[OrderId, None]] = {}
        """Margin symbols: each user's live reduce-only orders, oldest first."""
        self._moved: list[UserId] = []
        """Users with reduce-only orders whose position the current taker moved."""
        self._out: list[Event] = []
        self._touched: list[Level] = []
        self._ts = 0

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's arguments and then its state (engine snapshots)."""
        return Matcher, (self.instrument,), self.__getstate__()

    # ------------------------------------------------------------------ commands

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
            self._add_stop(order)
        else:
            self._run(order)
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
        if order is None:
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
        for order in list(self.by_user.get(user_id, {}).values()):
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
        spec = order.spec
        new_price = order.price if price is None else price
        new_quantity = order.quantity if quantity is None else quantity
        has_limit = spec.type is OrderType.LIMIT or spec.type is _STOP_LIMIT
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
        self._emit_levels()
        return out

    # ------------------------------------------------------------------ queries

    def open_orders(self, user_id: UserId) -> list[Order]:
        """The live orders of ``user_id`` in this symbol, oldest first."""
        return list(self.by_user.get(user_id, {}).values())

    def depth(
        self, levels: int | None = None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """L2 ``(bids, asks)``, each a list of ``(price, quantity)`` best first."""
        return self.book.bids.depth(levels), self.book.asks.depth(levels)

    def state_hash(self) -> str:
        """A digest of everything replay must rebuild: book queues, live orders, stops, counters."""
        h = hashlib.sha256()
        h.update(f"{self.seq}|{self.last_trade_id}|{self.last_trade_price}\n".encode())
        for order in self.book.orders():
            h.update(f"B{order.side}|{order.price}|{order.order_id}|{order.remaining}\n".encode())
        for order_id in sorted(self.orders):
            o = self.orders[order_id]
            h.update(
                f"O{order_id}|{o.status}|{o.price}|{o.quantity}|{o.remaining}|{o.filled}"
                f"|{o.cancelled}|{o.notional}|{o.resting}\n".encode()
            )
        for user_id in sorted(self.positions):
            h.update(f"P{user_id}|{self.positions[user_id]}\n".encode())
        return h.hexdigest()

    # ------------------------------------------------------------------ replay

    def apply(self, event: Event) -> None:
        """Apply one event of this symbol, in ``seq`` order, to rebuild state.

        Raises ``InvariantViolation`` on a gap in ``seq`` or an event that
        does not fit the state (a fill of an unknown order, say).
        """
        if event.seq != self.seq + 1:
            raise InvariantViolation(f"expected seq {self.seq + 1}, got {event.seq}")
        self.seq = event.seq
        orders = self.orders
        try:
            match event:
                case OrderAccepted(spec=spec, ts=ts):
                    order = Order.from_spec(spec, ts)
                    self._index(order)
                    if order.status is _PENDING:
                        self._add_stop(order)
                    else:
                        self._rest_if_allowed(order)
                case OrderRejected():
                    pass
                case Trade(trade_id=trade_id, price=price):
                    self.last_trade_id = trade_id
                    self.last_trade_price = price
                    if self._margin:
                        buys = event.aggressor is _BUY
                        taker, maker = event.taker_user_id, event.maker_user_id
                        self._shift(taker, maker, buys, event.quantity, live=False)
                case OrderFilled():
                    order = orders[event.order_id]
                    self._reduce(order, event.quantity)
                    order.filled += event.quantity
                    order.notional += event.price * event.quantity
                    order.updated_ts = event.ts
                    advance(order, event.status)
                    if order.remaining == 0:
                        self._finish(order)
                case OrderCancelled() | OrderExpired():
                    order = orders[event.order_id]
                    quantity = order.remaining
                    self._reduce(order, quantity)
                    order.cancelled += quantity
                    order.updated_ts = event.ts
                    cancelled = isinstance(event, OrderCancelled)
                    advance(order, _CANCELLED if cancelled else OrderStatus.EXPIRED)
                    self._finish(order)
                case OrderReduced():
                    order = orders[event.order_id]
                    self._reduce(order, event.quantity)
                    order.cancelled += event.quantity
                    order.updated_ts = event.ts
                case OrderAmended():
                    order = orders[event.order_id]
                    moved = self._apply_amend(
                        order, event.price, event.quantity, event.remaining,
                        event.priority_kept, event.ts,
                    )  # fmt: skip
                    if moved is not order:
                        self._rest_if_allowed(moved)
                case StopTriggered():
                    order = orders[event.order_id]
                    advance(order, OrderStatus.OPEN)
                    self._rest_if_allowed(order)
                case SelfTradePrevented():
                    pass
                case BookLevel(side=side, price=price, quantity=quantity):
                    level = self.book.side(side).levels.get(price)
                    if (level.quantity if level else 0) != quantity:
                        raise InvariantViolation(f"seq {event.seq}: level {side} {price} differs")
        except (KeyError, InvalidTransition) as exc:
            raise InvariantViolation(f"seq {event.seq}: {event!r} does not fit: {exc}") from exc

    # ------------------------------------------------------------------ internals

    def _begin(self, ts: int) -> list[Event]:
        out: list[Event] = []
        self._out = out
        self._touched = []
        self._ts = ts
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
        if kind is _STOP or kind is _STOP_LIMIT:
            last = self.last_trade_price
            if (
                spec.stop_price <= 0
                or (kind is _STOP_LIMIT and spec.price <= 0)
                or spec.post_only
                or spec.time_in_force is TimeInForce.FOK
            ):
                return RejectReason.INVALID_ORDER
            if last is not None and (
                last >= spec.stop_price if spec.side is _BUY else last <= spec.stop_price
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
            if not prevent and positions is None:
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
            if crossed is not None and (self._stops_up or self._stops_down):
                if queue is None:
                    queue = deque()
                # Each triggered stop remembers the last price of the taker that crossed it.
                price = self.last_trade_price or 0
                queue.extend((stop, price) for stop in self._triggered(taker.side, *crossed))
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

    def _settle_remainder(self, taker: Order) -> None:
        spec = taker.spec
        if spec.type is OrderType.LIMIT or spec.type is _STOP_LIMIT:
            if spec.time_in_force in _RESTING_TIFS:
                self._touched.append(self.book.side(taker.side).add(taker))
                if spec.expire_time is not None:
                    heapq.heappush(self._expiries, (spec.expire_time, taker.order_id))
                return
            self._cancel(taker, CancelReason.UNFILLED_IOC)
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
        first = last = 0
        while heap and taker.remaining:
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
                quantity = maker.remaining
                quantity = min(quantity, taker.remaining)
                if not first:
                    first = price
                last = price
                notional = price * quantity
                self.last_trade_id = trade_id = TradeId(self.last_trade_id + 1)
                maker_fee = -((-notional * per_tick_lot * maker_bps) // _BPS)
                taker_fee = -((-notional * per_tick_lot * taker_bps) // _BPS)
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
                    level.count -= 1
                    if not level.count:
                        opposite.drop(level)
                        break
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
        self.last_trade_price = last
        return (first, last) if first <= last else (last, first)

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

    def _cut(self, order: Order, quantity: int, reason: CancelReason) -> None:
        """Take ``quantity`` (less than its remainder) off a live order, with no trade."""
        self._reduce(order, quantity)
        order.cancelled += quantity
        order.updated_ts = self._ts
        self.seq += 1
        self._out.append(
            OrderReduced(
                self.seq, self._ts, self.symbol, order.order_id,
                order.user_id, quantity, order.remaining, reason,
            )
        )  # fmt: skip

    # ------------------------------------------------------------------ reduce-only

    def _reducible(self, user_id: UserId, side: Side) -> int:
        """The lots an order of ``user_id`` on ``side`` may trade and only reduce the position."""
        position = self.positions.get(user_id, 0)
        if side is _BUY:
            return -position if position < 0 else 0
        return position if position > 0 else 0

    def _reduce_only_check(self, spec: OrderSpec) -> tuple[RejectReason | None, OrderSpec]:
        """Why a new reduce-only order is rejected, or the spec capped at the position."""
        if not self._margin:
            return RejectReason.INVALID_ORDER, spec
        allowed = self._reducible(spec.user_id, spec.side)
        if not allowed:
            return RejectReason.REDUCE_ONLY_WOULD_INCREASE, spec
        if spec.quantity > allowed:
            return None, spec._replace(quantity=allowed)
        return None, spec

    def _shift(
        self, taker: UserId, maker: UserId, taker_buys: bool, quantity: int, *, live: bool
    ) -> None:
        """Move both sides' positions by a trade of ``quantity`` lots; ``live`` (not replay):
        note the users whose reduce-only orders must be cut after this taker."""
        if taker == maker:
            return  # a self-trade moves no position
        positions = self.positions
        for user_id, delta in ((taker, quantity), (maker, -quantity)):
            position = positions.get(user_id, 0) + (delta if taker_buys else -delta)
            if position:
                positions[user_id] = position
            else:
                del positions[user_id]
            if live and user_id in self._reduce_only:
                self._moved.append(user_id)

    def _clamp(self, order: Order) -> bool:
        """Cut a reduce-only order to the position it reduces, or cancel it if there is none
        on the other side; whether it is still live."""
        allowed = self._reducible(order.user_id, order.side)
        if not allowed:
            self._cancel(order, CancelReason.REDUCE_ONLY)
            return False
        if order.remaining > allowed:
            self._cut(order, order.remaining - allowed, CancelReason.REDUCE_ONLY)
        return True

    def _clamp_moved(self) -> None:
        """Cut the reduce-only orders of every user whose position the last taker moved."""
        moved, self._moved = self._moved, []
        orders = self.orders
        for user_id in dict.fromkeys(moved):
            for order_id in list(self._reduce_only.get(user_id, ())):
                self._clamp(orders[order_id])

    def _triggered(self, side: Side, low: int, high: int) -> list[Order]:
        """Stops crossed by trades from ``low`` to ``high``, in the order they were crossed.

        A buy taker's trades rise, so sell stops (crossed at its first, lowest
        trade) come before buy stops; a sell taker's fall, so the reverse.
        """
        orders = self.orders
        seen: set[OrderId] = set()
        up: list[Order] = []
        stops = self._stops_up
        while stops and stops[0][0] <= high:
            stop, _, order_id = heapq.heappop(stops)
            order = orders.get(order_id)
            # An entry is stale if its order ended (or, were an id ever reused, is another).
            if (
                order is not None
                and order.status is _PENDING
                and order.side is _BUY
                and order.spec.stop_price == stop
                and order_id not in seen
            ):
                seen.add(order_id)
                up.append(order)
        down: list[Order] = []
        stops = self._stops_down
        while stops and -stops[0][0] >= low:
            key, _, order_id = heapq.heappop(stops)
            order = orders.get(order_id)
            if (
                order is not None
                and order.status is _PENDING
                and order.side is _SELL
                and order.spec.stop_price == -key
                and order_id not in seen
            ):
                seen.add(order_id)
                down.append(order)
        return down + up if side is _BUY else up + down

    def _add_stop(self, order: Order) -> None:
        stop = order.spec.stop_price
        if order.side is _BUY:
            heapq.heappush(self._stops_up, (stop, self.seq, order.order_id))
        else:
            heapq.heappush(self._stops_down, (-stop, self.seq, order.order_id))
        if order.spec.expire_time is not None:
            heapq.heappush(self._expiries, (order.spec.expire_time, order.order_id))

    def _rest_if_allowed(self, order: Order) -> None:
        """Replay: an active order that may rest enters the book now; its fills follow."""
        spec = order.spec
        if (spec.type is OrderType.LIMIT or spec.type is _STOP_LIMIT) and (
            spec.time_in_force in _RESTING_TIFS
        ):
            self.book.side(order.side).add(order)
            if spec.expire_time is not None:
                heapq.heappush(self._expiries, (spec.expire_time, order.order_id))

    def _cancel(self, order: Order, reason: CancelReason) -> None:
        if order.resting:
            self._touched.append(self.book.side(order.side).remove(order))
        quantity = order.remaining
        order.cancelled += quantity
        order.remaining = 0
        order.updated_ts = self._ts
        advance(order, _CANCELLED)
        self._unindex(order)
        self.seq += 1
        self._out.append(
            OrderCancelled(
                self.seq, self._ts, self.symbol, order.order_id, order.user_id,
                quantity, order.filled, reason,
            )
        )  # fmt: skip

    def _reduce(self, order: Order, quantity: int) -> None:
        """Take ``quantity`` off an order's remainder, and off its level if it rests."""
        if order.resting:
            level = self.book.side(order.side).levels[order.price]
            level.quantity -= quantity
            self._touched.append(level)
        order.remaining -= quantity

    def _finish(self, order: Order) -> None:
        """Replay: a final order leaves the book and the indexes."""
        if order.resting:
            self.book.side(order.side).remove(order)
        self._unindex(order)

    def _apply_amend(
        self, order: Order, price: int, quantity: int, remaining: int, keep: bool, ts: int
    ) -> Order:
        """Change price and quantity; returns the order, or its moved copy if it lost priority.

        The caller runs a moved copy as a taker (a command) or rests it (replay).
        """
        if keep:
            self._reduce(order, order.remaining - remaining)
            order.quantity = quantity
            order.price = price
            order.updated_ts = ts
            return order
        if order.resting:
            self._touched.append(self.book.side(order.side).remove(order))
        # A fresh object: the old one may still sit, dead, in its level's deque.
        moved = order.moved(price, quantity, remaining, ts)
        self.orders[order.order_id] = moved
        self.by_user[order.user_id][order.order_id] = moved
        return moved

    def _index(self, order: Order) -> None:
        self.orders[order.order_id] = order
        user_orders = self.by_user.get(order.user_id)
        if user_orders is None:
            user_orders = self.by_user[order.user_id] = {}
        user_orders[order.order_id] = order
        client_id = order.spec.client_order_id
        if client_id is not None:
            self.client_ids[(order.user_id, client_id)] = order.order_id
        if order.spec.reduce_only:
            self._reduce_only.setdefault(order.user_id, {})[order.order_id] = None

    def _unindex(self, order: Order) -> None:
        del self.orders[order.order_id]
        del self.by_user[order.user_id][order.order_id]
        if order.spec.client_order_id is not None:
            self._forget_client_id(order)
        if order.spec.reduce_only:
            self._forget_reduce_only(order)

    def _forget_client_id(self, order: Order) -> None:
        """An order ended: its client order id is free for another. Unique among live
        orders only, so the map stays as small as the book; the risk actor answers
        resends of orders that ended recently."""
        client_id = order.spec.client_order_id
        assert client_id is not None
        key = (order.user_id, client_id)
        if self.client_ids.get(key) == order.order_id:
            del self.client_ids[key]

    def _forget_reduce_only(self, order: Order) -> None:
        """A reduce-only order ended: it leaves the index of its user's reduce-only orders."""
        reduce_only = self._reduce_only[order.user_id]
        del reduce_only[order.order_id]
        if not reduce_only:
            del self._reduce_only[order.user_id]

    def _emit_levels(self) -> None:
        """One ``BookLevel`` per price level the command touched, with its final quantity.

        Keyed by side and price, not by level object: a level emptied and made
        anew in the same command (an order re-queued at its own price) is one
        change to subscribers.
        """
        touched = self._touched
        if not touched:
            return
        out = self._out
        seq = self.seq
        ts = self._ts
        symbol = self.symbol
        if len(touched) == 1:
            level = touched[0]
            self.seq = seq + 1
            quantity = level.quantity if level.count else 0
            out.append(BookLevel(seq + 1, ts, symbol, level.side, level.price, quantity))
            return
        book = self.book
        for side, price in dict.fromkeys((level.side, level.price) for level in touched):
            seq += 1
            current = book.side(side).levels.get(price)
            out.append(BookLevel(seq, ts, symbol, side, price, current.quantity if current else 0))
        self.seq = seq
