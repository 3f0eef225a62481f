"""The table of dead man's switches: arming, re-arming, what is due, firing and retries."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from trading_engine.core.dead_man import DeadManSwitches
from trading_engine.core.ids import UserId

ALICE, BOB, CAROL = UserId("alice"), UserId("bob"), UserId("carol")
S = 1_000_000_000


def test_an_empty_table_has_nothing_due() -> None:
    switches = DeadManSwitches()
    assert switches.next_due() is None
    assert switches.take_due(10**20) == []
    assert switches.get(ALICE) is None


def test_the_earliest_deadline_is_due_first_and_only_once() -> None:
    switches = DeadManSwitches()
    switches.arm(ALICE, 30 * S, 30_000)
    switches.arm(BOB, 10 * S, 10_000)
    switches.arm(CAROL, 20 * S, 20_000)
    assert switches.next_due() == 10 * S
    assert switches.take_due(10 * S - 1) == []
    assert switches.take_due(20 * S) == [(BOB, 10 * S), (CAROL, 20 * S)]
    # Taken, still armed (until their cancels are done), and not due again.
    assert switches.get(BOB) == (10 * S, 10_000)
    assert switches.next_due() == 30 * S
    assert switches.take_due(25 * S) == []


def test_re_arming_pushes_the_deadline_out() -> None:
    switches = DeadManSwitches()
    switches.arm(ALICE, 10 * S, 10_000)
    switches.arm(ALICE, 15 * S, 10_000)
    assert switches.get(ALICE) == (15 * S, 10_000)
    assert switches.next_due() == 15 * S
    assert switches.take_due(12 * S) == []
    assert switches.take_due(15 * S) == [(ALICE, 15 * S)]


def test_re_arming_may_also_pull_the_deadline_in() -> None:
    switches = DeadManSwitches()
    switches.arm(ALICE, 60 * S, 60_000)
    switches.arm(ALICE, 5 * S, 5_000)
    assert switches.next_due() == 5 * S
    assert switches.take_due(60 * S) == [(ALICE, 5 * S)]


def test_disarming_leaves_nothing_due() -> None:
    switches = DeadManSwitches()
    switches.arm(ALICE, 10 * S, 10_000)
    assert switches.disarm(ALICE)
    assert not switches.disarm(ALICE)
    assert switches.get(ALICE) is None
    assert switches.next_due() is None
    assert switches.take_due(20 * S) == []


def test_a_fired_switch_ends_only_if_not_armed_again_meanwhile() -> None:
    switches = DeadManSwitches()
    switches.arm(ALICE, 10 * S, 10_000)
    switches.arm(BOB, 10 * S, 10_000)
    assert switches.take_due(10 * S) == [(ALICE, 10 * S), (BOB, 10 * S)]
    switches.arm(BOB, 40 * S, 30_000)  # while its cancels were under way
    assert switches.disarm(ALICE, 10 * S)
    assert not switches.disarm(BOB, 10 * S)
    assert switches.get(ALICE) is None
    assert switches.get(BOB) == (40 * S, 30_000)
    assert switches.next_due() == 40 * S


def test_a_retry_makes_a_taken_switch_due_again_unless_it_changed() -> None:
    switches = DeadManSwitches()
    switches.arm(ALICE, 10 * S, 10_000)
    switches.arm(BOB, 10 * S, 10_000)
    switches.take_due(10 * S)
    switches.retry(ALICE, 10 * S, 11 * S)
    switches.disarm(BOB)
    switches.retry(BOB, 10 * S, 11 * S)
    assert switches.next_due() == 11 * S
    assert switches.take_due(11 * S) == [(ALICE, 10 * S)]


def test_re_arming_a_million_times_keeps_the_heap_small() -> None:
    switches = DeadManSwitches()
    users = [UserId(f"mm{i}") for i in range(100)]
    for step in range(10_000):
        for user in users:
            switches.arm(user, (step + 5) * S, 5_000)
    assert len(switches._heap) <= 2 * len(users) + 64
    assert switches.next_due() == (10_000 - 1 + 5) * S


def test_a_table_pickles_as_it_is() -> None:
    switches = DeadManSwitches()
    switches.arm(ALICE, 10 * S, 10_000)
    switches.arm(BOB, 20 * S, 20_000)
    switches.take_due(10 * S)
    copy = pickle.loads(pickle.dumps(switches))
    assert copy.armed == switches.armed
    assert copy.next_due() == 20 * S
    assert copy.take_due(30 * S) == [(BOB, 20 * S)]


_ops = st.lists(
    st.tuples(
        st.sampled_from(["arm", "disarm", "take"]),
        st.sampled_from([ALICE, BOB, CAROL]),
        st.integers(0, 50),
    ),
    max_size=60,
)


@given(_ops)
def test_what_is_due_is_what_a_plain_dict_says_is_due(ops: list[tuple[str, UserId, int]]) -> None:
    """Against a naive model: each armed switch not yet taken is due at its deadline."""
    switches = DeadManSwitches()
    model: dict[UserId, int] = {}  # armed and not yet taken
    armed: dict[UserId, int] = {}
    for op, user, t in ops:
        if op == "arm":
            switches.arm(user, t, 1)
            model[user] = armed[user] = t
        elif op == "disarm":
            assert switches.disarm(user) == (user in armed)
            model.pop(user, None)
            armed.pop(user, None)
        else:
            due = sorted((d, u) for u, d in model.items() if d <= t)
            assert switches.take_due(t) == [(u, d) for d, u in due]
            for _, u in due:
                del model[u]
        assert switches.next_due() == min(model.values(), default=None)
        assert {u: d for u, (d, _) in switches.armed.items()} == armed
