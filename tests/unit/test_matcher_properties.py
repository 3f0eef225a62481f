"""Property tests of the matcher: generated command streams, checked against invariants,
against replay, and against the naive ``ReferenceBook``.

The streams use three users (two of them busy) and nine price levels, so that
orders cross, self-trade and trigger stops often. Commands are resolved against
the state when they run (a cancel or amend picks among the orders then live,
an amend's quantity is a change to the order's current one), so that shrinking
keeps them meaningful. ``test_long_seeded_run_agrees_with_the_reference_book``
draws from the same distribution with a seeded ``random.Random``.
"""

from __future__ import annotations

import copy
import pickle
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trading_engine.core.enums import (
    Liquidity,
    ListType,
    OrderStatus,
    OrderType,
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
    Trade,
)
from trading_engine.core.ids import ClientOrderId, OrderId, UserId
from trading_engine.core.instruments import Instrument, fee_for
from trading_engine.core.lists import ListRefusal
from trading_engine.core.matcher import Matcher, Refusal
from trading_engine.core.orders import OrderSpec

from .reference_book import ACCEPTED, OK, ReferenceBook, RefTrade

# ---------------------------------------------------------------------- the world

USERS = (UserId("u0"), UserId("u1"), UserId("u2"))
LOW, HIGH = 96, 104
"""Prices in ticks: nine levels, so that nearly every order meets another."""
MAX_QTY = 10

INSTRUMENTS = (
    # One tick times one lot is one quote minor unit: fees are tiny and round often.
    Instrument.create(
        "BTC_USD", "BTC", "USD", "0.01", "1", quote_decimals=2, maker_fee_bps=-3, taker_fee_bps=7
    ),
    # A 2% band: a market order at 100 may trade from 98 to 102.
    Instrument.create(
        "ETH_USD",
        "ETH",
        "USD",
        "0.01",
        "0.001",
        price_band_pct="2",
        maker_fee_bps=2,
        taker_fee_bps=10,
    ),
    # A 5% band and no fees.
    Instrument.create("SOL_USD", "SOL", "USD", "1", "1", price_band_pct="5", quote_decimals=0),
)

# Weighted choices, shared by the hypothesis strategies and the seeded long run; the
# first entry of each is the one hypothesis shrinks towards.
USER_PICKS = (0, 1, 0, 1, 2)
KINDS = (
    *[OrderType.LIMIT] * 7,
    *[OrderType.MARKET] * 2,
    *[OrderType.STOP] * 2,
    OrderType.STOP_LIMIT,
)
SIDES = (Side.BUY, Side.SELL)
TIFS = (*[TimeInForce.GTC] * 6, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD)
MARKET_TIFS = (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)
STOP_TIFS = (*[TimeInForce.GTC] * 4, TimeInForce.IOC, TimeInForce.GTD)
STPS = tuple(StpMode)
POST_ONLY = (False, False, False, True)
CLIENT_IDS = (*[None] * 15, ClientOrderId("c1"), ClientOrderId("c2"))
"""Rare: a user's client order id is taken for good once used."""
DUPLICATES = (*[None] * 30, 0, 1)
WHOS = (0, 0, 1, 1, 2)
LIVES = (True, True, True, True, False)
PROTECTED = (False, False, True)
DISPLAYS = (0, 0, 0, 1, 2, 3)
"""An iceberg's slice (0: none), on a limit GTC or GTD order larger than it."""
AMEND_PRICE = (False, True)
AMEND_QUANTITY = (True, False)
COMMAND_KINDS = (
    *["submit"] * 60,
    *["cancel"] * 6,
    *["amend"] * 12,
    "cancel_all",
    *["expire"] * 2,
    *["set_reference"] * 2,
    *["oco"] * 6,
)


