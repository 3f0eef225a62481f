"""The engine's side of the gateways: commands from Redis, run on the ``Engine``.

``CommandServer.run`` reads the command stream in batches
(``gateway/transport.py``), and for each call runs the named method of the
engine's ``Engine`` (``gateway/protocol.py``'s ``METHODS``, nothing else) in
a task of its own, as a request of the in-process API would: so the
durability rule holds as it does there (``Engine`` answers a command only
once its events are journaled). A call read after its deadline is not run:
it is answered ``EXPIRED``. Answers are gathered: every answer ready when
the sender wakes goes out in one Redis call, one stream entry per gateway.

While Redis does not answer, reads and replies are retried every
``_RETRY`` seconds (logged when it starts failing and when it works again);
answers that could not be sent are lost, and their gateways time out.

At most ``max_inflight`` calls (``MAX_INFLIGHT``, the in-process API's bound)
run at once: one read past that is answered ``EngineBusy`` (503 ``busy``) and
not run, so an overload never grows the engine's tasks without bound.

``stop`` is the graceful stop: the heartbeat says the engine is stopping (the
gateways refuse new calls at once), calls read from then on are answered
``EngineUnavailable`` and not run, the calls under way finish and their
answers are sent; then ``run`` may be cancelled.

It counts the calls it ran (``executed``), answered expired, refused (stopping,
or a method not on the wire) and answered busy, and those running now, for
``/metrics`` (``gateway/metrics.py``); ``check_ready`` is the engine process's
``/ready``.

The heartbeat (``te:engine:NAME:alive``) carries the listed instruments, the
halted symbols, the risk configuration and whether the engine is stopping, so
that a gateway's synchronous ``instruments()``, ``halted()`` and ``config``
answer from it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import Any, Final

import attrs
import trio

from trading_engine.actors.facade import Engine
from trading_engine.actors.mailbox import EngineBusy
from trading_engine.gateway import codec
from trading_engine.gateway.handover import handed_over
from trading_engine.gateway.protocol import (
    CALLS_DECODER,
    CALLS_ENCODER,
    EXPIRED,
    FAILED,
    METHODS,
    OK,
    Answer,
    Call,
    EngineUnavailable,
    error_of,
)
from trading_engine.gateway.transport import HEARTBEAT_EVERY, EngineSide
from trading_engine.storage.journal import StorageUnavailable

__all__ = ["CommandServer", "heartbeat_value"]

log = logging.getLogger(__name__)

_RETRY: Final = 0.5


_SEEN: Final = 1.0
"""Seconds a stopping engine goes on refusing what it reads once its calls are answered:
gateways read the heartbeat every 0.25 s, so by then each has seen that it stops."""


def heartbeat_value(engine: Engine, boot: str, *, stopping: bool = False) -> bytes:
    """What the heartbeat carries: this start's id, the instruments, the halted symbols,
    the configuration's risk settings, and whether the engine is stopping."""
    config = engine.config
    shared = {
        "risk": config.risk,
        "margin_requirement": config.margin_requirement,
        "liquidation_threshold": config.liquidation_threshold,
    }
    return codec.encode((boot, engine.instruments(), engine.halted(), shared, stopping))


