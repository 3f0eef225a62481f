"""The matcher's order lists: OCO pairs, OTO and OTOCO, their ends and their replay."""

from collections.abc import Sequence

import pytest

from tests.unit.test_matcher import (
    ALICE,
    BOB,
    BUY,
    CAROL,
    SELL,
    T,
    limit,
    of_type,
    ok,
    print_trade,
    replay,
    stop,
)
from tests.unit.test_matcher import (
    BTC as BTC_MATCHER,
)
from trading_engine.core.enums import (
    CancelReason,
    ListStatus,
    ListType,
    OrderStatus,
    RejectReason,
    TimeInForce,
)
from trading_engine.core.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderDeferred,
    OrderExpired,
    OrderFilled,
    OrderListPlaced,
    OrderListUpdated,
    OrderRejected,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import OrderId
from trading_engine.core.lists import ListRefusal, check_list
from trading_engine.core.matcher import Matcher
from trading_engine.core.orders import OrderSpec
from trading_engine.errors import InvalidInput

OCO, OTO, OTOCO = ListType.OCO, ListType.OTO, ListType.OTOCO


@pytest.fixture
def m() -> Matcher:
    matcher = Matcher(BTC_MATCHER)
    print_trade(matcher, 10_000, first_id=1)  # the last trade price: 10_000
    return matcher


def member(spec: OrderSpec, list_id: int) -> OrderSpec:
    return spec._replace(list_id=list_id)


def submit_list(
    m: Matcher, list_id: int, kind: ListType, *specs: OrderSpec, history: list[Event]
) -> list[Event]:
    members = [member(spec, list_id) for spec in specs]
    check_list(kind, members)
    events = ok(m.submit_list(list_id, kind, members, T))  # type: ignore[arg-type]
    history.extend(events)
    return events


def place_oco(m: Matcher, history: list[Event]) -> list[Event]:
    """Alice's OCO (list 1): a limit sell of 5 at 10_500 (id 10), a sell stop at 9_500 (11)."""
    legs = limit(10, ALICE, SELL, 5, 10_500), stop(11, ALICE, SELL, 5, 9_500)
    return submit_list(m, 1, OCO, *legs, history=history)


def place_otoco(m: Matcher, history: list[Event], stop_price: int = 9_500) -> list[Event]:
    """Alice's OTOCO (list 1): a limit buy of 4 at 9_900 (id 10), then a limit sell at
    10_500 (11) and a sell stop at ``stop_price`` (12)."""
    orders = (
        limit(10, ALICE, BUY, 4, 9_900),
        limit(11, ALICE, SELL, 4, 10_500),
        stop(12, ALICE, SELL, 4, stop_price),
    )
    return submit_list(m, 1, OTOCO, *orders, history=history)


def run(m: Matcher, spec: OrderSpec, history: list[Event], ts: int = T) -> list[Event]:
    events = m.submit(spec, ts)
    history.extend(events)
    return events


def status_of(events: Sequence[Event], list_id: int) -> ListStatus | None:
    updates = [e for e in of_type(events, OrderListUpdated) if e.list_id == list_id]
    return updates[-1].status if updates else None


def assert_replays(m: Matcher, history: list[Event], before: list[Event]) -> None:
    assert replay([*before, *history]).state_hash() == m.state_hash()


@pytest.fixture
def before(m: Matcher) -> list[Event]:
    """The events that made ``m``'s last trade (replayed before each test's own)."""
    rebuilt = Matcher(BTC_MATCHER)
    events: list[Event] = []
    events += rebuilt.submit(limit(1, BOB, SELL, 1, 10_000), T)
    events += rebuilt.submit(limit(2, CAROL, BUY, 1, 10_000), T)
    assert rebuilt.state_hash() == m.state_hash()
    return events


# ---------------------------------------------------------------------------- oco


