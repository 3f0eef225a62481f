"""Algorithms as actors: schedule, crash and resume, halts, funds, stops (mock clock)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import trio
import trio.testing

from tests.actors.helpers import (
    ALICE,
    BOB,
    BTC,
    BTC_MID,
    CAROL,
    FUNDING,
    buy,
    open_market,
    place,
    sell,
)
from trading_engine.actors.algos import AlgoActor
from trading_engine.actors.algos.supervisor import AlgoSupervisor
from trading_engine.actors.engine import Engine, open_engine, snapshot_journal
from trading_engine.actors.mailbox import Reply
from trading_engine.actors.messages import AlgoRequest, Query, Refused
from trading_engine.config import EngineConfig
from trading_engine.core.algos import (
    AlgoStarted,
    AlgoStatus,
    AlgoType,
    AlgoView,
    child_client_id,
)
from trading_engine.core.enums import Side
from trading_engine.core.ids import UserId
from trading_engine.core.views import OrderView
from trading_engine.storage.journal import InMemoryJournal, Journal

EPOCH = 1_700_000_000 * 10**9
SECOND = 10**9
DAVE = UserId("dave")
T = TypeVar("T")


def mock_wall_clock() -> int:
    """Wall time that follows trio's (mock) clock, so that the schedule can be jumped."""
    return EPOCH + round(trio.current_time() * SECOND)


@asynccontextmanager
async def algo_market(
    journal: Journal, funding: dict[UserId, dict[str, int]] | None = None
) -> AsyncIterator[Engine]:
    """The actor tests' market on the mock clock, with bob asking 100 lots at the mid."""
    async with open_market(journal, funding=funding, clock=mock_wall_clock) as engine:
        await place(engine, sell(BOB, 100, BTC_MID))
        yield engine


def twap(
    user: UserId = ALICE, quantity: int = 10, slices: int = 4, seconds: int = 60, **kw: Any
) -> AlgoRequest:
    return AlgoRequest(
        user, BTC.symbol, AlgoType.TWAP, Side.BUY, quantity, slices, seconds * SECOND,
        limit_price=BTC_MID, **kw,
    )  # fmt: skip


async def start(engine: Engine, request: AlgoRequest) -> AlgoView:
    with trio.fail_after(5):
        view = await engine.start_algo(request)
    assert isinstance(view, AlgoView), view
    return view


async def algo(engine: Engine, algo_id: int) -> AlgoView:
    view = await engine.algo(algo_id)
    assert view is not None
    return view


async def children(engine: Engine, view: AlgoView) -> list[OrderView]:
    found = [await engine.order(order_id) for order_id in view.children]
    assert all(child is not None for child in found)
    return [child for child in found if child is not None]


async def algo_orders(engine: Engine, user: UserId = ALICE) -> list[OrderView]:
    """Every order of ``user`` placed by an algorithm (client order id ``algo-...``)."""
    orders = await engine.user_orders(user, limit=1000)
    return [o for o in orders if (o.client_order_id or "").startswith("algo-")]


async def test_twap_sends_equal_slices_at_equal_intervals_the_last_taking_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with algo_market(InMemoryJournal()) as engine:
        t0 = trio.current_time()
        view = await start(engine, twap(quantity=10, slices=4, seconds=60))
        assert view.status is AlgoStatus.RUNNING
        for k in range(4):  # due at 0, 15, 30 and 45 s
            await trio.sleep_until(t0 + 15 * k + 1)
            assert len((await algo(engine, view.algo_id)).children) == k + 1
            await trio.sleep_until(t0 + 15 * k + 14)
            assert len((await algo(engine, view.algo_id)).children) == k + 1
        done = await algo(engine, view.algo_id)
        sent = await children(engine, done)
        assert [child.quantity for child in sent] == [2, 2, 2, 4]
        assert [child.client_order_id for child in sent] == [
            child_client_id(view.algo_id, n) for n in range(4)
        ]
        assert done.status is AlgoStatus.COMPLETED
        assert done.filled == 10
        assert done.notional == 10 * BTC_MID
        await engine.check_invariants()


