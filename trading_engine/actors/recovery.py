"""Building the actors and bringing them to the state of the journal.

``build_actors`` makes every actor, wired by channels, and recovers it: the
newest snapshot the journal agrees with, then the events after it in commit
order (``_replay``), then what every recovery ends with (``_finish``).
``snapshot_journal`` does the same beside a live engine, for ``trading-engine
snapshot``. Nothing here runs an actor: ``actors/engine.py`` does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs
import trio

from trading_engine.actors.algos import AlgoSupervisor
from trading_engine.actors.journal import JournalActor
from trading_engine.actors.marketdata import (
    MarketDataActor,
    MarketDataMessage,
)
from trading_engine.actors.messages import (
    AlgoMessage,
    Commit,
    Committed,
    CommittedBatch,
    PricingMessage,
    RiskMessage,
    SettlementMessage,
    SupervisorNotice,
    SymbolStatus,
)
from trading_engine.actors.pricing import PricingActor
from trading_engine.actors.risk import RiskActor
from trading_engine.actors.settlement import SettlementActor
from trading_engine.actors.snapshot import Stateful, restore, take, version_for
from trading_engine.actors.supervisor import Supervisor
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import ACCOUNTS_STREAM, LEDGER_STREAM, SYMBOLS_STREAM
from trading_engine.core.algos import ALGOS_STREAM
from trading_engine.core.ids import Symbol
from trading_engine.core.margin import MarginRates, rate_of
from trading_engine.runtime import gc_paused
from trading_engine.storage.journal import Journal, Snapshot

__all__ = [
    "Actors",
    "Inboxes",
    "Recovered",
    "build_actors",
    "margin_rates",
    "snapshot_journal",
    "snapshot_version",
]


@attrs.frozen
class Inboxes:
    risk: trio.MemorySendChannel[RiskMessage]
    pricing: trio.MemorySendChannel[PricingMessage]
    settlement: trio.MemorySendChannel[SettlementMessage]
    market_data: trio.MemorySendChannel[MarketDataMessage]
    algos: trio.MemorySendChannel[AlgoMessage]


@attrs.define
class Actors:
    """Every actor of an engine, built and recovered but not yet running."""

    inboxes: Inboxes
    journal_actor: JournalActor
    risk: RiskActor
    pricing: PricingActor
    settlement: SettlementActor
    market_data: MarketDataActor
    supervisor: Supervisor
    algos: AlgoSupervisor
    config: EngineConfig
    recovered: Recovered | None = None

    def stateful(self) -> dict[str, Stateful]:
        """The actors whose state a snapshot keeps, beside the supervisor's matchers."""
        return {
            "risk": self.risk,
            "pricing": self.pricing,
            "settlement": self.settlement,
            "market_data": self.market_data,
            "algos": self.algos,
        }


async def build_actors(
    config: EngineConfig,
    journal: Journal,
    redis: trio.MemorySendChannel[tuple[str, str]] | None = None,
    *,
    clock: Callable[[], int] = time.time_ns,
) -> Actors:
    """Make every actor and recover it from the journal; nothing runs yet.

    Recovery restores the newest snapshot the journal agrees with (if any),
    replays the events after it in commit order, then ends as every recovery
    does (``_finish``). ``redis``: where market data also goes, for the
    fan-out actor (REDIS_URL). ``clock``: the wall clock of the algorithms'
    schedules, in nanoseconds since the epoch (tests give a mock one).
    """
    actors = _make_actors(config, journal, redis, clock)
    with gc_paused():
        actors.recovered = await _replay(journal, actors)
        _finish(actors)
    return actors


async def snapshot_journal(config: EngineConfig, journal: Journal) -> Snapshot:
    """A snapshot of the state the journal holds now: the newest snapshot plus what follows.

    Runs beside a live engine (it only reads the journal) or with none;
    ``Journal.save_snapshot`` keeps it. ``trading-engine snapshot`` calls this.
    """
    actors = _make_actors(config, journal)
    with gc_paused():
        recovered = await _replay(journal, actors)
        return take(
            actors.supervisor,
            actors.stateful(),
            version=snapshot_version(actors.config),
            position=recovered.position,
            tips=recovered.tips,
            events=recovered.events,
        )


def margin_rates(config: EngineConfig) -> MarginRates:
    return MarginRates(
        rate_of(config.margin_requirement, field="MARGIN_REQUIREMENT"),
        rate_of(config.liquidation_threshold, field="LIQUIDATION_THRESHOLD"),
    )


def snapshot_version(config: EngineConfig) -> str:
    """The version of the snapshots an engine of this code and ``config`` reads."""
    return version_for(margin_rates(config))


