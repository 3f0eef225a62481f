"""Property tests of triggered orders: stops, take-profits and trailing stops together.

Generated streams mix every triggered type (both sides, trailing stops by
price distance or basis points, with or without an activation price), resting
orders and takers that print trades through them, so that one taker's trades
fire several orders at once and those fire more (cascades). A stream is cut at
a generated point, as a crash would cut it, and the matcher is rebuilt there
from its journal (replay) and from a snapshot (pickle): every command after
the cut then gives the same events, triggers and stop moves included, as on
the matcher that never stopped.
"""

from __future__ import annotations

import pickle
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_matcher import BTC, replay
from trading_engine.core.enums import OrderType, Side, TimeInForce
from trading_engine.core.events import Event, OrderAccepted, StopMoved, StopTriggered, Trade
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.matcher import Matcher, Refusal
from trading_engine.core.orders import OrderSpec

USERS = tuple(UserId(name) for name in ("u0", "u1", "u2", "u3"))
MID, SPREAD = 10_000, 5
"""Prices in ticks: ``MID`` plus or minus ``SPREAD``, well inside the 5% band."""

TRIGGERED = (
    OrderType.STOP,
    OrderType.STOP_LIMIT,
    OrderType.TAKE_PROFIT,
    OrderType.TAKE_PROFIT_LIMIT,
    OrderType.TRAILING_STOP,
    OrderType.TRAILING_STOP_LIMIT,
)

TAKE_PROFITS = (OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT)


class Trigger(NamedTuple):
    """A triggered order: ``at`` is its stop price (a trailing stop's activation price, or
    none for a third of them), ``gap`` its limit's offset from the stop price and a trailing
    stop's distance in ticks (in half basis points if ``bps``)."""

    user: int
    side: Side
    kind: OrderType
    quantity: int
    at: int
    gap: int
    bps: bool


class Rest(NamedTuple):
    user: int
    side: Side
    quantity: int
    price: int


class Take(NamedTuple):
    """A limit IOC taker: it prints trades down (a sell) or up (a buy) to ``price``."""

    user: int
    side: Side
    quantity: int
    price: int


class Cancel(NamedTuple):
    target: int
    """Index into the orders live when it runs."""


Command = Trigger | Rest | Take | Cancel

sides = st.sampled_from((Side.BUY, Side.SELL))
users = st.integers(0, len(USERS) - 1)
prices = st.integers(MID - SPREAD, MID + SPREAD)
triggers = st.builds(
    Trigger,
    users,
    sides,
    st.sampled_from(TRIGGERED),
    st.integers(1, 6),
    prices,
    st.integers(1, 6),
    st.booleans(),
)
commands = st.one_of(
    triggers,
    triggers,
    *[st.builds(Rest, users, sides, st.integers(1, 8), prices)] * 3,
    st.builds(Take, users, sides, st.integers(1, 12), prices),
    st.builds(Take, users, sides, st.integers(1, 12), prices),
    st.builds(Cancel, st.integers(0, 30)),
)
# A list of short lists: one flat list would average about five commands.
streams = st.lists(st.lists(commands, min_size=1, max_size=12), min_size=1, max_size=8).map(
    lambda chunks: [command for chunk in chunks for command in chunk]
)


