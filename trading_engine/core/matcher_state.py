"""The matcher's state and its bookkeeping: ``MatcherState``, the base of ``Matcher``.

What every part of the matcher reads and writes: the book, the live orders and
their indexes (by user, by client order id, reduce-only), the stop and expiry
heaps, positions, the counters, and the events of the command under way. Its
helpers keep those consistent as an order rests, shrinks, amends or ends, and
emit the ``BookLevel`` events a command leaves behind. The matcher's other
rooms build on it, one after the other: ``stops.py``, ``positions.py``,
``replay.py``, then ``matcher.py`` (commands and matching).
"""

from __future__ import annotations

import hashlib
import heapq
from typing import Final

from trading_engine.core.book import Book, Level
from trading_engine.core.enums import (
    CancelReason,
    OrderStatus,
    TimeInForce,
)
from trading_engine.core.events import (
    BookLevel,
    Event,
    IcebergRefilled,
    OrderCancelled,
    OrderReduced,
)
from trading_engine.core.ids import ClientOrderId, OrderId, UserId
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.order_list import OrderList
from trading_engine.core.orders import RESTING_TYPES, Order, advance
from trading_engine.errors import InvariantViolation

__all__ = ["MatcherState"]

_CANCELLED: Final = OrderStatus.CANCELLED
_RESTING_TYPES: Final = RESTING_TYPES
_RESTING_TIFS: Final = frozenset({TimeInForce.GTC, TimeInForce.GTD})


class MatcherState:
    """One symbol's matching state; see ``Matcher`` for what is public."""

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
        self._trailing: dict[OrderId, Order] = {}
        """Pending trailing stops, oldest first (their ``stop_price`` is 0 until armed)."""
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
        self._icebergs = 0
        """How many live orders are icebergs (``_fok_fillable`` then counts hidden lots)."""
        self._quote_spent = False
        """The current quote-sized taker stopped at its quote amount (its remainder's reason)."""
        self.lists: dict[int, OrderList] = {}
        """The open order lists (``core.lists``), by list id."""
        self._list_of: dict[OrderId, int] = {}
        """The members of the open lists, live, deferred or ended, and their list's id."""
        self._links: dict[OrderId, OrderId] = {}
        """Each live leg of an open OCO pair, and the other leg."""
        self._activations: list[int] = []
        """Lists whose working order filled in the command under way: their deferred
        members are placed once the command's matching is done."""

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
                f"|{o.cancelled}|{o.notional}|{o.resting}|{o.stop_price}|{o.hidden}\n".encode()
            )
        h.update(f"T{list(self._trailing)}\n".encode())
        for list_id in sorted(self.lists):
            h.update(f"L{self.lists[list_id]!r}\n".encode())
        h.update(f"K{sorted(self._links.items())}|{sorted(self._list_of.items())}\n".encode())
        for user_id in sorted(self.positions):
            h.update(f"P{user_id}|{self.positions[user_id]}\n".encode())
        return h.hexdigest()

    def _begin(self, ts: int) -> list[Event]:
        out: list[Event] = []
        self._out = out
        self._touched = []
        self._ts = ts
        return out

    def _rest_if_allowed(self, order: Order) -> None:
        """Replay: an active order that may rest enters the book now; its fills follow. An
        iceberg waits for its ``IcebergRefilled``, which says what it shows."""
        spec = order.spec
        if spec.type in _RESTING_TYPES and spec.time_in_force in _RESTING_TIFS:
            if not spec.display_quantity:
                self.book.side(order.side).add(order)
            if spec.expire_time is not None:
                heapq.heappush(self._expiries, (spec.expire_time, order.order_id))

    def _show_slice(self, order: Order) -> None:
        """An iceberg rests, or shows its next slice (``_slice``): ``IcebergRefilled``."""
        level, shown = self._slice(order)
        self._touched.append(level)
        self.seq += 1
        self._out.append(
            IcebergRefilled(
                self.seq, self._ts, self.symbol, order.order_id, order.user_id, shown,
                order.hidden,
            )
        )  # fmt: skip

    def _slice(self, order: Order) -> tuple[Level, int]:
        """An iceberg rests: it shows a slice of up to ``display_quantity`` lots and hides
        the rest. A resting one, whose slice was just filled, shows the next at the back
        of its level's queue; it must be the first live order there (the one being
        filled). Its level and the slice shown."""
        side = self.book.side(order.side)
        if order.resting:
            level = side.levels[order.price]
            queue = level.orders
            while queue[0] is not order:
                if queue[0].resting:
                    raise InvariantViolation(f"order {order.order_id} is not first in its level")
                queue.popleft()
            queue.popleft()
            shown = min(order.spec.display_quantity, order.hidden)
            order.hidden -= shown
            level.quantity += shown
            queue.append(order)
        else:
            shown = min(order.spec.display_quantity, order.remaining)
            order.hidden = order.remaining - shown
            level = side.add(order)
        return level, shown

    def _cancel(self, order: Order, reason: CancelReason) -> None:
        if order.resting:
            self._touched.append(self.book.side(order.side).remove(order))
        quantity = order.remaining
        order.cancelled += quantity
        order.remaining = order.hidden = 0
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
        if self._list_of and order.order_id in self._list_of:
            self._member_ended(order, reason)

    def _member_ended(self, order: Order, reason: CancelReason | None) -> None:
        """A member of an open order list was cancelled (``reason``) or expired (None):
        ``core.lists`` decides what the list does."""

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

    def _reduce(self, order: Order, quantity: int) -> None:
        """Take ``quantity`` off an order's remainder, and off its level if it rests; an
        iceberg's hidden part goes first (amending it below its slice shrinks the slice)."""
        shown = quantity
        if order.hidden:
            hidden = min(order.hidden, quantity)
            order.hidden -= hidden
            shown -= hidden
        if order.resting:
            level = self.book.side(order.side).levels[order.price]
            level.quantity -= shown
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
        if order.spec.display_quantity:
            self._icebergs += 1

    def _unindex(self, order: Order) -> None:
        del self.orders[order.order_id]
        del self.by_user[order.user_id][order.order_id]
        if order.spec.client_order_id is not None:
            self._forget_client_id(order)
        if order.spec.reduce_only:
            self._forget_reduce_only(order)
        if self._trailing:
            self._trailing.pop(order.order_id, None)
        if order.spec.display_quantity:
            self._icebergs -= 1

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
