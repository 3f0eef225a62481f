"""``Engine``: the front end's typed handle on the running engine.

Every method of ``Engine`` is a message to an actor and an awaited reply with
a deadline; nothing outside an actor touches its state. ``max_inflight``
bounds the requests under way at once: more wait for a slot (backpressure at
the edge). Queries name the actor's ``query_*`` method (``Engine._read``),
so mypy checks every call and its answer. ``actors/engine.py`` builds and
runs the actors and hands out an ``Engine``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import trio

from trading_engine.actors.algos import AlgoSupervisor
from trading_engine.actors.answers import Alert, MarginReport, OrdersSnapshot, Ticker, TradeStatus
from trading_engine.actors.fanout import FanoutActor, Published
from trading_engine.actors.journal import JournalActor, JournalStats
from trading_engine.actors.mailbox import ActorUnavailable, Deadlines, Reply
from trading_engine.actors.marketdata import (
    MarketDataActor,
    Outbox,
    Subscribe,
    Unsubscribe,
)
from trading_engine.actors.messages import (
    AlgoRequest,
    AmendOrder,
    BookSnapshot,
    CancelAllAfter,
    CancelAllOrders,
    CancelList,
    CancelOrder,
    CheckOrder,
    CreateUser,
    ListCancelled,
    ListOutcome,
    ListRequest,
    MoveFunds,
    OrderRequest,
    OrderResult,
    Query,
    Refused,
    RiskCheck,
    RiskMessage,
    SetCredential,
    SettleTrades,
    StartAlgo,
    StopAlgo,
    SubmitList,
    SubmitOrder,
    SubmitOutcome,
    Switch,
    SymbolBatch,
)
from trading_engine.actors.pricing import PricingActor
from trading_engine.actors.recovery import Inboxes, Recovered
from trading_engine.actors.risk import RiskActor
from trading_engine.actors.settlement import SettlementActor
from trading_engine.actors.supervisor import Supervisor
from trading_engine.config import EngineConfig
from trading_engine.core.algos import AlgoView
from trading_engine.core.candles import Candle
from trading_engine.core.enums import ListStatus, OrderStatus
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.list_views import ListView
from trading_engine.core.views import OrderView
from trading_engine.storage.journal import Journal, StorageUnavailable

__all__ = ["Engine"]

A = TypeVar("A")
T = TypeVar("T")
M = TypeVar("M")
P = ParamSpec("P")

_KEY_CACHE_SIZE = 100_000
"""API keys remembered by ``Engine.user_by_key``; past this the memory starts over."""


class _Freeing(Reply[T]):
    """A reply that frees its request's slot when it is answered (or fails), whoever
    waits for it: the engine watches every reply's deadline, so each is answered."""

    __slots__ = ("_free",)

    def __init__(self, free: Callable[[int], None]) -> None:
        super().__init__()
        self._free = free

    def _wake(self) -> None:
        super()._wake()
        self._free(1)