def spec_of(command: Command, order_id: int, m: Matcher) -> OrderSpec | None:
    """The order ``command`` submits (None for a cancel, or a trigger the spec refuses)."""
    oid = OrderId(order_id)
    match command:
        case Rest(user=user, side=side, quantity=quantity, price=price):
            return OrderSpec.create(oid, USERS[user], side, OrderType.LIMIT, quantity, price=price)
        case Take(user=user, side=side, quantity=quantity, price=price):
            if price % 2:  # half of them sweep the whole range
                price = MID + SPREAD if side is Side.BUY else MID - SPREAD
            return OrderSpec.create(
                oid, USERS[user], side, OrderType.LIMIT, quantity, price=price,
                time_in_force=TimeInForce.IOC,
            )  # fmt: skip
        case Trigger(user=user, side=side, kind=kind, quantity=quantity, at=at, gap=gap, bps=bps):
            towards = 1 if side is Side.BUY else -1  # a buy's limit is above its stop price
            if kind in (OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT):
                at = 0 if at % 3 == 0 else at  # a third armed at once, the rest on activation
                return OrderSpec.create(
                    oid, USERS[user], side, kind, quantity, activation_price=at,
                    trailing_bps=gap * 2 if bps else 0, trailing_delta=0 if bps else gap,
                    limit_offset=gap if kind is OrderType.TRAILING_STOP_LIMIT else 0,
                )  # fmt: skip
            limit = at + towards * gap
            with_limit = kind in (OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
            return OrderSpec.create(
                oid, USERS[user], side, kind, quantity, stop_price=at,
                price=limit if with_limit else 0,
            )  # fmt: skip
        case Cancel():
            return None


class Run:
    """A matcher driven by commands, numbering orders and keeping its journal."""

    def __init__(self, matcher: Matcher, next_id: int = 1, clock: int = 0) -> None:
        self.matcher = matcher
        self.next_id = next_id
        self.clock = clock
        self.journal: list[Event] = []

    def step(self, command: Command) -> list[Event] | Refusal:
        self.clock += 1
        m = self.matcher
        if isinstance(command, Cancel):
            live = sorted(m.orders)
            if not live:
                return []
            out = m.cancel(live[command.target % len(live)], self.clock)
        else:
            spec = spec_of(command, self.next_id, m)
            self.next_id += 1
            assert spec is not None
            out = m.submit(spec, self.clock)
        if isinstance(out, list):
            self.journal += out
        return out


def opening(m: Matcher) -> list[Event]:
    """A first trade at ``MID``, so that stops have a last price to arm against."""
    run = Run(m, next_id=1_000_000)
    run.step(Rest(0, Side.SELL, 1, MID))
    run.step(Take(1, Side.BUY, 1, MID))
    return run.journal


@settings(max_examples=150, deadline=None)
@given(streams, st.data())
def test_triggers_after_a_recovery_are_the_triggers_without_a_crash(
    stream: list[Command], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(stream)), label="cut")
    m = Matcher(BTC)
    journal = opening(m)
    run = Run(m)
    for command in stream[:cut]:
        run.step(command)
    journal += run.journal
    recovered = {
        "replayed": Run(replay(journal), run.next_id, run.clock),
        "pickled": Run(pickle.loads(pickle.dumps(m)), run.next_id, run.clock),
    }
    for other in recovered.values():
        assert other.matcher.state_hash() == m.state_hash()
    for command in stream[cut:]:
        expected = run.step(command)
        for how, other in recovered.items():
            assert other.step(command) == expected, (how, command)
    for other in recovered.values():
        assert other.matcher.state_hash() == m.state_hash()


@settings(max_examples=150, deadline=None)
@given(streams)
def test_trailing_stops_move_only_their_way_and_fire_where_a_trade_reached_them(
    stream: list[Command],
) -> None:
    """Each ``StopMoved`` moves a trailing stop the order's way (up for a sell, down for a
    buy), and every trigger is fired by a trade of the same command at or beyond its
    stop price as it was then (at or below for a sell stop or a buy take-profit), and
    names a price that command printed."""
    m = Matcher(BTC)
    opening(m)
    run = Run(m)
    stops: dict[OrderId, int] = {}
    specs: dict[OrderId, OrderSpec] = {}
    for command in stream:
        out = run.step(command)
        if not isinstance(out, list):
            continue
        printed: set[int] = set()
        for event in out:
            if isinstance(event, OrderAccepted):
                specs[event.spec.order_id] = event.spec
                if event.spec.stop_price:
                    stops[event.spec.order_id] = event.spec.stop_price
            elif isinstance(event, Trade):
                printed.add(event.price)
            elif isinstance(event, StopMoved):
                before = stops.get(event.order_id)
                if before is not None:
                    moved_up = event.stop_price > before
                    assert moved_up == (specs[event.order_id].side is Side.SELL), (before, event)
                stops[event.order_id] = event.stop_price
            elif isinstance(event, StopTriggered):
                spec, stop_price = specs[event.order_id], stops[event.order_id]
                # Its trigger price is the last price of the taker that crossed it, which
                # may have swept on past the stop (a sell taker that printed above a buy
                # stop, then below it); some trade of this command reached the stop.
                assert event.trigger_price in printed, (event, printed)
                falls = (spec.side is Side.SELL) == (spec.type not in TAKE_PROFITS)
                if falls:
                    assert min(printed) <= stop_price, (event, stop_price, printed)
                else:
                    assert max(printed) >= stop_price, (event, stop_price, printed)
