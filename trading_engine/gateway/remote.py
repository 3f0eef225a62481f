"""``RemoteEngine``: the ``Engine`` a gateway's API calls, with the engine elsewhere.

It is an ``Engine`` to the API (a subclass, so mypy checks every route
against the one interface), but each method the wire carries
(``gateway/protocol.py``'s ``METHODS``) is a call through Redis
(``gateway/transport.py``) to the engine's ``CommandServer``, by name, with
the same arguments; what the engine answers, or raises, comes back as it was
(``gateway/codec.py``). The rest it answers itself: ``instruments()``,
``halted()`` and ``config`` from the engine's heartbeat, the ``*_soon``
methods as calls whose ``Reply`` the answer fills, the market-data
subscriptions from the gateway's own feed.

Calls made while the previous batch is on its way go out together, one
Redis call a batch; answers come back the same way.

Errors (HTTP statuses as the API maps them)::

    ActorUnavailable
    └── EngineUnavailable  the engine is not running (no heartbeat), or a query got no
                           answer in time, or a call expired unread: nothing was done (503)
    ReplyTimeout           a command got no answer in time: its outcome is unknown
                           (503 ``outcome_unknown`` where the API says so)

A gateway knows the engine is down once its heartbeat is missing
(``HEARTBEAT_TTL`` at most after it stopped), or says it is stopping (a
graceful stop: the calls under way are answered); from then on every new
call is ``EngineUnavailable`` at once, and nothing is sent until it beats
again.

It counts, for ``/metrics`` (``gateway/metrics.py``): the calls sent, those
refused at once (no engine), and those that got no usable answer
(``unanswered``, by kind and reason: ``timeout``, ``engine_stopped``,
``redis_failed``, ``undecodable``); a command among them was answered
``outcome_unknown``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any, Final, cast

import trio

from trading_engine.actors.facade import Engine
from trading_engine.actors.fanout import Published
from trading_engine.actors.journal import JournalStats
from trading_engine.actors.mailbox import Reply, ReplyTimeout
from trading_engine.actors.marketdata import Outbox
from trading_engine.actors.messages import (
    ListCancelled,
    ListOutcome,
    ListRequest,
    OrderRequest,
    OrderResult,
    Refused,
    SubmitOutcome,
)
from trading_engine.config import EngineConfig
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.list_views import ListView
from trading_engine.core.views import OrderView
from trading_engine.gateway import codec
from trading_engine.gateway.protocol import (
    ANSWERS_DECODER,
    CALLS_ENCODER,
    EXPIRED,
    FAILED,
    METHODS,
    OK,
    Call,
    EngineUnavailable,
    Kind,
    raise_error,
)
from trading_engine.gateway.server import shared_config
from trading_engine.gateway.transport import HEARTBEAT_TTL, GatewaySide
from trading_engine.storage.journal import Journal, StorageUnavailable

__all__ = ["EngineUnavailable", "RemoteEngine"]

log = logging.getLogger(__name__)

_WATCH_EVERY: Final = 0.25
"""Seconds between reads of the engine's heartbeat."""
_GRACE: Final = 0.05
"""Seconds a gateway waits past a call's deadline for its answer (the trip back)."""
_RETRY: Final = 0.2
_KEY_CACHE_SIZE: Final = 100_000


class _Pending:
    __slots__ = ("deadline", "kind", "reply")

    def __init__(self, reply: Reply[Any], kind: Kind, deadline: float) -> None:
        self.reply = reply
        self.kind = kind
        self.deadline = deadline