class Submit(NamedTuple):
    user: int
    side: Side
    type: OrderType
    tif: TimeInForce
    quantity: int
    price: int
    stop_price: int
    post_only: bool
    stp: StpMode
    expire_in: int | None
    """GTD only: the expiry is this many nanoseconds after the submit."""
    client_id: ClientOrderId | None
    duplicate: int | None
    """Reuse the id of the live order at this index (a duplicate), instead of a new id."""
    protection: int = 0
    """Market and stop orders: the worst price, as the risk actor sets it (0: none, the band)."""
    display: int = 0
    """A limit GTC or GTD order: an iceberg's slice (0: none)."""


class SubmitOco(NamedTuple):
    """An OCO pair of one user on one side: a limit leg at ``price`` (GTC) and a stop leg
    at ``stop_price`` (a stop-limit at ``limit``, if not 0)."""

    user: int
    side: Side
    quantity: int
    price: int
    stop_quantity: int
    stop_price: int
    limit: int
    stp: StpMode


class Cancel(NamedTuple):
    target: int
    """Index into the live orders (or into every id ever used, when ``live`` is false)."""
    live: bool
    who: int
    """0: no user check; 1: as the owner; 2: as another user."""


class Amend(NamedTuple):
    target: int
    live: bool
    who: int
    price: int | None
    change: int | None
    """The new quantity is the order's current quantity plus this (at least 1)."""


class CancelAll(NamedTuple):
    user: int


class Expire(NamedTuple):
    advance: int
    """How far the clock moves before expiring ..."""
    to_next_expiry: bool = False
    """... or, if a live order has an expiry time ahead, exactly to the first one."""


class SetReference(NamedTuple):
    price: int | None


Command = Submit | SubmitOco | Cancel | Amend | CancelAll | Expire | SetReference
T = TypeVar("T")


class Chooser(Protocol):
    """Where the choices come from: hypothesis (``Drawn``) or a seeded ``random.Random``."""

    def pick(self, options: Sequence[T]) -> T: ...

    def integer(self, low: int, high: int) -> int: ...


class Drawn:
    # Strategies built once: making one per draw doubles the time spent generating.
    _sampled: ClassVar[dict[tuple[Any, ...], st.SearchStrategy[Any]]] = {}
    _integers: ClassVar[dict[tuple[int, int], st.SearchStrategy[int]]] = {}

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def pick(self, options: Sequence[T]) -> T:
        key = tuple(options)
        strategy = self._sampled.get(key)
        if strategy is None:
            strategy = self._sampled[key] = st.sampled_from(key)
        value: T = self.draw(strategy)
        return value

    def integer(self, low: int, high: int) -> int:
        strategy = self._integers.get((low, high))
        if strategy is None:
            strategy = self._integers[low, high] = st.integers(low, high)
        return self.draw(strategy)


class Seeded:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


def make_command(choose: Chooser) -> Command:
    """One command; only the fields its kind uses are chosen, so that shrinking stays quick."""
    kind = choose.pick(COMMAND_KINDS)
    if kind == "submit":
        return make_submit(choose)
    if kind in ("cancel", "amend"):
        target = choose.integer(0, 50)
        live = choose.pick(LIVES)
        who = choose.pick(WHOS)
        if kind == "cancel":
            return Cancel(target, live, who)
        price = choose.integer(LOW, HIGH) if choose.pick(AMEND_PRICE) else None
        change = choose.integer(-MAX_QTY, 4) if choose.pick(AMEND_QUANTITY) else None
        return Amend(target, live, who, price, change)
    if kind == "cancel_all":
        return CancelAll(choose.pick(USER_PICKS))
    if kind == "oco":
        return SubmitOco(
            user=choose.pick(USER_PICKS),
            side=choose.pick(SIDES),
            quantity=choose.integer(1, MAX_QTY),
            price=choose.integer(LOW, HIGH),
            stop_quantity=choose.integer(1, MAX_QTY),
            stop_price=choose.integer(LOW, HIGH),
            limit=choose.integer(LOW, HIGH) if choose.pick((False, True)) else 0,
            stp=choose.pick(STPS),
        )
    if kind == "expire":
        return Expire(choose.integer(0, 15), choose.pick((False, True)))
    return SetReference(choose.integer(LOW, HIGH) if choose.pick((False, True)) else None)


