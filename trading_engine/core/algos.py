"""Execution algorithms (TWAP, VWAP): their schedule, their journaled events and their state.

An algorithm works a parent quantity (whole lots) through child orders over
``duration_ns``, one chance to trade per slice; slice ``k`` of ``slices`` is
due ``k * duration_ns // slices`` after the start, so the slices are equally
spaced and the first is due at once. A slice is never skipped: one that fell
due while the algorithm could not trade is sent as soon as it can.

- TWAP: the schedule's cumulative target after slice ``k`` is ``(k + 1)``
  equal parts of ``quantity // slices`` lots, and the last slice's target is
  the whole quantity (it takes the remainder, in whole lots). A child takes
  the target less what is filled so far, so a slice that did not fill
  (an IOC at a limit away from the market) is caught up by the next one, and
  the children's quantities never add up to more than the parent's.
- VWAP: each slice takes ``participation`` of the volume that others traded
  in the symbol since the previous slice (whole lots, rounded down), at most
  what is left; the first slice only marks the tape.

The algorithm's progress is the ``$algos`` stream: ``AlgoStarted``, then one
``AlgoSliceDone`` per slice done (with its child order, if it sent one),
and an ``AlgoStatusChanged`` for each change of status. Replaying them
(``AlgoState.apply``) rebuilds every algorithm. Children are numbered
densely from 0 and their client order id is ``algo-<algo id>-<child>``
(``child_client_id``), so that the child a crash left unjournaled is sent
again under the same id, which the engine answers with the original order.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import ClassVar, Final, NamedTuple, final

from trading_engine.core.enums import Side
from trading_engine.core.events import EventBase
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, UserId
from trading_engine.core.numbers import parse_decimal
from trading_engine.errors import InvalidInput

__all__ = [
    "ALGOS_STREAM",
    "ALGO_CLIENT_PREFIX",
    "DEFAULT_PARTICIPATION",
    "MAX_SLICES",
    "AlgoEvent",
    "AlgoSliceDone",
    "AlgoStarted",
    "AlgoState",
    "AlgoStatus",
    "AlgoStatusChanged",
    "AlgoType",
    "AlgoView",
    "algo_id_of",
    "child_client_id",
    "parse_duration_ns",
    "parse_participation",
    "slice_due",
    "twap_target",
    "vwap_quantity",
]

ALGOS_STREAM: Final = "$algos"
"""The journal stream of every algorithm's progress; the algorithm supervisor alone writes it."""
ALGO_CLIENT_PREFIX: Final = "algo-"
"""Client order ids of algorithms' children: reserved, no client may send one."""
MAX_SLICES: Final = 10_000
DEFAULT_PARTICIPATION: Final = (1, 10)
"""A VWAP's share of the traded volume when the request names none: 10%."""
_NS = 1_000_000_000
_MAX_DURATION_NS = 366 * 24 * 3600 * _NS


class AlgoType(StrEnum):
    TWAP = "twap"
    VWAP = "vwap"


class AlgoStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    """Its symbol is halted: no slice is sent until the symbol trades again."""
    COMPLETED = "completed"
    """Every lot filled."""
    CANCELLED = "cancelled"
    FAILED = "failed"
    """Ended before filling everything; ``reason`` says why."""

    @property
    def is_final(self) -> bool:
        return self in (AlgoStatus.COMPLETED, AlgoStatus.CANCELLED, AlgoStatus.FAILED)


# ---------------------------------------------------------------- the schedule


