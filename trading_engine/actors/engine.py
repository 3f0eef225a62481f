"""The engine: every actor in one nursery, and the small API the front end calls.

``open_engine(config, journal)`` recovers the state from the journal, starts
the actors in a nursery the engine owns (a crash of any process-level actor
cancels the whole engine, loudly), and yields an ``Engine``. Every method of
``Engine`` is a message to an actor and an awaited reply with a deadline;
nothing outside an actor touches its state. ``max_inflight`` bounds the
requests under way at once: more wait for a slot (backpressure at the edge).

Channels (who sends what to whom)::

    front end ──SubmitOrder/queries──> risk ──SymbolBatch──> symbol actors
    symbol actors, risk, supervisor ──Commit──> journal
    journal ──CommittedBatch (after the write)──> risk, then the other actors
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import attrs
import trio

from trading_engine.actors.answers import Alert, MarginReport, Ticker, TradeStatus
from trading_engine.actors.fanout import FanoutActor
from trading_engine.actors.journal import JournalActor, JournalStats
from trading_engine.actors.mailbox import ActorUnavailable, Deadlines, Reply
from trading_engine.actors.marketdata import (
    MarketDataActor,
    MarketDataMessage,
    Outbox,
    Subscribe,
    Unsubscribe,
)
from trading_engine.actors.messages import (
    AmendOrder,
    BookSnapshot,
    CancelAllOrders,
    CancelOrder,
    CheckOrder,
    Commit,
    Committed,
    CommittedBatch,
    CreateUser,
    MoveFunds,
    OrderRequest,
    OrderResult,
    PricingMessage,
    Query,
    Refused,
    RiskCheck,
    RiskMessage,
    SettlementMessage,
    SettleTrades,
    SubmitOrder,
    SubmitOutcome,
    SupervisorNotice,
    SymbolBatch,
    SymbolStatus,
)
from trading_engine.actors.pricing import PricingActor
from trading_engine.actors.risk import RiskActor
from trading_engine.actors.settlement import SettlementActor
from trading_engine.actors.snapshot import Stateful, restore, take, version_for
from trading_engine.actors.supervisor import Supervisor
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import ACCOUNTS_STREAM, LEDGER_STREAM, SYMBOLS_STREAM
from trading_engine.core.candles import Candle
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.margin import MarginRates, rate_of
from trading_engine.core.views import OrderView
from trading_engine.runtime import gc_paused
from trading_engine.storage.journal import Journal, Snapshot, StorageUnavailable
from trading_engine.storage.redis import Publisher

__all__ = ["Engine", "Recovered", "open_engine", "snapshot_journal", "snapshot_version"]

A = TypeVar("A")
T = TypeVar("T")
M = TypeVar("M")
P = ParamSpec("P")

_KEY_CACHE_SIZE = 100_000
"""API keys remembered by ``Engine.user_by_key``; past this the memory starts over."""


class Engine:
    """The front end's handle on the running engine."""

    def __init__(
        self,
        config: EngineConfig,
        inboxes: _Inboxes,
        supervisor: Supervisor,
        journal_actor: JournalActor,
    ) -> None:
        self.config = config
        self._inboxes = inboxes
        self._risk = inboxes.risk
        self._supervisor = supervisor
        self._journal_actor = journal_actor
        self._inflight = 0
        self._slots = trio.lowlevel.ParkingLot()
        self._deadlines = Deadlines(config.reply_timeout)
        self._users_by_key: dict[str, UserId] = {}
        self.recovered: Recovered | None = None
        """What the start replayed (from which snapshot, how many events)."""

    # ------------------------------------------------------------ plumbing

    async def _ask(self, make: Callable[[Reply[T]], M], inbox: trio.MemorySendChannel[M]) -> T:
        # A counter and a parking lot rather than a CapacityLimiter: the limiter
        # reschedules the task on every acquire, which is a whole extra trip
        # through the scheduler per request even when slots are free.
        while self._inflight >= self.config.max_inflight:
            await self._slots.park()
        self._inflight += 1
        try:
            reply: Reply[T] = Reply()
            try:
                inbox.send_nowait(make(reply))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise ActorUnavailable("the engine is not running") from None
            self._deadlines.watch(reply)
            return await reply.wait()
        finally:
            self._inflight -= 1
            if self._slots:
                self._slots.unpark()

    async def _read(
        self,
        inbox: trio.MemorySendChannel[Any],
        query: Callable[Concatenate[A, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Ask the actor behind ``inbox`` for ``query(actor, *args)``, one of its ``query_*``
        methods named on its class (``RiskActor.query_balances``): mypy checks the
        arguments and the answer's type, and the actor runs it against its own state."""
        return await self._ask(
            lambda reply: Query(lambda actor: query(actor, *args, **kwargs), reply), inbox
        )

    # ------------------------------------------------------------ orders

    async def submit(self, request: OrderRequest) -> SubmitOutcome:
        """Place an order; answers once its events are durable. Raises ``InvalidInput``."""
        return await self._ask(lambda reply: SubmitOrder(request, reply), self._risk)

    async def check(self, request: OrderRequest) -> RiskCheck:
        """Dry-run the pre-trade checks: every failing reason and the hold; changes nothing."""
        return await self._ask(lambda reply: CheckOrder(request, reply), self._risk)

    async def cancel(self, order_id: OrderId, user_id: UserId | None) -> OrderResult | Refused:
        return await self._ask(lambda reply: CancelOrder(order_id, user_id, reply), self._risk)

    async def amend(
        self,
        order_id: OrderId,
        user_id: UserId | None,
        *,
        price: int | None = None,
        quantity: int | None = None,
    ) -> OrderResult | Refused:
        return await self._ask(
            lambda reply: AmendOrder(order_id, user_id, price, quantity, reply), self._risk
        )

    async def cancel_all(self, user_id: UserId, symbol: Symbol | None = None) -> list[OrderView]:
        """Cancel the user's open orders in ``symbol``, or in every symbol."""
        symbols = [symbol] if symbol is not None else list(self.instruments())
        cancelled: list[OrderView] = []
        for each in symbols:
            cancelled.extend(
                await self._ask(
                    lambda reply, s=each: CancelAllOrders(user_id, s, reply),  # type: ignore[misc]
                    self._risk,
                )
            )
        return cancelled

    async def order(self, order_id: OrderId) -> OrderView | None:
        return await self._read(self._risk, RiskActor.query_order, order_id)

    async def user_orders(
        self, user_id: UserId, *, open_only: bool = False, limit: int = 100
    ) -> list[OrderView]:
        return await self._read(self._risk, RiskActor.query_user_orders, user_id, open_only, limit)

    async def open_orders(self, user_id: UserId) -> tuple[dict[Symbol, int], list[OrderView]]:
        """The user's open orders (oldest first) and, per symbol, the ``seq`` of the last
        event they include: the ``orders`` channel's snapshot."""
        return await self._read(self._risk, RiskActor.query_open_orders, user_id)

    async def user_trades(self, user_id: UserId, limit: int = 100) -> list[Trade]:
        return await self._read(self._risk, RiskActor.query_user_trades, user_id, limit)

    async def order_fills(
        self, user_id: UserId, order_ids: tuple[OrderId, ...]
    ) -> dict[OrderId, list[Trade]]:
        """The fills of ``user_id``'s orders ``order_ids`` among the user's newest (the risk
        actor keeps the last 1,000 of each user's fills), oldest first."""
        return await self._read(self._risk, RiskActor.query_order_fills, user_id, order_ids)

    # ------------------------------------------------------------ accounts

    async def create_user(
        self, user_id: UserId, api_key_hash: str, owner: str | None = None
    ) -> Refused | None:
        return await self._ask(
            lambda reply: CreateUser(user_id, owner, api_key_hash, reply), self._risk
        )

    async def deposit(self, user_id: UserId, asset: str, amount: int) -> tuple[int, int] | Refused:
        """Credit ``amount`` minor units; answers the new ``(available, held)`` once durable."""
        return await self._ask(
            lambda reply: MoveFunds(user_id, asset, amount, False, reply), self._risk
        )

    async def withdraw(self, user_id: UserId, asset: str, amount: int) -> tuple[int, int] | Refused:
        return await self._ask(
            lambda reply: MoveFunds(user_id, asset, amount, True, reply), self._risk
        )

    async def balances(self, user_id: UserId) -> dict[str, tuple[int, int]]:
        return await self._read(self._risk, RiskActor.query_balances, user_id)

    async def positions(self, user_id: UserId) -> dict[Symbol, int]:
        return await self._read(self._risk, RiskActor.query_positions, user_id)

    async def margin(self, user_id: UserId) -> MarginReport:
        """Margin mode: ``{"positions": {symbol: (qty, cost)}, "assets": {asset: profile}}``.

        A profile (quote minor units): ``collateral`` (available + margin held),
        ``equity`` (collateral + unrealized at the reference prices),
        ``maintenance``, ``requirement`` and ``margin_held``.
        """
        return await self._read(self._risk, RiskActor.query_margin, user_id)

    async def user_exists(self, user_id: UserId) -> bool:
        return await self._read(self._risk, RiskActor.query_user_exists, user_id)

    async def user_by_key(self, key_hash: str) -> UserId | None:
        """The user a hashed API key belongs to, or None.

        A key, once issued, names the same user for good (keys are neither revoked
        nor reassigned), so a hit is remembered and later requests skip the risk
        actor; an unknown key is asked again each time.
        """
        known = self._users_by_key.get(key_hash)
        if known is not None:
            return known
        result = await self._read(self._risk, RiskActor.query_key, key_hash)
        if result is not None:
            if len(self._users_by_key) >= _KEY_CACHE_SIZE:
                self._users_by_key.clear()
            self._users_by_key[key_hash] = result
        return result

    async def alerts(self, limit: int = 100) -> list[Alert]:
        return await self._read(self._risk, RiskActor.query_alerts, limit)

    async def self_trades_prevented(self) -> dict[UserId, int]:
        """Per user, how many times self-trade prevention stopped one of their orders."""
        return await self._read(self._risk, RiskActor.query_stp_counts)

    async def check_invariants(self, *, holds: bool = True) -> None:
        """Raise ``InvariantViolation`` if the risk actor's accounts are inconsistent or,
        with ``holds``, a user's held balance in an asset is not exactly what their open
        orders need (``core.holds``; a pass over every open order, several times the
        cost of the rest)."""
        await self._read(self._risk, RiskActor.query_check, holds)

    async def check_ready(self) -> None:
        """Raise unless the engine can take orders now: ``StorageUnavailable`` while the
        journal can't be reached or is retrying a write, ``InvariantViolation`` or the
        mailbox's errors if the risk actor does not answer soundly (its accounts are
        checked; the holds, order by order, are not: ``/ready`` is probed often)."""
        await self.check_invariants(holds=False)
        if not self._journal_actor.available:
            raise StorageUnavailable("storage is unavailable: the journal is retrying a write")
        await self.journal.ping()

    # ------------------------------------------------------------ symbols

    def instruments(self) -> dict[Symbol, Instrument]:
        """Every listed instrument (immutable values), halted ones included."""
        return {s: h.instrument for s, h in self._supervisor.handles.items()}

    def halted(self) -> dict[Symbol, str]:
        return {s: h.halted for s, h in self._supervisor.handles.items() if h.halted is not None}

    async def add_symbol(self, instrument: Instrument) -> Refused | None:
        """List a symbol; it trades at once."""
        return await self._supervisor.add(instrument)

    async def halt(self, symbol: Symbol, reason: str = "halted by admin") -> Refused | None:
        return await self._supervisor.halt(symbol, reason)

    async def resume(self, symbol: Symbol) -> Refused | None:
        return await self._supervisor.resume(symbol)

    async def book(
        self, symbol: Symbol, depth: int | None = None
    ) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """``(seq, bids, asks)`` from the symbol actor; levels are ``(price, quantity)``."""
        handle = self._supervisor.handles[symbol]
        reply: Reply[tuple[int, list[tuple[int, int]], list[tuple[int, int]]]] = Reply()
        await handle.send.send(SymbolBatch((BookSnapshot(depth, reply),)))
        return await reply.wait(self.config.reply_timeout)

    # ------------------------------------------------------------ market data and settlement

    async def orderbook(
        self, symbol: Symbol, depth: int | None = None
    ) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]] | None:
        """The durable L2 book: ``(seq, bids, asks)`` best first, or None for an unknown symbol."""
        return await self._read(
            self._inboxes.market_data, MarketDataActor.query_book, symbol, depth
        )

    async def trades(self, symbol: Symbol, limit: int = 100) -> list[Trade] | None:
        """The public tape, newest first."""
        return await self._read(
            self._inboxes.market_data, MarketDataActor.query_trades, symbol, limit
        )

    async def candles(self, symbol: Symbol, interval: str, limit: int = 100) -> list[Candle] | None:
        return await self._read(
            self._inboxes.market_data, MarketDataActor.query_candles, symbol, interval, limit
        )

    async def ticker(self, symbol: Symbol) -> Ticker | None:
        """Prices in ticks: last, best bid and ask, mid, mark, 24-hour statistics."""
        return await self._read(self._inboxes.pricing, PricingActor.query_ticker, symbol)

    async def subscribe(
        self, channel: str, outbox: Outbox, user_id: UserId | None = None
    ) -> Refused | None:
        """Send ``channel``'s snapshot, then its updates, to ``outbox`` (JSON text)."""
        return await self._ask(
            lambda reply: Subscribe(channel, outbox, user_id, reply), self._inboxes.market_data
        )

    async def unsubscribe(self, channel: str, outbox: Outbox) -> None:
        await self._ask(
            lambda reply: Unsubscribe(channel, outbox, reply), self._inboxes.market_data
        )

    async def subscribers(self) -> int:
        return await self._read(self._inboxes.market_data, MarketDataActor.query_subscribers)

    async def settlement(self, trade_id: str) -> TradeStatus | None:
        """A trade's settlement status (``pending``, ``settled`` or ``failed`` with the reason).

        The settlement actor keeps the details (price, quantity, buyer, seller, ts)
        of the last ``keep_settled`` settled trades; of an older one only its status
        is known here (the read tables know the rest).
        """
        return await self._read(self._inboxes.settlement, SettlementActor.query_status, trade_id)

    async def settle(
        self, trade_ids: list[str], party: UserId | None = None
    ) -> dict[str, list[str]]:
        """Settle these trades now: which settled, were already settled, failed, are unknown.

        With ``party``, only trades that user is a party to; the rest are unknown.
        """
        return await self._ask(
            lambda reply: SettleTrades(tuple(trade_ids), party, reply), self._inboxes.settlement
        )

    async def ledger_totals(self) -> dict[str, int]:
        """Per asset, the sum over every ledger account: all zeros, always."""
        return await self._read(self._inboxes.settlement, SettlementActor.query_totals)

    async def ledger_balance(self, user_id: UserId, asset: str) -> int:
        return await self._read(
            self._inboxes.settlement, SettlementActor.query_balance, user_id, asset
        )

    @property
    def journal_stats(self) -> JournalStats:
        return self._journal_actor.stats

    @property
    def journal(self) -> Journal:
        """The journal port the engine writes (for metrics: read-only use)."""
        return self._journal_actor.journal


@attrs.frozen
class _Inboxes:
    risk: trio.MemorySendChannel[RiskMessage]
    pricing: trio.MemorySendChannel[PricingMessage]
    settlement: trio.MemorySendChannel[SettlementMessage]
    market_data: trio.MemorySendChannel[MarketDataMessage]


@attrs.define
class Actors:
    """Every actor of an engine, built and recovered but not yet running."""

    inboxes: _Inboxes
    journal_actor: JournalActor
    risk: RiskActor
    pricing: PricingActor
    settlement: SettlementActor
    market_data: MarketDataActor
    supervisor: Supervisor
    config: EngineConfig
    recovered: Recovered | None = None

    def stateful(self) -> dict[str, Stateful]:
        """The actors whose state a snapshot keeps, beside the supervisor's matchers."""
        return {
            "risk": self.risk,
            "pricing": self.pricing,
            "settlement": self.settlement,
            "market_data": self.market_data,
        }


async def build_actors(
    config: EngineConfig,
    journal: Journal,
    redis: trio.MemorySendChannel[tuple[str, str]] | None = None,
) -> Actors:
    """Make every actor and recover it from the journal; nothing runs yet.

    Recovery restores the newest snapshot the journal agrees with (if any),
    replays the events after it in commit order, then ends as every recovery
    does (``_finish``). ``redis``: where market data also goes, for the
    fan-out actor (REDIS_URL).
    """
    actors = _make_actors(config, journal, redis)
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
) -> Actors:
    risk_send, risk_receive = trio.open_memory_channel[RiskMessage](math.inf)
    pricing_send, pricing_receive = trio.open_memory_channel[PricingMessage](math.inf)
    settlement_send, settlement_receive = trio.open_memory_channel[SettlementMessage](math.inf)
    market_data_send, market_data_receive = trio.open_memory_channel[MarketDataMessage](math.inf)
    inboxes = _Inboxes(risk_send, pricing_send, settlement_send, market_data_send)
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

    risk = RiskActor(risk_receive, journal_send, config.risk, margin_rates(config))
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
    # Risk first: funds from a fill are there before anyone hears of the fill.
    downstream: list[trio.MemorySendChannel[CommittedBatch]] = [
        inboxes.risk,
        inboxes.settlement,
        inboxes.pricing,
        inboxes.market_data,
    ]
    journal_actor = JournalActor(journal, journal_receive, downstream, inboxes.risk)
    return Actors(
        inboxes, journal_actor, risk, pricing, settlement, market_data, supervisor, config
    )


@asynccontextmanager
async def open_engine(
    config: EngineConfig, journal: Journal, publisher: Publisher | None = None
) -> AsyncIterator[Engine]:
    """Recover from ``journal``, start every actor, and yield the engine; stop them on exit.

    With a ``publisher`` (Redis's, made by ``serve.py`` for ``REDIS_URL``) market
    data is also published through it, for other front-end processes.
    """
    fanout: FanoutActor | None = None
    outbox: trio.MemorySendChannel[tuple[str, str]] | None = None
    if publisher is not None:
        outbox, receive = trio.open_memory_channel[tuple[str, str]](_REDIS_OUTBOX)
        fanout = FanoutActor(publisher, receive)
    actors = await build_actors(config, journal, outbox)
    engine = Engine(config, actors.inboxes, actors.supervisor, actors.journal_actor)
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
        try:
            yield
        finally:
            nursery.cancel_scope.cancel()


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