def make_submit(choose: Chooser) -> Submit:
    """A submit that ``OrderSpec.create`` accepts.

    Post-only only on a limit order that may rest, no FOK on a stop, no GTD on a market
    order, a price and a stop price only where the type takes them; and sometimes a market
    or stop order capped by a protection price, as the risk actor sets it.
    """
    kind = choose.pick(KINDS)
    has_limit = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    is_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
    tif = choose.pick(STOP_TIFS if is_stop else MARKET_TIFS if kind is OrderType.MARKET else TIFS)
    may_rest = kind is OrderType.LIMIT and tif in (TimeInForce.GTC, TimeInForce.GTD)
    quantity = choose.integer(1, MAX_QTY)
    display = choose.pick(DISPLAYS) if may_rest else 0
    return Submit(
        user=choose.pick(USER_PICKS),
        side=choose.pick(SIDES),
        type=kind,
        tif=tif,
        quantity=quantity,
        price=choose.integer(LOW, HIGH) if has_limit else 0,
        stop_price=choose.integer(LOW, HIGH) if is_stop else 0,
        post_only=choose.pick(POST_ONLY) if may_rest else False,
        stp=choose.pick(STPS),
        expire_in=choose.integer(0, 30) if tif is TimeInForce.GTD else None,
        client_id=choose.pick(CLIENT_IDS),
        duplicate=choose.pick(DUPLICATES),
        protection=0 if has_limit or not choose.pick(PROTECTED) else choose.integer(LOW, HIGH),
        display=display if display < quantity else 0,
    )


# ---------------------------------------------------------------------- strategies


@st.composite
def commands(draw: st.DrawFn) -> Command:
    return make_command(Drawn(draw))


def flatten(chunks: list[list[Command]]) -> list[Command]:
    return [command for chunk in chunks for command in chunk]


# A list of short lists: one flat list would average about six commands.
streams = st.lists(st.lists(commands(), min_size=1, max_size=12), min_size=1, max_size=12).map(
    flatten
)
instruments = st.sampled_from(INSTRUMENTS)


# ---------------------------------------------------------------------- the harness


@dataclass
class Step:
    """One command as it ran: its result on the matcher and, if run, on the reference."""

    command: Command
    result: list[Event] | Refusal
    outcome: str
    ref_outcome: str | None
    ref_trades: list[RefTrade]

    @property
    def events(self) -> list[Event]:
        return [] if isinstance(self.result, Refusal) else self.result


