"""``Leases``: a bucket's tokens taken ahead, never more than the bucket lets through."""

from __future__ import annotations

import hypothesis.strategies as st
import trio
from hypothesis import given, settings

from trading_engine.storage.limits import LEASE, LEASE_SECONDS, Leases, Limits, LocalLimiter


class _Counting(LocalLimiter):
    """In-process buckets that count the calls made to them and the tokens they gave."""

    def __init__(self, limits: Limits, clock: list[float]) -> None:
        super().__init__(limits, clock=lambda: clock[0])
        self.calls = 0
        self.given = 0

    async def take(self, key: str, cost: int = 1) -> float:
        self.calls += 1
        await trio.lowlevel.checkpoint()  # as a call to Redis would, let others run
        wait = self.take_now(key, cost)
        self.given += cost if wait == 0 else 0
        return wait


def _leases(rate: float, burst: int) -> tuple[Leases, _Counting, list[float]]:
    now = [100.0]
    behind = _Counting(Limits(rate=rate, burst=burst), now)
    return Leases(behind, clock=lambda: now[0]), behind, now


async def test_a_burst_is_let_through_exactly_with_a_call_per_lease() -> None:
    leases, behind, _ = _leases(rate=0.001, burst=100)
    waits = [await leases.take("k") for _ in range(101)]
    assert [w == 0 for w in waits] == [True] * 100 + [False]
    assert behind.calls < 20  # 1, 2, 4, 8, 16, 16 ... and the fallbacks near the end
    assert behind.given == 100


async def test_tokens_taken_ahead_lapse_and_the_next_lease_is_smaller() -> None:
    leases, behind, now = _leases(rate=1000.0, burst=1000)
    for _ in range(1 + 2 + 4):  # leases of 1, 2 and 4, each spent in time
        assert await leases.take("k") == 0
    assert await leases.take("k") == 0  # a lease of 8: 7 left
    now[0] += LEASE_SECONDS  # they lapse
    calls = behind.calls
    assert await leases.take("k") == 0
    assert behind.calls == calls + 1
    assert leases._leases["k"].size == 4
    assert leases._leases["k"].left == 3


async def test_a_batch_takes_straight_from_the_bucket() -> None:
    leases, behind, _ = _leases(rate=0.001, burst=10)
    assert await leases.take("k", 10) == 0
    assert await leases.take("k", 1) > 0
    assert (behind.calls, behind.given) == (2, 10)


async def test_takes_that_meet_on_their_way_keep_every_token_taken() -> None:
    """Two takes of one key miss at once: both leases are kept, none is lost."""
    leases, behind, _ = _leases(rate=0.001, burst=100)
    for _ in range(3):
        await leases.take("k")  # leases of 1 and 2: spent
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(leases.take, "k")
    spent = 3 + 2
    assert leases._leases["k"].left == behind.given - spent
    while await leases.take("k") == 0:
        spent += 1
    assert spent == behind.given == 100


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from([0.0, 0.001, 0.3, 1.5])), max_size=300
    ),
    burst=st.integers(1, 50),
)
def test_never_more_through_than_the_bucket_gives(
    steps: list[tuple[int, float]], burst: int
) -> None:
    """Whatever the pace and the keys: each key's takes let through are at most the tokens
    its bucket gave (every one the bucket gave is either spent or still leased), and a
    take is refused only when the bucket is out of tokens."""

    async def run() -> None:
        leases, behind, now = _leases(rate=2.0, burst=burst)
        through: dict[str, int] = {}
        for key_index, pause in steps:
            now[0] += pause
            key = f"k{key_index}"
            lease = leases._leases.get(key)
            spendable = lease.left if lease is not None and now[0] < lease.until else 0
            if await leases.take(key) == 0:
                through[key] = through.get(key, 0) + 1
            else:
                assert spendable == 0  # refused with tokens of its own still to spend
                assert behind.take_now(key, 1) > 0  # the bucket itself is empty
        leased = sum(lease.left for lease in leases._leases.values())
        assert sum(through.values()) + leased <= behind.given
        assert all(lease.size <= LEASE for lease in leases._leases.values())

    trio.run(run)