class Engine:
    """The front end's handle on the running engine."""

    def __init__(
        self,
        config: EngineConfig,
        inboxes: Inboxes,
        supervisor: Supervisor,
        journal_actor: JournalActor,
        *,
        fanout: FanoutActor | None = None,
        market_data: MarketDataActor | None = None,
    ) -> None:
        self.config = config
        self._inboxes = inboxes
        self._risk = inboxes.risk
        self._supervisor = supervisor
        self._journal_actor = journal_actor
        self._fanout = fanout
        self._market_data = market_data
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
        await self._slot()
        return await self._answer_of(self._send(make, inbox))

    async def _slot(self) -> None:
        """Wait until fewer than ``max_inflight`` requests are under way."""
        while self._inflight >= self.config.max_inflight:
            await self._slots.park()

    def _send(
        self,
        make: Callable[[Reply[T]], M],
        inbox: trio.MemorySendChannel[M],
        reply: Reply[T] | None = None,
    ) -> Reply[T]:
        """Hand ``make(reply)`` to the actor behind ``inbox`` now; it counts as under way
        until ``_release``. Raises ``ActorUnavailable`` if the engine is not running."""
        if reply is None:
            reply = Reply()
        try:
            inbox.send_nowait(make(reply))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ActorUnavailable("the engine is not running") from None
        self._deadlines.watch(reply)
        self._inflight += 1
        return reply

    async def _answer_of(self, reply: Reply[T]) -> T:
        try:
            return await reply.wait()
        finally:
            self._release(1)

    def _release(self, count: int) -> None:
        self._inflight -= count
        if self._slots:
            self._slots.unpark(count=count)

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

    async def submit_many_soon(
        self, requests: Sequence[OrderRequest]
    ) -> list[Reply[SubmitOutcome]]:
        """Hand the orders to the risk actor in the order given, each as a slot is free;
        their replies, as ``submit_soon``'s. The batch is handed over whole: a caller
        cancelled meanwhile is so once the last order is handed over (slots free up as
        the engine answers, or its deadlines fail the replies)."""
        replies: list[Reply[SubmitOutcome]] = []
        with trio.CancelScope(shield=True):
            for request in requests:
                await self._slot()
                replies.append(self.submit_soon(request))
        return replies

    def submit_soon(self, request: OrderRequest) -> Reply[SubmitOutcome]:
        """Hand an order to the risk actor now, before the caller's next one; its reply
        (``await reply.wait()``) is its outcome as ``submit`` answers it. For a
        connection that pipelines its orders: sent in the order given, answered as each
        is durable. The reply may be waited for by several tasks, or by none: its slot
        is freed when it is answered. Raises ``ActorUnavailable`` if the engine is not
        running."""
        return self._soon(lambda reply: SubmitOrder(request, reply))

    def cancel_soon(
        self, order_id: OrderId, user_id: UserId | None
    ) -> Reply[OrderResult | Refused]:
        """``cancel``, handed over now; answered on its reply, as ``submit_soon``'s."""
        return self._soon(lambda reply: CancelOrder(order_id, user_id, reply))

    def amend_soon(
        self,
        order_id: OrderId,
        user_id: UserId | None,
        *,
        price: int | None = None,
        quantity: int | None = None,
    ) -> Reply[OrderResult | Refused]:
        """``amend``, handed over now; answered on its reply, as ``submit_soon``'s."""
        return self._soon(lambda reply: AmendOrder(order_id, user_id, price, quantity, reply))

    def cancel_all_soon(
        self, user_id: UserId, symbol: Symbol | None = None
    ) -> list[Reply[list[OrderView]]]:
        """``cancel_all``, handed over now: one reply per symbol, as ``submit_soon``'s."""
        symbols = [symbol] if symbol is not None else list(self.instruments())
        return [
            self._soon(lambda reply, s=each: CancelAllOrders(user_id, s, reply))  # type: ignore[misc]
            for each in symbols
        ]

    def _soon(self, make: Callable[[Reply[T]], RiskMessage]) -> Reply[T]:
        return self._send(make, self._risk, _Freeing(self._release))

    async def check(self, request: OrderRequest) -> RiskCheck:
        """Dry-run the pre-trade checks: every failing reason and the hold; changes nothing."""
        return await self._ask(lambda reply: CheckOrder(request, reply), self._risk)

    async def submit_list(self, request: ListRequest) -> ListOutcome:
        """Place an order list whole; answers once its events are durable. Raises
        ``InvalidInput`` naming the member's field (``orders.1.price``)."""
        return await self._ask(lambda reply: SubmitList(request, reply), self._risk)

    async def order_list(self, list_id: int) -> ListView | None:
        return await self._read(self._risk, RiskActor.query_order_list, list_id)

    async def list_by_client_id(self, user_id: UserId, list_client_id: str) -> ListView | None:
        """The user's newest list (open, or ended and still kept) with this client id."""
        return await self._read(
            self._risk, RiskActor.query_list_by_client_id, user_id, list_client_id
        )

    async def cancel_list(self, list_id: int, user_id: UserId | None) -> ListView | Refused:
        """Cancel an open list whole, or an ended one's open members; the list as the cancel
        left it (``unknown_order_list``, ``order_list_not_open`` when nothing was open)."""
        answer: ListCancelled | Refused = await self._ask(
            lambda reply: CancelList(list_id, user_id, reply), self._risk
        )
        return await self.list_cancelled(list_id, answer)

    def submit_list_soon(self, request: ListRequest) -> Reply[ListOutcome]:
        """``submit_list``, handed over now; answered on its reply, as ``submit_soon``'s."""
        return self._soon(lambda reply: SubmitList(request, reply))

    def cancel_list_soon(
        self, list_id: int, user_id: UserId | None
    ) -> Reply[ListCancelled | Refused]:
        """``cancel_list``, handed over now; ``list_cancelled`` reads its answer."""
        return self._soon(lambda reply: CancelList(list_id, user_id, reply))

    async def list_cancelled(
        self, list_id: int, answer: ListCancelled | Refused
    ) -> ListView | Refused:
        """The list as its cancel (``cancel_list_soon``'s ``answer``) left it."""
        if isinstance(answer, Refused):
            return answer
        view = await self.order_list(list_id)
        assert view is not None, "a list the risk actor routed is kept"
        changed = {order.order_id: order for order in answer.orders}
        orders = [changed.get(order.order_id, order) for order in view.orders]
        if answer.status is not None and view.status is ListStatus.OPEN:
            # The risk actor may not have applied the cancel yet: the list's end says it.
            orders = [
                order._replace(
                    status=OrderStatus.CANCELLED, remaining=0, cancelled=order.quantity,
                    reason="order_list",
                ) if order.order_id in view.pending else order
                for order in orders
            ]  # fmt: skip
            view = view._replace(status=answer.status, pending=())
        return view._replace(orders=tuple(orders))

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
        cancelled: list[OrderView] = []
        for reply in self.cancel_all_soon(user_id, symbol):
            cancelled.extend(await reply.wait())
        return cancelled

    async def cancel_all_after(self, user_id: UserId, timeout_ms: int) -> Switch | Refused:
        """Arm the user's dead man's switch: unless armed again within ``timeout_ms``, every
        open order of the user is cancelled; 0 disarms it. Answers once durable (a restart
        keeps the deadline). Raises ``InvalidInput`` outside 0 to ``MAX_TIMEOUT_MS``
        (``core/dead_man.py``), ``StorageUnavailable`` while the journal can't be written."""
        return await self._ask(lambda reply: CancelAllAfter(user_id, timeout_ms, reply), self._risk)

    async def switch(self, user_id: UserId) -> tuple[int, int] | None:
        """The user's armed dead man's switch: ``(cancel_at, timeout_ms)`` (ns, ms), or None."""
        return await self._read(self._risk, RiskActor.query_switch, user_id)

    async def order(self, order_id: OrderId) -> OrderView | None:
        return await self._read(self._risk, RiskActor.query_order, order_id)

    async def open_by_client_id(self, user_id: UserId, client_order_id: str) -> OrderView | None:
        """The user's open order with ``client_order_id``, if there is one."""
        return await self._read(
            self._risk, RiskActor.query_open_by_client_id, user_id, client_order_id
        )

    async def user_orders(
        self, user_id: UserId, *, open_only: bool = False, limit: int = 100
    ) -> list[OrderView]:
        return await self._read(self._risk, RiskActor.query_user_orders, user_id, open_only, limit)

    async def open_orders(self, user_id: UserId) -> tuple[dict[Symbol, int], list[OrderView]]:
        """The user's open orders (oldest first) and, per symbol, the ``seq`` of the last
        event they include: the ``orders`` channel's snapshot."""
        return await self._read(self._risk, RiskActor.query_open_orders, user_id)

    async def orders_snapshot(self, user_id: UserId) -> OrdersSnapshot:
        """The ``orders`` channel's snapshot: the user's open orders and lists, and its
        running or paused algorithms, each part with the ``seq`` it is as of."""
        seqs, orders, lists = await self._read(self._risk, RiskActor.query_orders_snapshot, user_id)
        algos_seq, algos = await self._read(
            self._inboxes.algos, AlgoSupervisor.query_live_algos, user_id
        )
        return OrdersSnapshot(
            seqs=seqs, orders=orders, lists=lists, algos_seq=algos_seq, algos=algos
        )

    async def user_trades(self, user_id: UserId, limit: int = 100) -> list[Trade]:
        return await self._read(self._risk, RiskActor.query_user_trades, user_id, limit)

    async def order_fills(
        self, user_id: UserId, order_ids: tuple[OrderId, ...]
    ) -> dict[OrderId, list[Trade]]:
        """The fills of ``user_id``'s orders ``order_ids`` among the user's newest (the risk
        actor keeps the last 1,000 of each user's fills), oldest first."""
        return await self._read(self._risk, RiskActor.query_order_fills, user_id, order_ids)

    # ------------------------------------------------------------ algorithms

    async def start_algo(self, request: AlgoRequest) -> AlgoView | Refused:
        """Start an algorithm; answers its view once its start is durable."""
        return await self._ask(lambda reply: StartAlgo(request, reply), self._inboxes.algos)

    async def stop_algo(self, algo_id: int, user_id: UserId | None) -> AlgoView | Refused:
        """Stop an algorithm (``user_id``: the caller's, None for an admin); answers its
        view once it is journaled ``cancelled``, or ``Refused`` (``unknown_algo``,
        ``algo_not_running``)."""
        return await self._ask(lambda reply: StopAlgo(algo_id, user_id, reply), self._inboxes.algos)

    async def algo(self, algo_id: int) -> AlgoView | None:
        return await self._read(self._inboxes.algos, AlgoSupervisor.query_algo, algo_id)

    async def user_algos(self, user_id: UserId, limit: int = 100) -> list[AlgoView]:
        """The user's algorithms, newest first."""
        return await self._read(
            self._inboxes.algos, AlgoSupervisor.query_user_algos, user_id, limit
        )

    # ------------------------------------------------------------ accounts

    async def create_user(
        self,
        user_id: UserId,
        api_key_hash: str,
        owner: str | None = None,
        credentials: tuple[tuple[str, str], ...] = (),
    ) -> Refused | None:
        """Create a user with its key's hash and, journaled with it, its signing
        ``credentials`` (``(scheme, credential)`` pairs, as ``set_credential``'s)."""
        return await self._ask(
            lambda reply: CreateUser(user_id, owner, api_key_hash, reply, credentials),
            self._risk,
        )

    async def set_credential(self, user_id: UserId, scheme: str, credential: str) -> Refused | None:
        """Set the user's signing credential of ``scheme`` for the Binance dialect (a
        sealed secret, or a public key), replacing any; answers once durable."""
        return await self._ask(
            lambda reply: SetCredential(user_id, scheme, credential, reply), self._risk
        )

    async def credentials(self, user_id: UserId) -> dict[str, str]:
        """The user's signing credentials by scheme, as ``set_credential`` stored them."""
        return await self._read(self._risk, RiskActor.query_credentials, user_id)

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
        """List a symbol; it trades at once. Refused (``symbol_exists``) if its name without
        the underscore is another listed symbol's so joined (``AB_C`` and ``A_BC``): the
        Binance dialect names symbols so (``BTCAIT``), and each name must mean one."""
        joined = instrument.symbol.replace("_", "")
        for listed in self.instruments():
            if listed != instrument.symbol and listed.replace("_", "") == joined:
                return Refused(
                    "symbol_exists",
                    f"{instrument.symbol} would be {joined} in the Binance dialect, as {listed} is",
                )
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

    async def market_snapshot(self, channel: str) -> str | Refused | None:
        """The snapshot (JSON text) a new subscriber of the public ``channel`` gets, as
        ``subscribe`` sends it; ``Refused`` (``unknown_channel``) for a channel not there."""
        return await self._read(self._inboxes.market_data, MarketDataActor.query_snapshot, channel)

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

    def published(self) -> Published | None:
        """Market data published to Redis so far, and what was lost on the way (None:
        nothing is published, there is no publisher)."""
        if self._fanout is None:
            return None
        dropped = 0 if self._market_data is None else self._market_data.redis_dropped
        return Published(self._fanout.published, self._fanout.failed, dropped)

    @property
    def journal(self) -> Journal:
        """The journal port the engine writes (for metrics: read-only use)."""
        return self._journal_actor.journal
