"""Property tests of reduce-only orders: generated command streams on margin symbols.

The streams of ``test_matcher_properties`` (three users, nine levels, every
order type, amends, cancels, expiries), where some submits are reduce-only.
Positions are followed here from the trades alone, and checked against the
matcher's; no fill of a reduce-only order may grow or reverse its user's
position; every live reduce-only order stays within the position; FOK stays
all or nothing; and replay (and a pickled copy) rebuilds the same state.
"""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass
from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from trading_engine.core.enums import OrderStatus, Side, TimeInForce
from trading_engine.core.events import OrderAccepted, OrderFilled, Trade
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.orders import OrderSpec

from .test_matcher_properties import (
    PROPERTY_SETTINGS,
    Command,
    Harness,
    Seeded,
    Step,
    Submit,
    Tally,
    commands,
    make_command,
    replay,
    run_checked,
    tally_events,
)

MARGIN_INSTRUMENTS = (
    Instrument.create(
        "BTC_USD", "BTC", "USD", "0.01", "1", quote_decimals=2, maker_fee_bps=-3,
        taker_fee_bps=7, mode="margin",
    ),
    Instrument.create(
        "ETH_USD", "ETH", "USD", "0.01", "0.001", price_band_pct="2", maker_fee_bps=2,
        taker_fee_bps=10, mode="margin",
    ),
)  # fmt: skip


class ReduceOnly(NamedTuple):
    """A submit whose order is reduce-only."""

    submit: Submit


MarginCommand = Command | ReduceOnly


@st.composite
def margin_commands(draw: st.DrawFn) -> MarginCommand:
    command = draw(commands())
    if isinstance(command, Submit) and draw(st.booleans()):
        return ReduceOnly(command)
    return command


def margin_streams() -> st.SearchStrategy[list[MarginCommand]]:
    chunks = st.lists(margin_commands(), min_size=1, max_size=12)
    return st.lists(chunks, min_size=1, max_size=12).map(lambda cs: [c for s in cs for c in s])


@dataclass
class MarginHarness(Harness):
    """The harness, with reduce-only submits."""

    reduce_next: bool = False

    def run(self, command: MarginCommand) -> Step:
        if isinstance(command, ReduceOnly):
            self.reduce_next = True
            try:
                return super().run(command.submit)
            finally:
                self.reduce_next = False
        return super().run(command)

    def _spec(self, command: Submit, ts: int) -> OrderSpec:
        spec = super()._spec(command, ts)
        return spec._replace(reduce_only=True) if self.reduce_next else spec


def room(positions: dict[UserId, int], user: UserId, side: Side) -> int:
    position = positions.get(user, 0)
    return max(0, -position) if side is Side.BUY else max(0, position)


class Checker:
    """Follows positions from the events and checks every reduce-only rule after each step."""

    def __init__(self) -> None:
        self.positions: dict[UserId, int] = {}
        self.tallies: dict[OrderId, Tally] = {}

    def __call__(self, harness: MarginHarness, step: Step) -> None:
        matcher = harness.matcher
        events = step.events
        tally_events(self.tallies, events)
        for event in events:
            if isinstance(event, OrderAccepted) and event.spec.reduce_only:
                spec = event.spec
                assert 0 < spec.quantity <= room(self.positions, spec.user_id, spec.side), spec
            if not isinstance(event, Trade) or event.maker_user_id == event.taker_user_id:
                continue
            buyer, seller = (
                (event.taker_user_id, event.maker_user_id)
                if event.aggressor is Side.BUY
                else (event.maker_user_id, event.taker_user_id)
            )
            for order_id in (event.maker_order_id, event.taker_order_id):
                spec = harness.specs[order_id]
                if spec.reduce_only:
                    # A reduce-only fill only ever shrinks its user's position toward zero.
                    assert event.quantity <= room(self.positions, spec.user_id, spec.side), (
                        event,
                        self.positions,
                    )
            for user, delta in ((buyer, event.quantity), (seller, -event.quantity)):
                position = self.positions.get(user, 0) + delta
                if position:
                    self.positions[user] = position
                else:
                    self.positions.pop(user, None)
        assert matcher.positions == self.positions
        for order in matcher.orders.values():
            if order.spec.reduce_only:
                assert 0 < order.remaining <= room(self.positions, order.user_id, order.side), (
                    order,
                    self.positions,
                )
        if isinstance(step.command, ReduceOnly | Submit):
            submit = step.command.submit if isinstance(step.command, ReduceOnly) else step.command
            first = events[0] if events else None
            if submit.tif is TimeInForce.FOK and isinstance(first, OrderAccepted):
                fills = [e for e in events if isinstance(e, OrderFilled)]
                mine = [e for e in fills if e.order_id == first.spec.order_id]
                assert mine, events
                assert mine[-1].status is OrderStatus.FILLED, events
        assert not matcher.book.is_crossed()
        for order_id, tally in self.tallies.items():
            assert tally.filled + tally.remaining + tally.cancelled == tally.quantity, order_id


def drive_margin(instrument: Instrument, stream: list[MarginCommand]) -> MarginHarness:
    harness, checker = MarginHarness(instrument), Checker()
    run_checked(stream, harness.run, lambda step: checker(harness, step))
    return harness


@PROPERTY_SETTINGS
@given(instrument=st.sampled_from(MARGIN_INSTRUMENTS), stream=margin_streams())
def test_reduce_only_orders_never_grow_a_position_and_replay_rebuilds_the_state(
    instrument: Instrument, stream: list[MarginCommand]
) -> None:
    harness = drive_margin(instrument, stream)
    matcher = harness.matcher
    rebuilt = replay(instrument, harness.events)
    assert rebuilt.state_hash() == matcher.state_hash()
    assert rebuilt.positions == matcher.positions
    twin = pickle.loads(pickle.dumps(matcher, protocol=pickle.HIGHEST_PROTOCOL))
    assert twin.state_hash() == matcher.state_hash()


def test_a_long_seeded_margin_run_keeps_every_reduce_only_rule() -> None:
    choose = Seeded(20260101)
    flip = random.Random(7)
    for instrument in MARGIN_INSTRUMENTS:
        stream: list[MarginCommand] = []
        for _ in range(5_000):
            command: MarginCommand = make_command(choose)
            if isinstance(command, Submit) and flip.random() < 0.4:
                command = ReduceOnly(command)
            stream.append(command)
        harness = drive_margin(instrument, stream)
        reduced = [
            e
            for e in harness.events
            if isinstance(e, Trade)
            and (
                harness.specs[e.maker_order_id].reduce_only
                or harness.specs[e.taker_order_id].reduce_only
            )
        ]
        assert len(reduced) > 100, "the stream should trade reduce-only orders a lot"
        assert replay(instrument, harness.events).state_hash() == harness.matcher.state_hash()