def twap_target(quantity: int, slices: int, k: int) -> int:
    """Lots a TWAP should have filled once slice ``k`` (from 0) is done: ``k + 1`` equal
    parts of ``quantity // slices``, and all of ``quantity`` at the last slice."""
    if k >= slices - 1:
        return quantity
    return (quantity // slices) * (k + 1)


def slice_due(start_ns: int, duration_ns: int, slices: int, k: int) -> int:
    """When slice ``k`` is due (nanoseconds since the epoch)."""
    return start_ns + duration_ns * k // slices


def vwap_quantity(volume: int, participation: tuple[int, int], remaining: int) -> int:
    """Lots a VWAP slice takes: ``participation`` of ``volume`` (lots others traded since
    the previous slice), rounded down to whole lots, at most ``remaining``."""
    num, den = participation
    return max(0, min(remaining, volume * num // den))


def parse_duration_ns(raw: object, *, field: str = "duration_s") -> int:
    """Seconds (a decimal string or an integer, exactly) as nanoseconds; raises
    ``InvalidInput`` unless positive, whole in nanoseconds and at most a year."""
    seconds = parse_decimal(raw, field=field)
    ns = seconds * _NS
    if ns != ns.to_integral_value():
        raise InvalidInput(field, "must be a whole number of nanoseconds")
    if ns <= 0:
        raise InvalidInput(field, "must be positive")
    if ns > _MAX_DURATION_NS:
        raise InvalidInput(field, "must be at most 366 days")
    return int(ns)


def parse_participation(raw: object, *, field: str = "participation") -> tuple[int, int]:
    """A share of volume, above 0 and at most 1 (a decimal string or an integer, exactly),
    as a reduced fraction ``(numerator, denominator)``; raises ``InvalidInput``."""
    value = parse_decimal(raw, field=field)
    if not Decimal(0) < value <= Decimal(1):
        raise InvalidInput(field, "must be above 0 and at most 1")
    ratio = Fraction(value)
    return ratio.numerator, ratio.denominator


def child_client_id(algo_id: int, child: int) -> ClientOrderId:
    """The client order id of child ``child`` (from 0) of algorithm ``algo_id``."""
    return ClientOrderId(f"{ALGO_CLIENT_PREFIX}{algo_id}-{child}")


def algo_id_of(client_order_id: str | None) -> int | None:
    """The algorithm whose child has ``client_order_id``, or None for any other order."""
    if client_order_id is None or not client_order_id.startswith(ALGO_CLIENT_PREFIX):
        return None
    algo, _, child = client_order_id[len(ALGO_CLIENT_PREFIX) :].partition("-")
    if not (algo.isascii() and algo.isdigit() and child.isascii() and child.isdigit()):
        return None
    return int(algo)


# ---------------------------------------------------------------- events


@final
class AlgoStarted(EventBase):
    """A new algorithm: everything its schedule needs, fixed for its life.

    ``limit_price`` is 0 for market children (bounded by the price band);
    ``participation_num / participation_den`` is a VWAP's share of volume
    (``1/1`` for a TWAP, where it means nothing).
    """

    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq", "ts", "algo_id", "user_id", "symbol", "kind", "side", "quantity", "slices",
        "duration_ns", "limit_price", "participation_num", "participation_den",
    )  # fmt: skip
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        algo_id: int,
        user_id: UserId,
        symbol: Symbol,
        kind: AlgoType,
        side: Side,
        quantity: int,
        slices: int,
        duration_ns: int,
        limit_price: int,
        participation_num: int,
        participation_den: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        """Also the start of the schedule."""
        self.algo_id: Final = algo_id
        self.user_id: Final = user_id
        self.symbol: Final = symbol
        self.kind: Final = kind
        self.side: Final = side
        self.quantity: Final = quantity
        self.slices: Final = slices
        self.duration_ns: Final = duration_ns
        self.limit_price: Final = limit_price
        self.participation_num: Final = participation_num
        self.participation_den: Final = participation_den


@final
class AlgoSliceDone(EventBase):
    """Slice ``slice`` is done. ``child`` is the child's number and ``order_id`` its order
    (-1 and 0 when the slice sent none); ``filled`` and ``notional`` (ticks x lots) are
    the child's final fills (children are IOC); ``mark`` is the tape's last trade ``seq``
    a VWAP counted volume up to."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq", "ts", "algo_id", "user_id", "symbol", "slice", "child", "order_id",
        "quantity", "filled", "notional", "mark",
    )  # fmt: skip
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        algo_id: int,
        user_id: UserId,
        symbol: Symbol,
        slice: int,  # noqa: A002 - the field's name
        child: int,
        order_id: int,
        quantity: int,
        filled: int,
        notional: int,
        mark: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.algo_id: Final = algo_id
        self.user_id: Final = user_id
        self.symbol: Final = symbol
        self.slice: Final = slice
        self.child: Final = child
        self.order_id: Final = order_id
        self.quantity: Final = quantity
        self.filled: Final = filled
        self.notional: Final = notional
        self.mark: Final = mark


@final
class AlgoStatusChanged(EventBase):
    """The algorithm's status is now ``status``; ``reason`` says why (free text, or "")."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq", "ts", "algo_id", "user_id", "symbol", "status", "reason",
    )  # fmt: skip
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        algo_id: int,
        user_id: UserId,
        symbol: Symbol,
        status: AlgoStatus,
        reason: str,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.algo_id: Final = algo_id
        self.user_id: Final = user_id
        self.symbol: Final = symbol
        self.status: Final = status
        self.reason: Final = reason


AlgoEvent = AlgoStarted | AlgoSliceDone | AlgoStatusChanged
"""What the ``$algos`` stream holds."""


# ---------------------------------------------------------------- state


class AlgoView(NamedTuple):
    """An algorithm as queries show it: engine units (lots, ticks, nanoseconds)."""

    algo_id: int
    user_id: UserId
    symbol: Symbol
    kind: AlgoType
    side: Side
    quantity: int
    slices: int
    duration_ns: int
    limit_price: int
    participation: tuple[int, int]
    status: AlgoStatus
    reason: str
    filled: int
    notional: int
    """Ticks x lots over every fill: the average price is ``notional / filled`` ticks."""
    children: tuple[OrderId, ...]
    slices_done: int
    start_ts: int
    updated_ts: int


class AlgoState:
    """One algorithm as its journaled events make it; changed only by ``apply``.

    Invariants: ``0 <= filled <= quantity``; ``children`` lists each child's order
    once, in the order sent; ``next_slice`` is one past the last slice done.
    """

    __slots__ = (
        "children", "filled", "mark", "next_slice", "notional", "reason", "started",
        "status", "updated_ts",
    )  # fmt: skip

    def __init__(self, started: AlgoStarted) -> None:
        self.started = started
        self.status = AlgoStatus.RUNNING
        self.reason = ""
        self.filled = 0
        self.notional = 0
        self.children: list[OrderId] = []
        self.next_slice = 0
        self.mark = -1
        """The VWAP's tape position (a trade ``seq``); -1 before its first slice."""
        self.updated_ts = started.ts

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's argument and then its state (engine snapshots)."""
        return AlgoState, (self.started,), self.__getstate__()

    @property
    def algo_id(self) -> int:
        return self.started.algo_id

    @property
    def remaining(self) -> int:
        return self.started.quantity - self.filled

    @property
    def next_child(self) -> int:
        """The number of the next child order, whose client order id is not yet used."""
        return len(self.children)

    @property
    def participation(self) -> tuple[int, int]:
        return self.started.participation_num, self.started.participation_den

    def apply(self, event: AlgoSliceDone | AlgoStatusChanged) -> None:
        """Apply a journaled event of this algorithm (its ``AlgoStarted`` made it)."""
        self.updated_ts = event.ts
        if isinstance(event, AlgoSliceDone):
            self.next_slice = max(self.next_slice, event.slice + 1)
            if event.order_id:
                self.children.append(OrderId(event.order_id))
                self.filled += event.filled
                self.notional += event.notional
            self.mark = max(self.mark, event.mark)
        else:
            self.status = event.status
            self.reason = event.reason

    def twap_child(self, k: int) -> int:
        """Lots a TWAP's child for slice ``k`` takes: the schedule's target less the fills
        so far, never more than what is left (0: the slice sends no child)."""
        started = self.started
        target = twap_target(started.quantity, started.slices, k)
        return max(0, min(self.remaining, target - self.filled))

    def view(self) -> AlgoView:
        s = self.started
        return AlgoView(
            s.algo_id, s.user_id, s.symbol, s.kind, s.side, s.quantity, s.slices,
            s.duration_ns, s.limit_price, self.participation, self.status, self.reason,
            self.filled, self.notional, tuple(self.children), self.next_slice, s.ts,
            self.updated_ts,
        )  # fmt: skip