def test_oco_limit_leg_trading_cancels_the_stop_leg_before_its_trade(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    placed = submit_list(
        m, 1, OCO, limit(10, ALICE, SELL, 5, 10_500), stop(11, ALICE, SELL, 5, 9_500),
        history=history,
    )  # fmt: skip
    assert isinstance(placed[0], OrderListPlaced)
    assert [e.spec.order_id for e in of_type(placed, OrderAccepted)] == [10, 11]
    events = run(m, limit(20, BOB, BUY, 2, 10_500), history)
    cancelled = of_type(events, OrderCancelled)
    assert [(c.order_id, c.reason) for c in cancelled] == [(11, CancelReason.OCO)]
    first_trade = next(i for i, e in enumerate(events) if isinstance(e, Trade))
    assert events.index(cancelled[0]) < first_trade
    assert status_of(events, 1) is ListStatus.DONE
    # The stop leg is gone: a fall through 9_500 triggers nothing of Alice's.
    events = run(m, limit(21, CAROL, BUY, 1, 9_400), history)
    events += run(m, limit(22, BOB, SELL, 1, 9_400), history)
    assert not of_type(events, StopTriggered)
    # The limit leg goes on as an ordinary order.
    assert m.orders[OrderId(10)].remaining == 3
    assert m.orders[OrderId(10)].spec.list_id == 1
    assert_replays(m, history, before)


def test_oco_stop_leg_triggering_cancels_the_limit_leg_first(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    place_oco(m, history)
    run(m, limit(20, CAROL, BUY, 10, 9_500), history)
    events = run(m, limit(21, BOB, SELL, 1, 9_500), history)
    triggered = of_type(events, StopTriggered)
    assert [t.order_id for t in triggered] == [11]
    cancelled = of_type(events, OrderCancelled)
    assert [(c.order_id, c.reason) for c in cancelled] == [(10, CancelReason.OCO)]
    assert events.index(triggered[0]) < events.index(cancelled[0])
    fills = [f for f in of_type(events, OrderFilled) if f.order_id == 11]
    assert fills
    assert events.index(cancelled[0]) < events.index(fills[0])
    assert OrderId(10) not in m.orders
    assert m.book.asks.best() is None
    assert status_of(events, 1) is ListStatus.DONE
    assert_replays(m, history, before)


def test_oco_whose_limit_leg_would_trade_at_once_is_refused_changing_nothing(
    m: Matcher,
) -> None:
    run(m, limit(5, BOB, BUY, 1, 10_400), [])
    state, seq = m.state_hash(), m.seq
    legs = [
        member(limit(10, ALICE, SELL, 5, 10_400), 1),
        member(stop(11, ALICE, SELL, 5, 9_500), 1),
    ]
    assert m.submit_list(1, OCO, legs, T) == ListRefusal(0, RejectReason.POST_ONLY_WOULD_TAKE)
    legs[1] = member(stop(11, ALICE, SELL, 5, 10_000), 1)
    legs[0] = member(limit(10, ALICE, SELL, 5, 10_500), 1)
    refused = m.submit_list(1, OCO, legs, T)
    assert refused == ListRefusal(1, RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY)
    assert (m.state_hash(), m.seq, m.lists) == (state, seq, {})


def test_cancelling_an_oco_leg_cancels_the_other_and_the_list(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    place_oco(m, history)
    events = ok(m.cancel(OrderId(11), T))
    history += events
    assert [(c.order_id, c.reason) for c in of_type(events, OrderCancelled)] == [
        (11, CancelReason.USER),
        (10, CancelReason.ORDER_LIST),
    ]
    assert status_of(events, 1) is ListStatus.CANCELLED
    assert not m.orders.keys() & {10, 11}
    assert m.book.asks.best() is None
    assert_replays(m, history, before)


def test_cancel_all_of_a_user_with_a_list_cancels_each_order_once(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    place_oco(m, history)
    events = m.cancel_all(ALICE, T)
    history += events
    assert sorted(c.order_id for c in of_type(events, OrderCancelled)) == [10, 11]
    assert status_of(events, 1) is ListStatus.CANCELLED
    assert_replays(m, history, before)


def test_an_expired_leg_cuts_the_list(m: Matcher, before: list[Event]) -> None:
    history: list[Event] = []
    submit_list(
        m, 1, OCO,
        limit(10, ALICE, SELL, 5, 10_500, time_in_force=TimeInForce.GTD, expire_time=T + 5),
        stop(11, ALICE, SELL, 5, 9_500),
        history=history,
    )  # fmt: skip
    events = m.expire(T + 5)
    history += events
    assert [e.order_id for e in of_type(events, OrderExpired)] == [10]
    assert [(c.order_id, c.reason) for c in of_type(events, OrderCancelled)] == [
        (11, CancelReason.ORDER_LIST)
    ]
    assert status_of(events, 1) is ListStatus.CANCELLED
    assert_replays(m, history, before)


# ---------------------------------------------------------------------------- oto, otoco


def test_oto_places_the_pending_order_only_once_the_working_order_filled(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    placed = submit_list(
        m, 1, OTO, limit(10, ALICE, BUY, 4, 9_900), limit(11, ALICE, SELL, 4, 10_300),
        history=history,
    )  # fmt: skip
    assert [e.spec.order_id for e in of_type(placed, OrderDeferred)] == [11]
    assert OrderId(11) not in m.orders
    assert m.book.asks.best() is None
    events = run(m, limit(20, BOB, SELL, 3, 9_900), history)
    assert not of_type(events, OrderAccepted)[1:]  # the taker only
    events = run(m, limit(21, BOB, SELL, 1, 9_900), history)
    accepted = of_type(events, OrderAccepted)
    assert [e.spec.order_id for e in accepted] == [21, 11]
    last_fill = [f for f in of_type(events, OrderFilled) if f.order_id == 10][-1]
    assert last_fill.status is OrderStatus.FILLED
    assert events.index(last_fill) < events.index(accepted[1])
    assert status_of(events, 1) is ListStatus.DONE
    assert m.book.asks.best() == 10_300
    assert_replays(m, history, before)


def test_oto_working_order_filled_as_taker_places_the_pending_order_in_the_same_step(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    run(m, limit(5, BOB, SELL, 2, 10_000), history)
    events = submit_list(
        m, 1, OTO, limit(10, ALICE, BUY, 2, 10_000), stop(11, ALICE, SELL, 2, 9_000),
        history=history,
    )  # fmt: skip
    assert [e.spec.order_id for e in of_type(events, OrderAccepted)] == [10, 11]
    assert m.orders[OrderId(11)].status is OrderStatus.PENDING_TRIGGER
    assert status_of(events, 1) is ListStatus.DONE
    assert_replays(m, history, before)


def test_oto_working_order_cancelled_after_a_partial_fill_drops_the_pending_order(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    submit_list(
        m, 1, OTO, limit(10, ALICE, BUY, 4, 9_900), limit(11, ALICE, SELL, 4, 10_300),
        history=history,
    )  # fmt: skip
    run(m, limit(20, BOB, SELL, 1, 9_900), history)
    events = ok(m.cancel(OrderId(10), T))
    history += events
    assert status_of(events, 1) is ListStatus.CANCELLED
    assert not m.lists
    run(m, limit(21, BOB, SELL, 3, 9_900), history)  # nothing of the list is left to fill
    assert OrderId(11) not in m.orders
    assert_replays(m, history, before)


def test_a_deferred_member_or_a_filled_working_order_is_not_cancelled_as_an_order(
    m: Matcher,
) -> None:
    history: list[Event] = []
    place_otoco(m, history)
    state = m.state_hash()
    assert not isinstance(m.cancel(OrderId(11), T, user_id=ALICE), list)
    assert m.state_hash() == state
    run(m, limit(20, BOB, SELL, 4, 9_900), history)  # the working order fills
    state = m.state_hash()
    assert not isinstance(m.cancel(OrderId(10), T, user_id=ALICE), list)
    assert m.state_hash() == state
    assert set(m.lists) == {1}


def test_otoco_places_its_pair_once_filled_and_the_pair_works_as_an_oco(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    place_otoco(m, history)
    events = run(m, limit(20, BOB, SELL, 4, 9_900), history)
    assert [e.spec.order_id for e in of_type(events, OrderAccepted)] == [20, 11, 12]
    assert status_of(events, 1) is None  # open: the pair works
    assert m.lists[1].waiting == []
    events = run(m, limit(21, CAROL, BUY, 1, 10_500), history)
    assert [(c.order_id, c.reason) for c in of_type(events, OrderCancelled)] == [
        (12, CancelReason.OCO)
    ]
    assert status_of(events, 1) is ListStatus.DONE
    assert_replays(m, history, before)


def test_otoco_pair_that_cannot_be_placed_is_rejected_with_the_list(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    place_otoco(m, history, stop_price=9_800)
    # Bob's sell fills the working order at 9_900, then trades down to 9_700, below the
    # stop leg's 9_800: that leg would trigger at once when the pair's turn comes.
    run(m, limit(20, CAROL, BUY, 1, 9_700), history)
    events = run(m, limit(21, BOB, SELL, 5, 9_700), history)
    rejected = of_type(events, OrderRejected)
    assert [(r.spec.order_id, r.reason) for r in rejected] == [
        (11, RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY),
        (12, RejectReason.STOP_WOULD_TRIGGER_IMMEDIATELY),
    ]
    assert status_of(events, 1) is ListStatus.REJECTED
    assert not m.lists
    assert_replays(m, history, before)


def test_cancel_list_cancels_every_live_member_and_drops_the_deferred_ones(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    place_otoco(m, history)
    assert m.cancel_list(1, (OrderId(10),), BOB, T) is None  # not Bob's
    events = m.cancel_list(1, (OrderId(10), OrderId(11), OrderId(12)), ALICE, T)
    assert events is not None
    history += events
    assert [c.order_id for c in of_type(events, OrderCancelled)] == [10]
    assert status_of(events, 1) is ListStatus.CANCELLED
    assert m.cancel_list(1, (OrderId(10),), ALICE, T) is None  # nothing left
    assert_replays(m, history, before)


def test_cancel_list_after_it_is_done_cancels_its_open_members(
    m: Matcher, before: list[Event]
) -> None:
    history: list[Event] = []
    place_oco(m, history)
    run(m, limit(20, BOB, BUY, 1, 10_500), history)
    events = m.cancel_list(1, (OrderId(10), OrderId(11)), ALICE, T)
    assert events is not None
    history += events
    assert [(c.order_id, c.reason) for c in of_type(events, OrderCancelled)] == [
        (10, CancelReason.USER)
    ]
    assert_replays(m, history, before)


def test_list_members_cannot_be_amended(m: Matcher) -> None:
    m.submit_list(1, OCO, [
        member(limit(10, ALICE, SELL, 5, 10_500), 1), member(stop(11, ALICE, SELL, 5, 9_500), 1)
    ], T)  # fmt: skip
    refused = m.amend(OrderId(10), T, quantity=3)
    assert not isinstance(refused, list)


# ---------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("kind", "specs", "field"),
    [
        (OCO, [limit(1, ALICE, SELL, 1, 10_500)], "orders"),
        (OTOCO, [limit(1, ALICE, SELL, 1, 10_500), stop(2, ALICE, SELL, 1, 9_000)], "orders"),
        (OCO, [stop(1, ALICE, SELL, 1, 9_000), limit(2, ALICE, SELL, 1, 10_500)], "orders.0.type"),
        (
            OCO,
            [limit(1, ALICE, SELL, 1, 10_500), limit(2, ALICE, SELL, 1, 10_600)],
            "orders.1.type",
        ),
        (OCO, [limit(1, ALICE, SELL, 1, 10_500), stop(2, ALICE, BUY, 1, 9_000)], "orders.1.side"),
        (
            OCO,
            [
                limit(1, ALICE, SELL, 1, 10_500, time_in_force=TimeInForce.IOC),
                stop(2, ALICE, SELL, 1, 9_000),
            ],
            "orders.0.time_in_force",
        ),
    ],
)
def test_check_list_names_the_field_of_a_bad_list(
    kind: ListType, specs: list[OrderSpec], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_list(kind, specs)
    assert raised.value.field == field