@dataclass
class Harness:
    """Drives a matcher (and optionally the reference) with resolved commands."""

    instrument: Instrument
    with_reference: bool = False
    matcher: Matcher = field(init=False)
    reference: ReferenceBook = field(init=False)
    events: list[Event] = field(default_factory=list)
    specs: dict[OrderId, OrderSpec] = field(default_factory=dict)
    """The spec of every accepted order, by id."""
    used_ids: list[OrderId] = field(default_factory=list)
    clock: int = 0
    next_id: int = 1
    next_list_id: int = 1
    pairs: list[tuple[OrderId, OrderId]] = field(default_factory=list)
    """The legs of every OCO pair placed."""

    def __post_init__(self) -> None:
        self.matcher = Matcher(self.instrument)
        self.reference = ReferenceBook(self.instrument)

    def run(self, command: Command) -> Step:
        self.clock += 1
        ts = self.clock
        matcher = self.matcher
        reference = self.reference if self.with_reference else None
        trades_before = len(self.reference.trades)
        ref_outcome: str | None = None
        result: list[Event] | Refusal
        match command:
            case Submit():
                spec = self._spec(command, ts)
                result = matcher.submit(spec, ts)
                first = result[0]
                if isinstance(first, OrderAccepted):
                    self.specs[spec.order_id] = spec
                    outcome = ACCEPTED
                else:
                    assert isinstance(first, OrderRejected)
                    outcome = first.reason.value
                if reference is not None:
                    ref_outcome = reference.submit(spec, ts)
            case SubmitOco():
                legs = self._oco_specs(command, ts)
                placed = matcher.submit_list(self.next_list_id, ListType.OCO, legs, ts)
                if isinstance(placed, ListRefusal):
                    result, outcome = [], f"{placed.position}:{placed.reason.value}"
                else:
                    result, outcome = placed, ACCEPTED
                    self.next_list_id += 1
                    for leg in legs:
                        self.specs[leg.order_id] = leg
                    self.pairs.append((legs[0].order_id, legs[1].order_id))
                if reference is not None:
                    ref_outcome = reference.submit_oco(legs[0], legs[1], ts)
            case Cancel():
                order_id = self._target(command.target, command.live)
                user_id = self._who(order_id, command.who)
                result = matcher.cancel(order_id, ts, user_id=user_id)
                if reference is not None:
                    ref_outcome = reference.cancel(order_id, user_id)
                outcome = result.reason.value if isinstance(result, Refusal) else OK
            case Amend():
                order_id = self._target(command.target, command.live)
                user_id = self._who(order_id, command.who)
                price, quantity = command.price, self._new_quantity(order_id, command.change)
                result = matcher.amend(
                    order_id, ts, price=price, quantity=quantity, user_id=user_id
                )
                if reference is not None:
                    ref_outcome = reference.amend(
                        order_id, price=price, quantity=quantity, user_id=user_id
                    )
                outcome = result.reason.value if isinstance(result, Refusal) else OK
            case CancelAll():
                result = matcher.cancel_all(USERS[command.user], ts)
                if reference is not None:
                    reference.cancel_all(USERS[command.user])
                outcome = ref_outcome = OK
            case Expire():
                ahead = [
                    o.spec.expire_time
                    for o in matcher.orders.values()
                    if o.spec.expire_time is not None and o.spec.expire_time > self.clock
                ]
                if command.to_next_expiry and ahead:
                    self.clock = min(ahead)
                else:
                    self.clock += command.advance
                result = matcher.expire(self.clock)
                if reference is not None:
                    reference.expire(self.clock)
                outcome = ref_outcome = OK
            case SetReference():
                matcher.reference_price = command.price
                self.reference.reference_price = command.price
                result = []
                outcome = ref_outcome = OK
        self.events.extend([] if isinstance(result, Refusal) else result)
        return Step(command, result, outcome, ref_outcome, self.reference.trades[trades_before:])

    def _spec(self, command: Submit, ts: int) -> OrderSpec:
        live = sorted(self.matcher.orders)
        if command.duplicate is not None and live:
            order_id = live[command.duplicate % len(live)]
        else:
            order_id = OrderId(self.next_id)
            self.next_id += 1
            self.used_ids.append(order_id)
        spec = OrderSpec.create(
            order_id,
            USERS[command.user],
            command.side,
            command.type,
            command.quantity,
            price=command.price,
            stop_price=command.stop_price,
            time_in_force=command.tif,
            post_only=command.post_only,
            stp=command.stp,
            client_order_id=command.client_id,
            expire_time=None if command.expire_in is None else ts + command.expire_in,
            display_quantity=command.display,
        )
        # The risk actor caps a market or stop order this way; create refuses a client's price.
        return spec._replace(price=command.protection) if command.protection else spec

    def _oco_specs(self, command: SubmitOco, ts: int) -> list[OrderSpec]:
        ids = [OrderId(self.next_id), OrderId(self.next_id + 1)]
        self.next_id += 2
        self.used_ids.extend(ids)
        user = USERS[command.user]
        limit_leg = OrderSpec.create(
            ids[0], user, command.side, OrderType.LIMIT, command.quantity,
            price=command.price, stp=command.stp,
        )._replace(list_id=self.next_list_id)  # fmt: skip
        kind = OrderType.STOP_LIMIT if command.limit else OrderType.STOP
        stop_leg = OrderSpec.create(
            ids[1], user, command.side, kind, command.stop_quantity, price=command.limit,
            stop_price=command.stop_price, stp=command.stp,
        )._replace(list_id=self.next_list_id)  # fmt: skip
        return [limit_leg, stop_leg]

    def _target(self, index: int, live: bool) -> OrderId:
        pool = sorted(self.matcher.orders) if live and self.matcher.orders else self.used_ids
        return pool[index % len(pool)] if pool else OrderId(10**9)

    def _new_quantity(self, order_id: OrderId, change: int | None) -> int | None:
        if change is None:
            return None
        order = self.matcher.orders.get(order_id)
        return max(1, (order.quantity if order is not None else MAX_QTY // 2) + change)

    def _who(self, order_id: OrderId, who: int) -> UserId | None:
        spec = self.specs.get(order_id)
        owner = spec.user_id if spec is not None else USERS[0]
        if who == 0:
            return None
        if who == 1:
            return owner
        return USERS[(USERS.index(owner) + 1) % len(USERS)]


def trades_of(events: list[Event]) -> list[RefTrade]:
    return [
        RefTrade(
            e.maker_order_id,
            e.taker_order_id,
            e.maker_user_id,
            e.taker_user_id,
            e.aggressor,
            e.price,
            e.quantity,
            e.maker_fee,
            e.taker_fee,
        )
        for e in events
        if isinstance(e, Trade)
    ]


LiveState = dict[int, tuple[int, int, int, int, int, bool, bool, int]]


def live_state(matcher: Matcher) -> LiveState:
    return {
        order_id: (
            o.price,
            o.quantity,
            o.remaining,
            o.filled,
            o.cancelled,
            o.resting,
            o.status is OrderStatus.PENDING_TRIGGER,
            o.hidden,
        )
        for order_id, o in matcher.orders.items()
    }


def reference_live_state(reference: ReferenceBook) -> LiveState:
    return {
        order_id: (
            o.price, o.quantity, o.remaining, o.filled, o.cancelled, o.resting, o.pending,
            o.hidden,
        )
        for order_id, o in reference.orders.items()
    }  # fmt: skip


def drive(
    instrument: Instrument,
    commands: list[Command],
    check: Callable[[Harness, Step], None],
    *,
    with_reference: bool = False,
) -> Harness:
    """Run ``commands`` on a new harness, checking after each."""
    harness = Harness(instrument, with_reference=with_reference)
    run_checked(commands, harness.run, lambda step: check(harness, step))
    return harness


def run_checked(
    commands: Sequence[T], run: Callable[[T], Step], check: Callable[[Step], None]
) -> None:
    """``run`` each of ``commands`` and ``check`` its step; a failed check names the command."""
    for index, command in enumerate(commands):
        step = run(command)
        try:
            check(step)
        except AssertionError as exc:
            raise AssertionError(f"after command {index} {command!r}: {exc}") from exc


# ---------------------------------------------------------------------- properties


def limit(user: int, side: Side, quantity: int, price: int, stp: StpMode = StpMode.NONE) -> Submit:
    """A plain GTC limit order, for the explicit examples."""
    return Submit(
        user=user,
        side=side,
        type=OrderType.LIMIT,
        tif=TimeInForce.GTC,
        quantity=quantity,
        price=price,
        stop_price=0,
        post_only=False,
        stp=stp,
        expire_in=None,
        client_id=None,
        duplicate=None,
    )


# Streams that once broke the matcher, kept as explicit examples.
REQUEUED_AT_ITS_OWN_PRICE = [
    # The only order at 96 grows: it leaves its level and comes back to a new one at
    # 96 in the same command, which once gave two BookLevel events for 96 and broke replay.
    limit(0, Side.BUY, 1, 96),
    Amend(target=0, live=True, who=0, price=None, change=1),
]
AMEND_BELOW_DECREMENTED = [
    # Self-trade decrement takes 4 off the resting sell; an amend to a total of 3 would
    # leave -1 open, and was once accepted.
    limit(0, Side.SELL, 10, 100),
    limit(0, Side.BUY, 4, 100, StpMode.DECREMENT),
    Amend(target=0, live=True, who=0, price=None, change=-7),
]

PROPERTY_SETTINGS = settings(max_examples=250, deadline=None)


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
@example(instrument=INSTRUMENTS[0], commands=AMEND_BELOW_DECREMENTED)
def test_book_is_never_crossed_and_passes_its_check(
    instrument: Instrument, commands: list[Command]
) -> None:
    def check(harness: Harness, step: Step) -> None:
        book = harness.matcher.book
        assert not book.is_crossed(), harness.matcher.depth()
        book.check()

    drive(instrument, commands, check)


@dataclass
class Tally:
    """An order's quantities as its events tell them."""

    quantity: int
    filled: int = 0
    remaining: int = 0
    cancelled: int = 0


def tally_events(tallies: dict[OrderId, Tally], events: list[Event]) -> None:
    for event in events:
        match event:
            case OrderAccepted(spec=spec):
                tallies[spec.order_id] = Tally(spec.quantity, remaining=spec.quantity)
            case OrderFilled():
                t = tallies[event.order_id]
                t.filled += event.quantity
                assert event.filled == t.filled, event
                t.remaining = event.remaining
            case OrderCancelled() | OrderExpired():
                t = tallies[event.order_id]
                assert event.quantity == t.remaining, (event, t)
                assert event.filled == t.filled, (event, t)
                t.cancelled += event.quantity
                t.remaining = 0
            case OrderReduced():
                t = tallies[event.order_id]
                t.cancelled += event.quantity
                t.remaining -= event.quantity
                assert event.remaining == t.remaining, (event, t)
            case OrderAmended():
                t = tallies[event.order_id]
                t.quantity = event.quantity
                t.remaining = event.remaining
            case _:
                pass


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
@example(instrument=INSTRUMENTS[0], commands=AMEND_BELOW_DECREMENTED)
def test_filled_remaining_and_cancelled_add_up_to_quantity(
    instrument: Instrument, commands: list[Command]
) -> None:
    tallies: dict[OrderId, Tally] = {}

    def check(harness: Harness, step: Step) -> None:
        tally_events(tallies, step.events)
        live = harness.matcher.orders
        for order_id, t in tallies.items():
            assert t.filled + t.remaining + t.cancelled == t.quantity, (order_id, t)
            assert t.remaining >= 0, (order_id, t)
            order = live.get(order_id)
            if order is None:
                assert t.remaining == 0, (order_id, t)
                continue
            assert order.status.is_final is False, order
            assert (order.quantity, order.filled, order.remaining, order.cancelled) == (
                t.quantity,
                t.filled,
                t.remaining,
                t.cancelled,
            ), (order, t)
            assert order.remaining > 0, order

    drive(instrument, commands, check)


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
def test_bought_equals_sold_and_fees_follow_fee_for(
    instrument: Instrument, commands: list[Command]
) -> None:
    totals = {Side.BUY: 0, Side.SELL: 0, "traded": 0}
    trade_ids: list[int] = []

    def check(harness: Harness, step: Step) -> None:
        events = step.events
        for index, event in enumerate(events):
            if isinstance(event, OrderFilled):
                totals[harness.specs[event.order_id].side] += event.quantity
            if not isinstance(event, Trade):
                continue
            trade_ids.append(event.trade_id)
            totals["traded"] += event.quantity
            notional = instrument.notional(event.price, event.quantity)
            assert event.maker_fee == fee_for(notional, instrument.maker_fee_bps), event
            assert event.taker_fee == fee_for(notional, instrument.taker_fee_bps), event
            maker_side = harness.specs[event.maker_order_id].side
            taker_side = harness.specs[event.taker_order_id].side
            assert maker_side is not taker_side, event
            assert event.aggressor is taker_side, event
            maker_fill, taker_fill = events[index + 1], events[index + 2]
            for fill, order_id, liquidity, fee in (
                (maker_fill, event.maker_order_id, Liquidity.MAKER, event.maker_fee),
                (taker_fill, event.taker_order_id, Liquidity.TAKER, event.taker_fee),
            ):
                assert isinstance(fill, OrderFilled), fill
                assert (fill.order_id, fill.trade_id, fill.price, fill.quantity) == (
                    order_id,
                    event.trade_id,
                    event.price,
                    event.quantity,
                ), (event, fill)
                assert (fill.liquidity, fill.fee) == (liquidity, fee), (event, fill)
        assert totals[Side.BUY] == totals[Side.SELL] == totals["traded"], totals

    drive(instrument, commands, check)
    assert trade_ids == list(range(1, len(trade_ids) + 1))


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
def test_seq_increases_by_one_per_event(instrument: Instrument, commands: list[Command]) -> None:
    def check(harness: Harness, step: Step) -> None:
        assert [e.seq for e in harness.events] == list(range(1, len(harness.events) + 1))
        assert harness.matcher.seq == len(harness.events)
        if isinstance(step.result, Refusal) or isinstance(step.command, SetReference):
            return
        if isinstance(step.command, Submit):
            assert step.events, "a submit always emits an accepted or rejected event"

    drive(instrument, commands, check)


def replay(instrument: Instrument, events: list[Event]) -> Matcher:
    fresh = Matcher(instrument)
    for event in events:
        fresh.apply(event)
    return fresh


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
@example(instrument=INSTRUMENTS[0], commands=REQUEUED_AT_ITS_OWN_PRICE)
def test_replaying_the_events_rebuilds_the_same_state(
    instrument: Instrument, commands: list[Command]
) -> None:
    replica = Matcher(instrument)

    def check(harness: Harness, step: Step) -> None:
        for event in step.events:
            replica.apply(event)
        assert replica.state_hash() == harness.matcher.state_hash()
        assert replica.depth() == harness.matcher.depth()

    harness = drive(instrument, commands, check)
    assert replay(instrument, harness.events).state_hash() == harness.matcher.state_hash()


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
@example(instrument=INSTRUMENTS[0], commands=REQUEUED_AT_ITS_OWN_PRICE)
def test_book_level_events_rebuild_the_depth(
    instrument: Instrument, commands: list[Command]
) -> None:
    """Market data keeps an L2 copy from ``BookLevel`` alone: one per touched level per command."""
    levels: dict[tuple[Side, int], int] = {}

    def check(harness: Harness, step: Step) -> None:
        seen: set[tuple[Side, int]] = set()
        for event in step.events:
            if not isinstance(event, BookLevel):
                continue
            key = (event.side, event.price)
            assert key not in seen, f"two BookLevel events for {key} in one command"
            seen.add(key)
            assert event.quantity >= 0, event
            if event.quantity:
                levels[key] = event.quantity
            else:
                levels.pop(key, None)
        bids = sorted(((p, q) for (side, p), q in levels.items() if side is Side.BUY), reverse=True)
        asks = sorted((p, q) for (side, p), q in levels.items() if side is Side.SELL)
        assert (bids, asks) == harness.matcher.depth()

    drive(instrument, commands, check)


def compare_with_reference(harness: Harness, step: Step) -> None:
    assert step.outcome == step.ref_outcome
    assert trades_of(step.events) == step.ref_trades
    assert harness.matcher.depth() == harness.reference.depth()
    assert live_state(harness.matcher) == reference_live_state(harness.reference)


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
def test_both_legs_of_an_oco_never_trade(instrument: Instrument, commands: list[Command]) -> None:
    traded: set[OrderId] = set()

    def check(harness: Harness, step: Step) -> None:
        for event in step.events:
            if isinstance(event, Trade):
                traded.update((event.maker_order_id, event.taker_order_id))
        for first, second in harness.pairs:
            assert not (first in traded and second in traded), (first, second)

    drive(instrument, commands, check)


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
@example(instrument=INSTRUMENTS[0], commands=REQUEUED_AT_ITS_OWN_PRICE)
@example(instrument=INSTRUMENTS[0], commands=AMEND_BELOW_DECREMENTED)
def test_matcher_agrees_with_the_reference_book(
    instrument: Instrument, commands: list[Command]
) -> None:
    drive(instrument, commands, compare_with_reference, with_reference=True)


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
def test_fok_never_leaves_a_partial_fill(instrument: Instrument, commands: list[Command]) -> None:
    """An accepted FOK order is filled in full by its own command; a rejected one never trades."""
    tallies: dict[OrderId, Tally] = {}

    def check(harness: Harness, step: Step) -> None:
        tally_events(tallies, step.events)
        if not isinstance(step.command, Submit) or step.command.tif is not TimeInForce.FOK:
            return
        first = step.events[0]
        if isinstance(first, OrderAccepted):
            t = tallies[first.spec.order_id]
            assert t.filled == t.quantity, (first.spec, t)
            assert first.spec.order_id not in harness.matcher.orders
        else:
            assert not trades_of(step.events), step.events

    drive(instrument, commands, check)


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
def test_post_only_never_takes(instrument: Instrument, commands: list[Command]) -> None:
    def check(harness: Harness, step: Step) -> None:
        for event in step.events:
            if isinstance(event, Trade):
                taker = harness.specs[event.taker_order_id]
                assert not taker.post_only, (taker, event)

    drive(instrument, commands, check)


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams)
def test_only_gtc_and_gtd_limit_orders_rest(
    instrument: Instrument, commands: list[Command]
) -> None:
    def check(harness: Harness, step: Step) -> None:
        for order in harness.matcher.book.orders():
            assert order.spec.rests, order.spec
        for order in harness.matcher.orders.values():
            # Live means resting, or waiting for a trigger: never an IOC or market remainder.
            assert order.resting or order.status is OrderStatus.PENDING_TRIGGER, order

    drive(instrument, commands, check)


# ---------------------------------------------------------------------- the long run


@pytest.mark.parametrize("instrument", INSTRUMENTS, ids=lambda i: i.symbol)
def test_long_seeded_run_agrees_with_the_reference_book(instrument: Instrument) -> None:
    choose = Seeded(20240607)
    harness = Harness(instrument, with_reference=True)
    for index in range(20_000):
        command = make_command(choose)
        step = harness.run(command)
        assert step.outcome == step.ref_outcome, (index, command)
        assert trades_of(step.events) == step.ref_trades, (index, command)
        assert harness.matcher.depth() == harness.reference.depth(), (index, command)
        assert not harness.matcher.book.is_crossed(), (index, command)
        if index % 250 == 0:
            harness.matcher.book.check()
            assert live_state(harness.matcher) == reference_live_state(harness.reference)
    assert len(harness.reference.trades) > 2_000, "the stream should trade a lot"
    assert replay(instrument, harness.events).state_hash() == harness.matcher.state_hash()


@PROPERTY_SETTINGS
@given(instrument=instruments, commands=streams, cut=st.integers(min_value=0, max_value=200))
def test_a_pickled_matcher_goes_on_exactly_as_the_original(
    instrument: Instrument, commands: list[Command], cut: int
) -> None:
    """Engine snapshots pickle matchers: the copy must answer every later command the same."""
    cut = min(cut, len(commands))
    harness = drive(instrument, commands[:cut], lambda harness, step: None)
    twin = copy.deepcopy(harness)
    twin.matcher = pickle.loads(pickle.dumps(harness.matcher, protocol=pickle.HIGHEST_PROTOCOL))
    assert twin.matcher.state_hash() == harness.matcher.state_hash()
    assert twin.matcher.depth() == harness.matcher.depth()
    for command in commands[cut:]:
        step, twin_step = harness.run(command), twin.run(command)
        assert twin_step.result == step.result
        assert twin.matcher.state_hash() == harness.matcher.state_hash()
    assert live_state(twin.matcher) == live_state(harness.matcher)