def _make_actors(
    config: EngineConfig,
    journal: Journal,
    redis: trio.MemorySendChannel[tuple[str, str]] | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> Actors:
    risk_send, risk_receive = trio.open_memory_channel[RiskMessage](math.inf)
    pricing_send, pricing_receive = trio.open_memory_channel[PricingMessage](math.inf)
    settlement_send, settlement_receive = trio.open_memory_channel[SettlementMessage](math.inf)
    market_data_send, market_data_receive = trio.open_memory_channel[MarketDataMessage](math.inf)
    algos_send, algos_receive = trio.open_memory_channel[AlgoMessage](math.inf)
    inboxes = Inboxes(risk_send, pricing_send, settlement_send, market_data_send, algos_send)
    journal_send, journal_receive = trio.open_memory_channel[Commit](config.symbol_inbox_size)
    tracking_symbols: tuple[trio.MemorySendChannel[SymbolStatus], ...] = (
        risk_send,
        pricing_send,
        settlement_send,
        market_data_send,
    )

    def notify(message: SupervisorNotice) -> None:
        """Status from the supervisor: a symbol's status goes to all, the rest to risk."""
        if isinstance(message, SymbolStatus):
            for inbox in tracking_symbols:
                inbox.send_nowait(message)
        else:
            inboxes.risk.send_nowait(message)

    risk = RiskActor(
        risk_receive, journal_send, config.risk, margin_rates(config), itself=risk_send
    )
    pricing = PricingActor(
        pricing_receive,
        inboxes.risk.send_nowait,
        inboxes.market_data,
        ticker_interval=config.ticker_interval,
    )
    settlement = SettlementActor(
        settlement_receive,
        journal_send,
        interval=config.settlement_interval,
        keep_settled=config.keep_settled,
    )
    market_data = MarketDataActor(market_data_receive, redis)
    supervisor = Supervisor(
        journal,
        journal_send,
        notify,
        inbox_size=config.symbol_inbox_size,
        max_restarts=config.max_restarts,
        window=config.restart_window,
        expire_every=config.expire_every,
    )
    algos = AlgoSupervisor(
        algos_receive,
        journal_send,
        clock=clock,
        max_restarts=config.max_restarts,
        window=config.restart_window,
    )
    # Risk first: funds from a fill are there before anyone hears of the fill.
    downstream: list[trio.MemorySendChannel[CommittedBatch]] = [
        inboxes.risk,
        inboxes.settlement,
        inboxes.pricing,
        inboxes.market_data,
    ]
    journal_actor = JournalActor(journal, journal_receive, downstream, inboxes.risk)
    return Actors(
        inboxes, journal_actor, risk, pricing, settlement, market_data, supervisor, algos, config
    )


@attrs.frozen
class Recovered:
    """What a recovery replayed: up to which journal position, and how much."""

    position: int
    tips: dict[str, int]
    """Each stream's last seq replayed."""
    events: int
    """Every event the state holds: the snapshot's and those replayed after it."""
    replayed: int
    """Events read and applied after the snapshot (all of them without one)."""
    snapshot: int | None
    """The position of the snapshot recovery started from, if any."""


async def _replay(journal: Journal, actors: Actors) -> Recovered:
    """Bring the actors to the state of the journal: its newest snapshot, then the events after.

    Each symbol's matcher is rebuilt from the same read, for its first start
    (a restart after a crash reads its stream again). A listing comes before
    any event of its symbol in the log, so each actor learns of a symbol
    before it needs it.
    """
    supervisor = actors.supervisor
    snapshot = await journal.load_snapshot(snapshot_version(actors.config))
    tips: dict[str, int] = {}
    after = events = 0
    if snapshot is not None:
        restore(supervisor, actors.stateful(), snapshot)
        _announce(actors)
        tips, after, events = dict(snapshot.tips), snapshot.position, snapshot.events
    log, position = await journal.read_since(after)
    risk, settlement = actors.risk, actors.settlement
    market_data, pricing = actors.market_data, actors.pricing
    start = 0
    while start < len(log):
        stream = log[start][0]
        end = start
        while end < len(log) and log[end][0] == stream:
            end += 1
        batch = [event for _, event in log[start:end]]
        tips[stream] = batch[-1].seq
        if stream == SYMBOLS_STREAM:
            for event in batch:
                # The stream holds what the supervisor wrote (SymbolsStreamEvent) alone.
                supervisor.recover(event)  # type: ignore[arg-type]
            _announce(actors)
        elif stream == LEDGER_STREAM:
            settlement.apply(stream, batch)
        elif stream == ALGOS_STREAM:
            actors.algos.recover(batch)
        else:
            if stream != ACCOUNTS_STREAM:
                supervisor.recover_symbol(Symbol(stream), batch)
            risk.apply(stream, batch)
            settlement.apply(stream, batch)
            committed = CommittedBatch((Committed(stream, batch),))
            market_data.handle(committed)
            pricing.handle(committed, set())
        start = end
    return Recovered(
        position,
        tips,
        events + len(log),
        len(log),
        snapshot.position if snapshot is not None else None,
    )


def _announce(actors: Actors) -> None:
    """Tell the actors that keep state across symbols each symbol's status."""
    for symbol in actors.supervisor.handles:
        status = actors.supervisor.status(symbol)
        for actor in (actors.risk, actors.settlement, actors.market_data):
            actor.handle(status)
        actors.pricing.handle(status, set())


def _finish(actors: Actors) -> None:
    """End a recovery: recovered trades whose postings a crash lost are posted again
    (the ledger is rebuilt from the same journal), and each symbol's reference price
    goes to risk."""
    actors.settlement.settle(list(actors.settlement.pending))
    for symbol in actors.pricing.symbols:
        actors.pricing.publish_reference(symbol)