class RemoteEngine(Engine):
    """The engine behind Redis, as the API sees an ``Engine``; run ``run`` beside the app."""

    def __init__(self, config: EngineConfig, redis: GatewaySide) -> None:
        # No ``super().__init__``: there are no actors here. Each public method of
        # ``Engine`` is either on the wire (``METHODS``) or answered below; a test
        # checks that none is left to ``Engine``'s in-process code.
        self.config = config
        self.recovered = None
        self.gateway_id = uuid.uuid4().hex[:12]
        self._redis = redis
        self._pending: dict[int, _Pending] = {}
        self._order: deque[tuple[float, int]] = deque()
        self._outgoing: list[Call] = []
        self._wake = trio.Event()
        self._next_id = 0
        self._instruments: dict[Symbol, Instrument] = {}
        self._halted: dict[Symbol, str] = {}
        self._beat: bytes | None = None
        self._users_by_key: dict[str, UserId] = {}
        self.sent = 0
        """Calls sent to the engine."""
        self.refused = 0
        """Calls refused at once: the engine was not running."""
        self.unanswered: Counter[tuple[Kind, str]] = Counter()
        """Calls that got no usable answer, by kind and reason (see the module)."""
        self.alive = False
        """Whether the engine's heartbeat is there and not stopping: calls are sent only
        then."""
        self.boot: str | None = None
        """The id of the engine's current start, from its heartbeat."""
        self.stopping = False
        """Whether the engine's heartbeat says it is stopping (it answers the calls it
        runs, and refuses the rest)."""
        self.feed: Any = None
        """The gateway's market-data feed (``gateway/feed.py``), once running."""
        self._unread_since: float | None = None
        """Since when (Trio's clock) the heartbeat could not be read, if it cannot."""

    # ------------------------------------------------------------ running

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send calls, read answers, watch the heartbeat and the deadlines, until
        cancelled; started once the heartbeat was read once (the engine may be down)."""
        async with trio.open_nursery() as nursery:
            await self._watch_once()
            nursery.start_soon(self._watch)
            nursery.start_soon(self._send_calls)
            nursery.start_soon(self._read_answers)
            nursery.start_soon(self._expire_calls)
            task_status.started()

    async def wait_alive(self) -> None:
        """Return once the engine's heartbeat is there."""
        while not self.alive:
            await trio.sleep(_WATCH_EVERY / 2)

    async def _watch_once(self) -> None:
        try:
            beat = await self._redis.heartbeat()
        except StorageUnavailable:
            # One read that failed (a reset connection) is not the engine stopping: only
            # reads failing for as long as a heartbeat lives.
            now = trio.current_time()
            if self._unread_since is None:
                self._unread_since = now
            if now - self._unread_since < HEARTBEAT_TTL:
                return
            beat = None
        else:
            self._unread_since = None
        if beat is None:
            if self.alive:
                log.warning("the engine's heartbeat stopped: answering 503 until it is back")
                self._abandon()
            self.alive = False
            return
        if beat != self._beat:
            try:
                # An engine that predates the stopping flag sends four values.
                boot, instruments, halted, shared, *stopping = codec.decode(beat)
                config = shared_config(self.config, shared)
            except Exception:  # an engine of another version: keep what we had
                log.exception("a heartbeat this gateway cannot read: keeping the last one")
                self._beat = beat  # said once, not at every read
            else:
                self._instruments, self._halted, self.config = instruments, halted, config
                self.stopping = bool(stopping and stopping[0])
                self._beat = beat
                if boot != self.boot and self.boot is not None:
                    log.warning("the engine started again")
                self.boot = boot
        if self.stopping:
            # Calls under way are still answered; new ones are refused here at once.
            if self.alive:
                log.warning("the engine is stopping: answering 503 until it is back")
            self.alive = False
            return
        if not self.alive:
            log.info("the engine is available")
        self.alive = True

    def _abandon(self) -> None:
        """The engine stopped: fail every call still waiting, rather than at its deadline."""
        pending, self._pending = self._pending, {}
        for each in pending.values():
            self.unanswered[each.kind, "engine_stopped"] += 1
            if each.kind is Kind.COMMAND:
                each.reply.fail(ReplyTimeout("the engine stopped before it answered"))
            else:
                each.reply.fail(EngineUnavailable("the engine stopped before it answered"))

    async def _watch(self) -> None:
        while True:
            await trio.sleep(_WATCH_EVERY)
            await self._watch_once()

    async def _send_calls(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            calls, self._outgoing = self._outgoing, []
            if not calls:
                continue
            try:
                await self._redis.send(CALLS_ENCODER.encode(calls))
            except StorageUnavailable as exc:
                # Redis may have taken the entry before failing: a command's outcome is
                # unknown (its deadline says so); a query is simply unavailable.
                for call in calls:
                    pending = self._pending.get(call.id)
                    if pending is not None and pending.kind is Kind.QUERY:
                        del self._pending[call.id]
                        self.unanswered[Kind.QUERY, "redis_failed"] += 1
                        pending.reply.fail(EngineUnavailable(f"Redis is unavailable: {exc}"))

    async def _read_answers(self) -> None:
        while True:
            try:
                batches = await self._redis.replies()
            except StorageUnavailable:
                await trio.sleep(_RETRY)
                continue
            for data in batches:
                try:
                    answers = ANSWERS_DECODER.decode(data)
                except Exception:  # noqa: BLE001 - one bad entry must not stop the gateway
                    log.warning("an answer batch that does not decode was dropped")
                    continue
                for answer in answers:
                    pending = self._pending.pop(answer.id, None)
                    if pending is not None and not settle(pending, answer.status, answer.value):
                        self.unanswered[pending.kind, "undecodable"] += 1

    async def _expire_calls(self) -> None:
        order = self._order
        while True:
            await trio.sleep(0.05)
            now = trio.current_time()
            while order and order[0][0] <= now:
                _, call_id = order.popleft()
                pending = self._pending.pop(call_id, None)
                if pending is None or pending.reply.done:
                    continue
                self.unanswered[pending.kind, "timeout"] += 1
                timeout = self.config.reply_timeout
                if pending.kind is Kind.COMMAND:
                    pending.reply.fail(ReplyTimeout(f"no answer within {timeout:g} s"))
                else:
                    pending.reply.fail(
                        EngineUnavailable(f"the engine did not answer within {timeout:g} s")
                    )

    # ------------------------------------------------------------ calls

    def post(self, method: str, *args: Any, **kwargs: Any) -> Reply[Any]:
        """Call ``method`` on the engine; its answer fills the reply. Raises
        ``EngineUnavailable`` at once while the engine is not running."""
        if not self.alive:
            self.refused += 1
            raise EngineUnavailable("the engine is not running: no heartbeat")
        self.sent += 1
        timeout = self.config.reply_timeout
        self._next_id += 1
        call_id = self._next_id
        deadline_ms = time.time_ns() // 1_000_000 + int(timeout * 1000)
        self._outgoing.append(
            Call(call_id, deadline_ms, method, codec.lower(args), codec.lower(kwargs))
        )
        reply: Reply[Any] = Reply()
        deadline = trio.current_time() + timeout + _GRACE
        self._pending[call_id] = _Pending(reply, METHODS[method], deadline)
        self._order.append((deadline, call_id))
        self._wake.set()
        return reply

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await self.post(method, *args, **kwargs).wait()

    # ------------------------------------------------------------ answered here

    def instruments(self) -> dict[Symbol, Instrument]:
        return self._instruments

    def halted(self) -> dict[Symbol, str]:
        return self._halted

    def submit_soon(self, request: OrderRequest) -> Reply[SubmitOutcome]:
        return self.post("submit", request)

    async def submit_many_soon(
        self, requests: Sequence[OrderRequest]
    ) -> list[Reply[SubmitOutcome]]:
        await trio.lowlevel.checkpoint()
        return [self.post("submit", request) for request in requests]

    def cancel_soon(
        self, order_id: OrderId, user_id: UserId | None
    ) -> Reply[OrderResult | Refused]:
        return self.post("cancel", order_id, user_id)

    def amend_soon(
        self,
        order_id: OrderId,
        user_id: UserId | None,
        *,
        price: int | None = None,
        quantity: int | None = None,
    ) -> Reply[OrderResult | Refused]:
        return self.post("amend", order_id, user_id, price=price, quantity=quantity)

    def cancel_all_soon(
        self, user_id: UserId, symbol: Symbol | None = None
    ) -> list[Reply[list[OrderView]]]:
        symbols = [symbol] if symbol is not None else list(self.instruments())
        return [self.post("cancel_all", user_id, each) for each in symbols]

    def submit_list_soon(self, request: ListRequest) -> Reply[ListOutcome]:
        return self.post("submit_list", request)

    def cancel_list_soon(
        self, list_id: int, user_id: UserId | None
    ) -> Reply[ListCancelled | Refused]:
        # The engine answers as ``cancel_list`` does, with the list as the cancel left it,
        # which ``list_cancelled`` passes on.
        return cast(Reply[ListCancelled | Refused], self.post("cancel_list", list_id, user_id))

    async def list_cancelled(
        self, list_id: int, answer: ListCancelled | Refused
    ) -> ListView | Refused:
        await trio.lowlevel.checkpoint()
        return cast(ListView | Refused, answer)

    async def user_by_key(self, key_hash: str) -> UserId | None:
        """As ``Engine.user_by_key``: a key, once known, is remembered here too."""
        known = self._users_by_key.get(key_hash)
        if known is not None:
            return known
        result: UserId | None = await self.call("user_by_key", key_hash)
        if result is not None:
            if len(self._users_by_key) >= _KEY_CACHE_SIZE:
                self._users_by_key.clear()
            self._users_by_key[key_hash] = result
        return result

    async def subscribe(
        self, channel: str, outbox: Outbox, user_id: UserId | None = None
    ) -> Refused | None:
        if self.feed is None:
            raise EngineUnavailable("this gateway serves no market data")
        result: Refused | None = await self.feed.subscribe(channel, outbox, user_id)
        return result

    async def unsubscribe(self, channel: str, outbox: Outbox) -> None:
        if self.feed is not None:
            await self.feed.unsubscribe(channel, outbox)

    async def subscribers(self) -> int:
        await trio.lowlevel.checkpoint()
        return 0 if self.feed is None else int(self.feed.subscribers())

    @property
    def in_flight(self) -> int:
        """Calls sent and not answered yet."""
        return len(self._pending)

    @property
    def journal_stats(self) -> JournalStats:
        """A gateway writes no journal: the engine's listener shows its figures."""
        raise EngineUnavailable("a gateway writes no journal")

    def published(self) -> Published | None:
        """A gateway publishes nothing (it relays what the engine publishes)."""
        return None

    @property
    def journal(self) -> Journal:
        raise EngineUnavailable("a gateway has no journal")


def settle(pending: _Pending, status: int, value: Any) -> bool:
    """Fill ``pending``'s reply with the engine's answer; False if the answer does not
    decode. An OK answer that does not (an engine of another version) fails a query with
    ``CodecError``, and a command with ``ReplyTimeout``: it ran, so its outcome is unknown
    here."""
    reply = pending.reply
    if status == OK:
        try:
            reply.send(codec.lift(value))
        except codec.CodecError as exc:
            if pending.kind is Kind.COMMAND:
                reply.fail(ReplyTimeout(f"the engine's answer does not decode: {exc.message}"))
            else:
                reply.fail(exc)
            return False
    elif status == FAILED:
        try:
            raise_error(value)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            reply.fail(exc)
    elif status == EXPIRED:
        reply.fail(EngineUnavailable("the engine read the call after its deadline: not run"))
    return True


def _forward(method: str) -> Callable[..., Any]:
    async def forwarded(self: RemoteEngine, *args: Any, **kwargs: Any) -> Any:
        return await self.post(method, *args, **kwargs).wait()

    forwarded.__name__ = forwarded.__qualname__ = method
    forwarded.__doc__ = getattr(Engine, method).__doc__
    return forwarded


for _method in METHODS:
    if _method not in RemoteEngine.__dict__:
        setattr(RemoteEngine, _method, _forward(_method))
