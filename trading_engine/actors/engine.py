"""The engine: every actor in one nursery, and the façade the front end calls.

``open_engine(config, journal)`` recovers the state from the journal
(``actors/recovery.py``), starts the actors in a nursery the engine owns (a
crash of any process-level actor cancels the whole engine, loudly), and
yields an ``Engine`` (``actors/facade.py``).

Channels (who sends what to whom)::

    front end ──SubmitOrder/queries──> risk ──SymbolBatch──> symbol actors
    front end ──StartAlgo/StopAlgo──> algo supervisor ──(Engine façade)──> risk
    symbol actors, risk, supervisor, algo supervisor ──Commit──> journal
    journal ──CommittedBatch (after the write)──> risk, then the other actors
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from trading_engine.actors.facade import Engine
from trading_engine.actors.fanout import FanoutActor
from trading_engine.actors.recovery import (
    Actors,
    Recovered,
    build_actors,
    margin_rates,
    snapshot_journal,
    snapshot_version,
)
from trading_engine.config import EngineConfig
from trading_engine.storage.journal import Journal
from trading_engine.storage.publisher import Publisher

__all__ = [
    "Actors",
    "Engine",
    "Recovered",
    "build_actors",
    "margin_rates",
    "open_engine",
    "snapshot_journal",
    "snapshot_version",
]


@asynccontextmanager
async def open_engine(
    config: EngineConfig,
    journal: Journal,
    publisher: Publisher | None = None,
    *,
    clock: Callable[[], int] = time.time_ns,
) -> AsyncIterator[Engine]:
    """Recover from ``journal``, start every actor, and yield the engine; stop them on exit.

    With a ``publisher`` (Redis's, made by ``serve.py`` for ``REDIS_URL``) market
    data is also published through it, for other front-end processes. ``clock``
    is the wall clock of the algorithms' schedules (nanoseconds since the epoch).
    """
    fanout: FanoutActor | None = None
    outbox: trio.MemorySendChannel[tuple[str, str]] | None = None
    if publisher is not None:
        outbox, receive = trio.open_memory_channel[tuple[str, str]](_REDIS_OUTBOX)
        fanout = FanoutActor(publisher, receive)
    actors = await build_actors(config, journal, outbox, clock=clock)
    engine = Engine(
        config, actors.inboxes, actors.supervisor, actors.journal_actor,
        fanout=fanout, market_data=actors.market_data,
    )  # fmt: skip
    engine.recovered = actors.recovered
    async with _running(engine, actors, fanout):
        yield engine


_REDIS_OUTBOX = 100_000


@asynccontextmanager
async def _running(
    engine: Engine, actors: Actors, fanout: FanoutActor | None
) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        if fanout is not None:
            nursery.start_soon(fanout.run)
        nursery.start_soon(engine._deadlines.run)
        nursery.start_soon(actors.journal_actor.run)
        nursery.start_soon(actors.risk.run)
        nursery.start_soon(actors.pricing.run)
        nursery.start_soon(actors.settlement.run)
        nursery.start_soon(actors.market_data.run)
        await nursery.start(actors.supervisor.run)
        # Last: a resumed algorithm sends its children through every actor above.
        await nursery.start(actors.algos.run, engine)
        try:
            yield
        finally:
            nursery.cancel_scope.cancel()
