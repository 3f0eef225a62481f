"""Snapshots: a snapshot plus the events after it rebuild exactly what a full replay does."""

from __future__ import annotations

import enum
from collections import deque
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio

from tests.actors import workload
from tests.actors.helpers import BTC, ETH, buy, open_market, place, quiesce, settle_everything
from tests.actors.test_margin import (
    CONFIG as MARGIN_CONFIG,
)
from tests.actors.test_margin import (
    DAVE,
    ERIN,
    MAKER,
    RICH,
    SYMBOL,
    TAKER,
    audit_ok,
    drive_mark,
    margin_market,
    trade,
    wait_flat,
)
from trading_engine.actors.engine import (
    Actors,
    Engine,
    build_actors,
    open_engine,
    snapshot_journal,
    snapshot_version,
)
from trading_engine.actors.risk import RiskConfig
from trading_engine.config import EngineConfig
from trading_engine.errors import TradingEngineError
from trading_engine.storage.journal import InMemoryJournal, Journal

CONFIG = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)
WIRING = (trio.MemorySendChannel, trio.MemoryReceiveChannel, trio.Event, EngineConfig, RiskConfig)


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as nested builtins, by the pickle protocol (what a snapshot keeps), so that
    two states compare by content. Compiled core classes compare by identity otherwise."""
    assert depth < 100, "a cycle in the state"
    if value is None or isinstance(value, str | bytes | int | float | Decimal | enum.Enum):
        return value
    if isinstance(value, dict):
        return ("dict", [(plain(k, depth + 1), plain(v, depth + 1)) for k, v in value.items()])
    if isinstance(value, list | deque) or type(value) is tuple:
        return (type(value).__name__, [plain(item, depth + 1) for item in value])
    if isinstance(value, set | frozenset):
        return ("set", sorted(repr(plain(item, depth + 1)) for item in value))
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, WIRING):
        return type(value).__name__  # made anew by every build: not state
    reduced = value.__reduce_ex__(5)
    return (type(value).__qualname__, [plain(part, depth + 1) for part in reduced[1:3]])


def difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two ``plain`` values first differ, or None."""
    if type(a) is not type(b):
        return f"{path}: {a!r:.200} != {b!r:.200}"
    if isinstance(a, tuple | list):
        if len(a) != len(b):
            keys = [x[0] if isinstance(x, tuple) else x for x in (a if len(a) > len(b) else b)]
            return f"{path}: lengths {len(a)} != {len(b)} ({keys!r:.300})"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            label = x[0] if isinstance(x, tuple) and x and isinstance(x[0], str) else i
            if (found := difference(x, y, f"{path}/{label}")) is not None:
                return found
        return None
    return None if a == b else f"{path}: {a!r:.200} != {b!r:.200}"


def assert_same_state(a: Actors, b: Actors) -> None:
    assert (found := difference(state(a), state(b))) is None, found


def state(actors: Actors) -> Any:
    supervisor = actors.supervisor
    symbols = {
        symbol: (handle.instrument, handle.halted, handle.recovered)
        for symbol, handle in supervisor.handles.items()
    }
    # Every attribute, not just those a snapshot keeps: what it leaves out must come
    # back the same by other means (a symbol's status, settings) or be empty.
    stateful = {name: vars(actor) for name, actor in actors.stateful().items()}
    return plain({"supervisor": (supervisor.seq, symbols), "actors": stateful})


async def replica(journal: Journal) -> InMemoryJournal:
    """The same events, commit for commit, without the snapshots."""
    copy = InMemoryJournal()
    for stream, event in await journal.read_all():
        await copy.append([(stream, [event])])
    return copy


async def check_snapshot_recovery(journal: InMemoryJournal, config: EngineConfig) -> None:
    """Recovering ``journal`` from its snapshot gives the state a full replay gives."""
    snapshot = await journal.load_snapshot(snapshot_version(config))
    assert snapshot is not None
    full = await build_actors(config, await replica(journal))
    from_snapshot = await build_actors(config, journal)
    assert full.recovered is not None
    assert from_snapshot.recovered is not None
    assert full.recovered.snapshot is None
    assert from_snapshot.recovered.snapshot == snapshot.position
    total = len(await journal.read_all())
    assert from_snapshot.recovered.replayed == total - snapshot.position > 0
    assert from_snapshot.recovered.events == full.recovered.events == total
    assert from_snapshot.recovered.tips == full.recovered.tips
    assert_same_state(from_snapshot, full)


async def run_again(engine: Engine, seed: int) -> None:
    """The workload once more: its seeding users' orders cancelled and their funds topped
    up first, so that they can pay for the seeding orders again."""
    for user in workload.USERS[:2]:
        await engine.cancel_all(user)
        for asset, amount in workload.START.items():
            assert isinstance(await engine.deposit(user, asset, amount), tuple)
    await workload.run_workload(engine, 10, seed=seed)


