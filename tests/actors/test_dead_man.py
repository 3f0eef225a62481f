"""The dead man's switch in the risk actor: disarmed only once its cancels are durable,
fired again when they got no answer, and rebuilt alike by replay and by snapshots."""

from __future__ import annotations

import pytest
import trio

from tests.actors.helpers import (
    ALICE,
    BOB,
    BTC_MID,
    CAROL,
    ETH,
    ETH_MID,
    buy,
    open_market,
    place,
)
from tests.actors.test_snapshot import check_snapshot_recovery, take_snapshot
from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import Switch
from trading_engine.actors.risk import switches
from trading_engine.benchmarks.switch import run_switch_bench
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import ACCOUNTS_STREAM, CancelAllAfterFired
from trading_engine.core.enums import CancelReason
from trading_engine.core.events import OrderCancelled
from trading_engine.core.ids import OrderId, UserId
from trading_engine.storage.journal import InMemoryJournal, StorageUnavailable

CONFIG = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)


async def arm(engine: Engine, user: UserId, timeout_ms: int) -> Switch:
    with trio.fail_after(5):
        switch = await engine.cancel_all_after(user, timeout_ms)
    assert isinstance(switch, Switch), switch
    return switch


async def resting(engine: Engine, user: UserId) -> set[OrderId]:
    """An order of ``user`` resting in each symbol."""
    placed = [
        await place(engine, buy(user, 10, BTC_MID - 100)),
        await place(engine, buy(user, 10, ETH_MID - 100, symbol=ETH.symbol)),
    ]
    return {outcome.order.order_id for outcome in placed}


async def open_orders(engine: Engine, user: UserId) -> set[OrderId]:
    return {view.order_id for view in await engine.user_orders(user, open_only=True)}


async def fired(journal: InMemoryJournal) -> list[tuple[str, int]]:
    events = await journal.read(ACCOUNTS_STREAM)
    return [(e.user_id, e.cancel_at) for e in events if isinstance(e, CancelAllAfterFired)]


async def wait_fired(journal: InMemoryJournal) -> list[tuple[str, int]]:
    """The firings once the journal has one: a switch is disarmed in memory, then
    ``CancelAllAfterFired`` goes to the journal with the next group commit."""
    with trio.fail_after(5):
        while not (events := await fired(journal)):
            await trio.sleep(0.005)
    return events


async def wait_disarmed(engine: Engine, user: UserId) -> None:
    with trio.fail_after(5):
        while await engine.switch(user) is not None:
            await trio.sleep(0.005)


async def test_the_switch_is_disarmed_only_once_its_cancels_are_durable(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal, CONFIG) as engine:
        ids = await resting(engine, ALICE)
        switch = await arm(engine, ALICE, 100)
        journal.available = False
        await trio.sleep(0.4)  # past the deadline: the cancels wait for the journal
        with trio.fail_after(5), pytest.raises(StorageUnavailable):
            await engine.cancel_all_after(ALICE, 60_000)  # refused, as an order would be
        assert await open_orders(engine, ALICE) == ids
        assert await engine.switch(ALICE) == (switch.cancel_at, 100)
        assert await fired(journal) == []
        journal.available = True
        await wait_disarmed(engine, ALICE)
        assert await open_orders(engine, ALICE) == set()
        await engine.check_invariants()
        assert await wait_fired(journal) == [(ALICE, switch.cancel_at)]
    log = [event for _, event in await journal.read_all()]
    last_cancel = max(
        i for i, e in enumerate(log) if isinstance(e, OrderCancelled) and e.order_id in ids
    )
    assert all(
        e.reason is CancelReason.CANCEL_ALL_AFTER for e in log if isinstance(e, OrderCancelled)
    )
    assert last_cancel < next(i for i, e in enumerate(log) if isinstance(e, CancelAllAfterFired))


async def test_a_switch_whose_cancels_got_no_answer_is_fired_again(
    journal: InMemoryJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(switches, "_CANCEL_TIMEOUT", 0.1)
    monkeypatch.setattr(switches, "RETRY_NS", 50_000_000)
    async with open_market(journal, CONFIG) as engine:
        ids = await resting(engine, ALICE)
        switch = await arm(engine, ALICE, 50)
        journal.available = False
        await trio.sleep(0.6)  # several tries, each unanswered
        assert await engine.switch(ALICE) == (switch.cancel_at, 50)
        journal.available = True
        await wait_disarmed(engine, ALICE)
        assert await open_orders(engine, ALICE) == set()
        assert await wait_fired(journal) == [(ALICE, switch.cancel_at)]
        await engine.check_invariants()
    cancels = [e for _, e in await journal.read_all() if isinstance(e, OrderCancelled)]
    assert {e.order_id for e in cancels} == ids


async def test_replay_and_snapshots_rebuild_the_switches(journal: InMemoryJournal) -> None:
    async with open_market(journal, CONFIG) as engine:
        kept = await arm(engine, ALICE, 60_000)
        await arm(engine, CAROL, 60_000)
        await take_snapshot(journal, CONFIG)
        await arm(engine, CAROL, 0)
        await resting(engine, BOB)
        await arm(engine, BOB, 1)
        await wait_disarmed(engine, BOB)
        later = await arm(engine, BOB, 30_000)
    await check_snapshot_recovery(journal, CONFIG)
    async with open_engine(CONFIG, journal) as engine:
        with trio.fail_after(5):
            assert await engine.switch(ALICE) == (kept.cancel_at, 60_000)
            assert await engine.switch(CAROL) is None
            assert await engine.switch(BOB) == (later.cancel_at, 30_000)
            assert await open_orders(engine, BOB) == set()
    assert [user for user, _ in await fired(journal)] == [BOB]


def test_the_switch_benchmark_fires_every_switch_it_arms() -> None:
    result = run_switch_bench(users=2, seconds=0.2, rounds=1, journal="memory")
    assert result["rearms"] > 0
    assert result["fired"] == 10
    assert 0 <= result["fire_p50_ms"] <= result["fire_max_ms"]
