"""The algorithms' pure parts: the schedule, exact parsing, client order ids, state."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_engine.core.algos import (
    AlgoSliceDone,
    AlgoStarted,
    AlgoState,
    AlgoStatus,
    AlgoStatusChanged,
    AlgoType,
    algo_id_of,
    child_client_id,
    parse_duration_ns,
    parse_participation,
    slice_due,
    twap_target,
    vwap_quantity,
)
from trading_engine.core.enums import Side
from trading_engine.core.ids import Symbol, UserId
from trading_engine.errors import InvalidInput

ALICE, BTC = UserId("alice"), Symbol("BTC_AIT")


def started(quantity: int = 10, slices: int = 4, duration_ns: int = 60 * 10**9) -> AlgoStarted:
    return AlgoStarted(
        1, 5, 7, ALICE, BTC, AlgoType.TWAP, Side.BUY, quantity, slices, duration_ns, 0, 1, 1
    )


def test_twap_slices_are_equal_and_the_last_takes_the_remainder() -> None:
    targets = [twap_target(10, 4, k) for k in range(4)]
    assert targets == [2, 4, 6, 10]


@given(quantity=st.integers(1, 10**12), slices=st.integers(1, 10_000))
def test_twap_slices_sum_to_the_quantity_in_whole_lots_never_more(
    quantity: int, slices: int
) -> None:
    targets = [twap_target(quantity, slices, k) for k in range(slices)]
    sizes = [b - a for a, b in zip([0, *targets], targets, strict=False)]
    assert sum(sizes) == quantity
    assert all(size >= 0 for size in sizes)
    assert all(isinstance(size, int) for size in sizes)
    assert targets == sorted(targets)
    assert max(targets) == quantity


@given(
    quantity=st.integers(1, 10**9),
    slices=st.integers(1, 200),
    fills=st.lists(st.integers(0, 100), max_size=200),
)
def test_twap_children_never_add_up_to_more_than_the_quantity(
    quantity: int, slices: int, fills: list[int]
) -> None:
    """Whatever each child fills (at most what it asked), the children never ask more
    in all than the parent's quantity, nor does any ask for less than nothing."""
    state = AlgoState(started(quantity, slices))
    for k, percent in zip(range(slices), fills, strict=False):
        asked = state.twap_child(k)
        assert 0 <= asked <= state.remaining
        filled = asked * percent // 100
        state.apply(AlgoSliceDone(k + 2, 6, 7, ALICE, BTC, k, k, k + 1, asked, filled, 0, -1))
        assert 0 <= state.filled <= quantity


def test_slices_are_due_at_equal_intervals() -> None:
    start, duration = 1_000, 60 * 10**9
    assert [slice_due(start, duration, 4, k) for k in range(4)] == [
        1_000,
        1_000 + 15 * 10**9,
        1_000 + 30 * 10**9,
        1_000 + 45 * 10**9,
    ]


def test_vwap_takes_its_share_rounded_down_at_most_what_is_left() -> None:
    assert vwap_quantity(33, (1, 4), 100) == 8
    assert vwap_quantity(33, (1, 4), 5) == 5
    assert vwap_quantity(3, (1, 4), 5) == 0


@pytest.mark.parametrize(
    ("raw", "ns"),
    [("60", 60 * 10**9), (60, 60 * 10**9), ("0.5", 5 * 10**8), ("0.000000001", 1)],
)
def test_duration_is_parsed_exactly(raw: object, ns: int) -> None:
    assert parse_duration_ns(raw) == ns


@pytest.mark.parametrize("raw", ["0", 0, 1.5, True, "0.0000000001", "-1", "1e3", "400000000"])
def test_a_bad_duration_is_refused_naming_the_field(raw: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_duration_ns(raw)
    assert info.value.field == "duration_s"


def test_participation_is_an_exact_fraction_above_zero_and_at_most_one() -> None:
    assert parse_participation("0.1") == (1, 10)
    assert parse_participation("0.333") == (333, 1000)
    assert parse_participation(1) == (1, 1)
    assert parse_participation(Decimal("0.25")) == (1, 4)
    for bad in ("0", "1.01", 0.5, 2):
        with pytest.raises(InvalidInput):
            parse_participation(bad)


def test_a_child_client_order_id_names_its_algo() -> None:
    assert child_client_id(7, 3) == "algo-7-3"
    assert algo_id_of("algo-7-3") == 7
    for other in (None, "mine-1", "algo-x-1", "algo-7", "algo--1"):
        assert algo_id_of(other) is None


def test_state_follows_its_events_and_pickles_equal() -> None:
    state = AlgoState(started())
    state.apply(AlgoSliceDone(2, 6, 7, ALICE, BTC, 0, 0, 41, 2, 2, 200_000, -1))
    state.apply(AlgoSliceDone(3, 7, 7, ALICE, BTC, 1, -1, 0, 0, 0, 0, 12))
    state.apply(AlgoStatusChanged(4, 8, 7, ALICE, BTC, AlgoStatus.PAUSED, "symbol_halted"))
    view = state.view()
    assert view.children == (41,)
    assert (view.filled, view.notional, view.slices_done) == (2, 200_000, 2)
    assert (view.status, view.reason, view.updated_ts) == (AlgoStatus.PAUSED, "symbol_halted", 8)
    assert state.next_child == 1
    assert state.mark == 12
    assert pickle.loads(pickle.dumps(state)).view() == view