class CommandServer:
    """Runs the gateways' calls on ``engine``; counts what it did."""

    def __init__(self, engine: Engine, redis: EngineSide) -> None:
        self._engine = engine
        self._redis = redis
        self._consumer = uuid.uuid4().hex[:12]
        self.boot = uuid.uuid4().hex
        self._answers: dict[bytes, list[Answer]] = {}
        self._ready = trio.Event()
        self._sending = False
        self._failing = False
        """Sending answers failed: said once until a send succeeds."""
        self._running = 0
        self._idle = trio.Event()
        self.max_running: int = engine.config.max_inflight
        self.stopping = False
        self.reads_failing = False
        """Whether reading the command stream fails now (Redis does not answer)."""
        self.executed = 0
        self.expired = 0
        self.refused = 0
        self.busy = 0

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Join the command stream's group, beat, and serve calls until cancelled;
        raises ``StorageUnavailable`` if Redis does not answer at the start."""
        await self._redis.join()
        await self._redis.beat(heartbeat_value(self._engine, self.boot))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._beat)
            nursery.start_soon(self._send_answers)
            task_status.started()
            await self._read(nursery)

    @property
    def running(self) -> int:
        """Calls running now."""
        return self._running

    async def check_ready(self) -> None:
        """Raise unless the engine takes calls now: ``EngineUnavailable`` while it stops,
        ``StorageUnavailable`` while Redis does not answer its reads, else what
        ``Engine.check_ready`` raises."""
        if self.stopping:
            raise EngineUnavailable("the engine is stopping: it takes no calls")
        if self.reads_failing:
            raise StorageUnavailable("Redis does not answer: no calls are read")
        await self._engine.check_ready()

    async def stop(self, timeout: float) -> None:
        """Stop running calls, answering those under way (waiting up to ``timeout``
        seconds for them) and refusing what comes meanwhile; returns once their answers
        are sent. ``run`` goes on until cancelled."""
        self.stopping = True
        await self._beat_once()
        with trio.move_on_after(timeout):
            while self._running:
                await self._idle.wait()
                self._idle = trio.Event()
        await trio.sleep(_SEEN)
        with trio.move_on_after(timeout):
            while self._answers or self._sending:
                await trio.sleep(0.01)

    async def _read(self, nursery: trio.Nursery) -> None:
        while True:
            try:
                batches = await self._redis.read(self._consumer)
            except StorageUnavailable as exc:
                if not self.reads_failing:
                    log.warning("commands are not read until Redis answers: %s", exc)
                    self.reads_failing = True
                await trio.sleep(_RETRY)
                continue
            if self.reads_failing:
                log.warning("commands are read again")
                self.reads_failing = False
            now_ms = time.time_ns() // 1_000_000
            for reply_to, data in batches:
                try:
                    calls = CALLS_DECODER.decode(data)
                except Exception:  # noqa: BLE001 - a bad entry must not stop the engine
                    log.warning("a command batch that does not decode was dropped")
                    continue
                for call in calls:
                    if call.deadline_ms <= now_ms:
                        self.expired += 1
                        self._answer(reply_to, Answer(call.id, EXPIRED, None))
                    elif self.stopping:
                        self.refused += 1
                        stopping = EngineUnavailable("the engine is stopping: not run")
                        self._answer(reply_to, Answer(call.id, FAILED, error_of(stopping)))
                    elif self._running >= self.max_running:
                        self.busy += 1
                        busy = EngineBusy("the engine is busy: retry shortly")
                        self._answer(reply_to, Answer(call.id, FAILED, error_of(busy)))
                    else:
                        # Each call reaches the engine before the next is looked at: tasks
                        # started together may run in any order, and a pipelined cancel-all
                        # must not overtake, or be overtaken by, the orders around it.
                        self._running += 1
                        await nursery.start(self._run_call, reply_to, call)

    async def _run_call(
        self, reply_to: bytes, call: Call, task_status: trio.TaskStatus[None]
    ) -> None:
        """Hand ``call`` to the engine, then report started (the engine has it: its
        ``*_soon`` methods send at once, the others before their first pause), then answer
        it once done; it no longer counts as running once answered."""
        try:
            await self._run(reply_to, call, task_status)
        finally:
            self._running -= 1
            if not self._running:
                self._idle.set()

    async def _run(self, reply_to: bytes, call: Call, task_status: trio.TaskStatus[None]) -> None:
        if call.method not in METHODS:
            task_status.started()
            self.refused += 1
            error = error_of(LookupError(f"no method {call.method!r} on the wire"))
            self._answer(reply_to, Answer(call.id, FAILED, error))
            return
        try:
            args = codec.lift(call.args)
            kwargs = codec.lift(call.kwargs)
            running = handed_over(self._engine, call.method, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - the caller gets it, as in-process
            task_status.started()
            self.executed += 1
            self._answer(reply_to, Answer(call.id, FAILED, error_of(exc)))
            return
        task_status.started()
        try:
            value = await running
            answer = Answer(call.id, OK, codec.lower(value))
        except Exception as exc:  # noqa: BLE001 - the caller gets it, as in-process
            answer = Answer(call.id, FAILED, error_of(exc))
        self.executed += 1
        self._answer(reply_to, answer)
        # Sent from here at once, rather than once the sending task's turn comes after
        # whatever else the commit woke: the gateway's caller waits for it.
        await self._send()

    def _answer(self, reply_to: bytes, answer: Answer) -> None:
        self._answers.setdefault(reply_to, []).append(answer)
        self._ready.set()

    async def _send_answers(self) -> None:
        """Send the answers no call's task sends (those ``_read`` gives)."""
        while True:
            await self._ready.wait()
            self._ready = trio.Event()
            await self._send()

    async def _send(self) -> None:
        """Send every answer waiting, in one Redis call, and those that come meanwhile in
        the next; unless a send is under way, which sends them."""
        while self._answers and not self._sending:
            answers, self._answers = self._answers, {}
            batches = {key.decode(): CALLS_ENCODER.encode(each) for key, each in answers.items()}
            self._sending = True
            try:
                await self._redis.reply(batches)
            except StorageUnavailable as exc:
                if not self._failing:
                    log.warning("answers are lost until Redis answers: %s", exc)
                    self._failing = True
                await trio.sleep(_RETRY)
            else:
                self._failing = False
            finally:
                self._sending = False

    async def _beat(self) -> None:
        while True:
            await trio.sleep(HEARTBEAT_EVERY)
            await self._beat_once()

    async def _beat_once(self) -> None:
        value = heartbeat_value(self._engine, self.boot, stopping=self.stopping)
        with contextlib.suppress(StorageUnavailable):  # the reader logs the outage
            await self._redis.beat(value)


def shared_config(config: Any, shared: dict[str, Any]) -> Any:
    """``config`` with the engine's settings a gateway's API reads (``heartbeat_value``)."""
    return attrs.evolve(config, **shared)