async def test_a_crash_between_sending_a_child_and_journaling_it_sends_no_slice_twice(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = AlgoActor._done
    crashed: list[int] = []

    async def crash_once(self: AlgoActor, k: int, child: int, *args: Any) -> None:
        if child == 1 and not crashed:
            crashed.append(child)
            raise RuntimeError("crash after sending child 1, before journaling it")
        await done(self, k, child, *args)

    monkeypatch.setattr(AlgoActor, "_done", crash_once)
    async with algo_market(InMemoryJournal()) as engine:
        view = await start(engine, twap(quantity=10, slices=4, seconds=60))
        await trio.sleep(61)
        assert crashed == [1]
        finished = await algo(engine, view.algo_id)
        assert finished.status is AlgoStatus.COMPLETED
        orders = await algo_orders(engine)
        assert len(orders) == 4
        assert sorted(o.order_id for o in orders) == sorted(finished.children)
        assert sum(o.filled for o in orders) == finished.filled == 10
        _, asks = (await engine.book(BTC.symbol))[1:]
        assert asks == [(BTC_MID, 90)]  # bob sold exactly 10 lots, not 12
        await engine.check_invariants()


async def test_a_halted_symbol_pauses_the_algo_until_it_resumes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with algo_market(InMemoryJournal()) as engine:
        t0 = trio.current_time()
        view = await start(engine, twap(quantity=10, slices=4, seconds=60))
        await trio.sleep_until(t0 + 5)
        assert await engine.halt(BTC.symbol) is None
        await trio.sleep_until(t0 + 40)
        paused = await algo(engine, view.algo_id)
        assert paused.status is AlgoStatus.PAUSED
        assert len(paused.children) == 1
        assert await engine.resume(BTC.symbol) is None
        await trio.sleep_until(t0 + 42)
        caught_up = await algo(engine, view.algo_id)
        assert caught_up.status is AlgoStatus.RUNNING
        # The slices due while halted (at 15 and 30 s) are sent at once, in turn.
        assert [c.quantity for c in await children(engine, caught_up)] == [2, 2, 2]
        await trio.sleep_until(t0 + 61)
        finished = await algo(engine, view.algo_id)
        assert finished.status is AlgoStatus.COMPLETED
        assert finished.filled == 10
        await engine.check_invariants()


async def test_running_out_of_funds_ends_the_algo_with_the_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Enough AIT for the first slice (2 lots at 1,000 AIT and its fee), not the second.
    funding = {**FUNDING, DAVE: {"AIT": 3 * BTC_MID * 100}}
    async with algo_market(InMemoryJournal(), funding) as engine:
        view = await start(engine, twap(DAVE, quantity=10, slices=4, seconds=60))
        await trio.sleep(61)
        failed = await algo(engine, view.algo_id)
        assert failed.status is AlgoStatus.FAILED
        assert failed.reason == "insufficient_funds"
        assert failed.filled == 2
        assert len(failed.children) == 1
        assert (await engine.balances(DAVE))["AIT"][1] == 0  # the algo holds nothing
        await engine.check_invariants()


async def test_stop_cancels_the_algo_and_sends_nothing_more(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with algo_market(InMemoryJournal()) as engine:
        t0 = trio.current_time()
        view = await start(engine, twap(quantity=10, slices=4, seconds=60))
        await trio.sleep_until(t0 + 20)
        stopped = await engine.stop_algo(view.algo_id, ALICE)
        assert isinstance(stopped, AlgoView)
        assert stopped.status is AlgoStatus.CANCELLED
        assert len(stopped.children) == 2
        await trio.sleep_until(t0 + 120)
        assert (await algo(engine, view.algo_id)).children == stopped.children
        assert not [o for o in await algo_orders(engine) if not o.status.is_final]
        again = await engine.stop_algo(view.algo_id, ALICE)
        assert isinstance(again, Refused)
        assert again.code == "algo_not_running"
        assert await engine.stop_algo(view.algo_id, BOB) == Refused(
            "unknown_algo", f"no algo {view.algo_id}"
        )
        await engine.check_invariants()


async def test_a_stop_while_a_child_is_in_flight_answers_once_the_child_is_journaled(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = AlgoActor._done
    in_flight, release = trio.Event(), trio.Event()

    async def slow_journal(self: AlgoActor, k: int, child: int, *args: Any) -> None:
        if child == 1:
            in_flight.set()
            await release.wait()
        await done(self, k, child, *args)

    monkeypatch.setattr(AlgoActor, "_done", slow_journal)
    async with algo_market(InMemoryJournal()) as engine:
        view = await start(engine, twap(quantity=10, slices=4, seconds=60))
        await in_flight.wait()
        answers: list[AlgoView | Refused] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _stop_into(engine, view.algo_id, answers))
            await trio.sleep(5)
            assert answers == []  # not before child 1 is journaled
            release.set()
        [stopped] = answers
        assert isinstance(stopped, AlgoView)
        assert stopped.status is AlgoStatus.CANCELLED
        assert len(stopped.children) == 2
        assert [o.status.is_final for o in await algo_orders(engine)] == [True, True]
        await trio.sleep(60)
        assert (await algo(engine, view.algo_id)).children == stopped.children
        await engine.check_invariants()


async def _stop_into(engine: Engine, algo_id: int, answers: list[AlgoView | Refused]) -> None:
    answers.append(await engine.stop_algo(algo_id, None))


async def test_market_children_fill_within_the_price_band(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with algo_market(InMemoryJournal()) as engine:
        await place(engine, buy(BOB, 100, BTC_MID - 100))  # a mid, so a reference price
        request = AlgoRequest(
            ALICE, BTC.symbol, AlgoType.TWAP, Side.BUY, 6, 3, 30 * SECOND
        )  # fmt: skip
        view = await start(engine, request)
        await trio.sleep(31)
        finished = await algo(engine, view.algo_id)
        assert finished.status is AlgoStatus.COMPLETED
        sent = await children(engine, finished)
        assert [str(child.type) for child in sent] == ["market"] * 3
        assert all(child.protection_price > BTC_MID for child in sent)
        assert finished.notional == 6 * BTC_MID
        await engine.check_invariants()


async def test_a_client_may_not_send_an_algo_client_order_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with algo_market(InMemoryJournal()) as engine:
        with pytest.raises(Exception, match="reserved"):
            await engine.submit(sell(ALICE, 1, BTC_MID, client_order_id="algo-1-0"))


async def test_an_engine_restart_resumes_the_algo_where_it_was(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = InMemoryJournal()
    async with algo_market(journal) as engine:
        t0 = trio.current_time()
        view = await start(engine, twap(quantity=10, slices=4, seconds=60))
        await trio.sleep_until(t0 + 20)
    config = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)
    async with open_engine(config, journal, clock=mock_wall_clock) as engine:
        resumed = await algo(engine, view.algo_id)
        assert resumed.status is AlgoStatus.RUNNING
        assert len(resumed.children) == 2
        await trio.sleep_until(t0 + 61)
        finished = await algo(engine, view.algo_id)
        assert finished.status is AlgoStatus.COMPLETED
        assert [c.quantity for c in await children(engine, finished)] == [2, 2, 2, 4]
        assert len(await algo_orders(engine)) == 4
        await engine.check_invariants()


async def test_a_restart_from_a_snapshot_resumes_the_algo_the_snapshot_holds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = InMemoryJournal()
    config = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)
    async with algo_market(journal) as engine:
        t0 = trio.current_time()
        view = await start(engine, twap(quantity=10, slices=4, seconds=60))
        await trio.sleep_until(t0 + 20)
    await journal.save_snapshot(await snapshot_journal(config, journal))
    async with open_engine(config, journal, clock=mock_wall_clock) as engine:
        assert engine.recovered is not None
        assert engine.recovered.snapshot is not None
        assert engine.recovered.replayed == 0
        assert len((await algo(engine, view.algo_id)).children) == 2
        await trio.sleep_until(t0 + 61)
        finished = await algo(engine, view.algo_id)
        assert finished.status is AlgoStatus.COMPLETED
        assert len(await algo_orders(engine)) == 4
        await engine.check_invariants()


async def test_a_vwap_takes_its_share_of_what_others_traded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with algo_market(InMemoryJournal()) as engine:
        await place(engine, buy(BOB, 100, BTC_MID - 100))
        t0 = trio.current_time()
        request = AlgoRequest(
            ALICE, BTC.symbol, AlgoType.VWAP, Side.BUY, 50, 4, 40 * SECOND,
            limit_price=BTC_MID, participation=(1, 4),
        )  # fmt: skip
        view = await start(engine, request)
        await trio.sleep_until(t0 + 5)
        assert (await algo(engine, view.algo_id)).children == ()  # the first slice marks
        for _ in range(4):
            await place(engine, sell(CAROL, 8, BTC_MID - 100))
        await trio.sleep_until(t0 + 11)
        first = await algo(engine, view.algo_id)
        assert [c.quantity for c in await children(engine, first)] == [8]  # a quarter of 32
        await trio.sleep_until(t0 + 41)
        finished = await algo(engine, view.algo_id)
        assert finished.status is AlgoStatus.FAILED
        assert finished.reason == "schedule_ended"
        assert finished.filled == 8  # its own trades are not volume to follow
        await engine.check_invariants()


async def test_the_orders_channel_streams_the_algos_updates_to_its_owner(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with algo_market(InMemoryJournal()) as engine:
        alice_send, alice_feed = trio.open_memory_channel[str](1000)
        bob_send, bob_feed = trio.open_memory_channel[str](1000)
        assert await engine.subscribe("orders", alice_send, ALICE) is None
        assert await engine.subscribe("orders", bob_send, BOB) is None
        view = await start(engine, twap(quantity=4, slices=2, seconds=10))
        await trio.sleep(11)
        updates = [json.loads(text) for text in _drain(alice_feed)]
        algo_updates = [u for u in updates if u["type"] == "algo"]
        assert [u["event"] for u in algo_updates] == [
            "AlgoStarted", "AlgoSliceDone", "AlgoSliceDone", "AlgoStatusChanged",
        ]  # fmt: skip
        assert {u["algo_id"] for u in algo_updates} == {str(view.algo_id)}
        assert algo_updates[0]["quantity"] == "0.0004"
        assert algo_updates[1]["child_filled_quantity"] == "0.0002"
        assert algo_updates[1]["child_average_price"] == "1000"
        assert algo_updates[-1]["status"] == "completed"
        children = [u for u in updates if u["type"] == "order" and u["event"] == "OrderAccepted"]
        assert [c["client_order_id"] for c in children] == [
            child_client_id(view.algo_id, n) for n in range(2)
        ]
        assert {c["algo_id"] for c in children} == {str(view.algo_id)}
        assert not [u for u in map(json.loads, _drain(bob_feed)) if u["type"] == "algo"]


def _drain(feed: trio.MemoryReceiveChannel[str]) -> list[str]:
    out = []
    while True:
        try:
            out.append(feed.receive_nowait())
        except trio.WouldBlock:
            return out


@asynccontextmanager
async def answered_before_its_writer_ran() -> AsyncIterator[AlgoSupervisor]:
    """A supervisor serving its inbox, whose first event (alice's algorithm 1 started) the
    journal has answered while the task that wrote it has not run since: the market-data
    actor may publish the event in that gap. On leaving, the event is applied once."""
    inbox_send, inbox = trio.open_memory_channel[Any](10)
    journal_send, journal_inbox = trio.open_memory_channel[Any](10)
    supervisor = AlgoSupervisor(inbox, journal_send)

    def started(seq: int, ts: int) -> AlgoStarted:
        return AlgoStarted(
            seq, ts, 1, ALICE, BTC.symbol, AlgoType.TWAP, Side.BUY, 4, 2, 60 * SECOND, 0, 1, 10
        )

    async with open_market(InMemoryJournal()) as engine, trio.open_nursery() as nursery:
        await nursery.start(supervisor.run, engine)
        nursery.start_soon(supervisor.write, started)
        commit = await journal_inbox.receive()
        for reply, value in commit.replies:
            reply.send(value)  # as the journal answers: the writer has not run since
        yield supervisor
        inbox_send.close()
    assert supervisor.seq == 1
    assert [s.algo_id for s in supervisor.algos.values()] == [1]


def ask(supervisor: AlgoSupervisor, read: Callable[[AlgoSupervisor], T]) -> T:
    """``read`` as the supervisor answers a ``Query`` from its inbox, before any other
    task runs."""
    reply: Reply[T] = Reply()
    supervisor.handle(Query(read, reply))
    return reply.result()


async def test_a_snapshot_query_holds_an_event_the_journal_answered_before_its_writer_ran() -> None:
    """The ``orders`` snapshot's query applies an answered event, so it is not lost
    between the snapshot and the updates, and the writer does not apply it twice."""
    async with answered_before_its_writer_ran() as supervisor:
        seq, views = ask(supervisor, lambda s: s.query_live_algos(ALICE))
        assert (seq, [v.algo_id for v in views]) == (1, [1])
        assert ask(supervisor, lambda s: s.query_live_algos(BOB)) == (1, [])


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda s: [s.query_algo(1)], id="query_algo"),
        pytest.param(lambda s: s.query_user_algos(ALICE, 10), id="query_user_algos"),
    ],
)
async def test_a_read_of_algos_holds_an_event_the_journal_answered_before_its_writer_ran(
    read: Callable[[AlgoSupervisor], list[AlgoView | None]],
) -> None:
    """``GET /algos/{id}`` and ``GET /users/{id}/algos`` never show an algorithm older
    than an ``algo`` update the client may already have had on the ``orders`` channel."""
    async with answered_before_its_writer_ran() as supervisor:
        views = ask(supervisor, read)
        assert [v.algo_id for v in views if v is not None] == [1]