async def take_snapshot(journal: InMemoryJournal, config: EngineConfig) -> int:
    snapshot = await snapshot_journal(config, journal)
    await journal.save_snapshot(snapshot)
    return snapshot.position


async def test_a_snapshot_then_the_rest_of_the_journal_equals_a_full_replay() -> None:
    journal = InMemoryJournal()
    async with open_market(journal, CONFIG, workload.FUNDING) as engine:
        await workload.run_workload(engine, 12, seed=3)
        assert await engine.halt(BTC.symbol, "halted in the snapshot") is None
        position = await take_snapshot(journal, CONFIG)
        assert position == len(await journal.read_all())
        assert await engine.resume(BTC.symbol) is None
        await run_again(engine, seed=4)
        assert await engine.halt(ETH.symbol, "halted after it") is None
        await quiesce(engine)
    await check_snapshot_recovery(journal, CONFIG)


async def test_with_few_settled_trades_kept_a_snapshot_still_equals_a_full_replay() -> None:
    """``keep_settled=3``: settled records and posting ids are dropped as the trades
    settle, and every replay (full, or snapshot plus tail) ends with the same ledger
    as one that keeps everything: nothing posted twice, nothing left out."""
    config = attrs.evolve(CONFIG, keep_settled=3)
    journal = InMemoryJournal()
    async with open_market(journal, config, workload.FUNDING) as engine:
        await workload.run_workload(engine, 12, seed=3)
        assert (await settle_everything(engine, journal))["settled"]
        await take_snapshot(journal, config)
        await run_again(engine, seed=4)
        assert (await settle_everything(engine, journal))["already_settled"]
        await quiesce(engine)
    await check_snapshot_recovery(journal, config)
    bounded = (await build_actors(config, await replica(journal))).settlement
    full = (await build_actors(CONFIG, await replica(journal))).settlement
    assert bounded.ledger.balances() == full.ledger.balances()
    assert set(bounded.ledger.totals_by_asset().values()) == {0}
    assert bounded.trades == full.trades == len(full.records) > 10
    assert len(bounded.records) == 3
    assert all(record.status == "settled" for record in full.records.values())


async def test_a_margin_book_restored_from_a_snapshot_liquidates_as_replay_would() -> None:
    journal = InMemoryJournal()
    funding = {DAVE: 120_000_000, ERIN: RICH, MAKER: RICH, TAKER: RICH}
    async with margin_market(journal, funding) as engine:
        await trade(engine, ERIN, DAVE, 100, 100_000)
        await place(engine, buy(ERIN, 200, 91_000, SYMBOL))
        await place(engine, buy(DAVE, 1, 90_500, SYMBOL))
        await quiesce(engine)
        await take_snapshot(journal, MARGIN_CONFIG)
        await drive_mark(engine, 91_500, 92_736)
        await wait_flat(engine, DAVE)
        await quiesce(engine)
    await check_snapshot_recovery(journal, MARGIN_CONFIG)
    await audit_ok(journal)


async def traded(ops_per_task: int, seed: int) -> InMemoryJournal:
    """The journal of a new market after the workload ran once."""
    journal = InMemoryJournal()
    async with open_market(journal, CONFIG, workload.FUNDING) as engine:
        await workload.run_workload(engine, ops_per_task, seed=seed)
    return journal


async def test_the_engine_starts_from_a_snapshot_and_keeps_trading() -> None:
    journal = await traded(8, seed=5)
    await take_snapshot(journal, CONFIG)
    async with open_engine(CONFIG, await replica(journal)) as engine:
        replayed = await engine.orderbook(BTC.symbol, 50)
    async with open_engine(CONFIG, journal) as engine:
        assert engine.recovered is not None
        assert engine.recovered.snapshot is not None
        assert await engine.orderbook(BTC.symbol, 50) == replayed
        await run_again(engine, seed=6)
        await quiesce(engine)
    await audit_ok(journal)


async def test_a_snapshot_of_other_margin_rates_or_another_history_is_not_used() -> None:
    journal = await traded(4, seed=8)
    await take_snapshot(journal, CONFIG)
    stricter = EngineConfig(settlement_interval=3600.0, margin_requirement=Decimal("0.2"))
    actors = await build_actors(stricter, journal)
    assert actors.recovered is not None
    assert actors.recovered.snapshot is None

    other = await traded(4, seed=9)  # another history: the same streams, other events
    snapshot = await journal.load_snapshot(snapshot_version(CONFIG))
    assert snapshot is not None
    with pytest.raises(TradingEngineError, match="tips"):
        await other.save_snapshot(snapshot)
    assert await other.load_snapshot(snapshot_version(CONFIG)) is None
