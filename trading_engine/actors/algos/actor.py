"""One running algorithm: a task that sends its child orders on schedule.

The actor owns nothing but its place in the schedule. Each child goes
through the engine's front door (``AlgoEngine``, which the ``Engine``
façade is), so it passes the same risk checks and holds the same funds as
any order; children are IOC (a limit IOC at the algorithm's limit price, or
a market order bounded by the price band), so once answered a child is
final and holds nothing.

A slice is sent, then journaled (``AlgoSliceDone``). A crash between the two
leaves the child sent but not journaled; the actor started again sends the
same child number under the same client order id (``core.algos.child_client_id``),
and the engine answers with the original order (a duplicate, or
``ClientIdReused`` if the quantity came out otherwise), which is journaled
instead: no slice is ever sent twice.

Between slices the actor sleeps until the next is due; a slice that fell due
while the algorithm could not trade (the engine down, the symbol halted) is
sent as soon as it can, each in turn, so that N slices make at most N
children whatever happened in between. A stop request
(``AlgoHandle.stop``) cuts the sleep short, and is honoured only there, never
between sending a child and journaling it. A halted symbol pauses the
algorithm (journaled as ``paused``), polled every ``poll`` seconds; a child
refused for funds ends it (``failed``, ``insufficient_funds``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs
import trio

from trading_engine.actors.messages import (
    ClientIdReused,
    OrderRequest,
    OrderResult,
    Refused,
    Rejected,
    SubmitOutcome,
)
from trading_engine.core.algos import (
    AlgoSliceDone,
    AlgoState,
    AlgoStatus,
    AlgoStatusChanged,
    AlgoType,
    child_client_id,
    slice_due,
    vwap_quantity,
)
from trading_engine.core.enums import OrderType, RejectReason, TimeInForce
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.views import OrderView

__all__ = ["AlgoActor", "AlgoEngine", "AlgoHandle", "Write"]

_TAPE = 1000
"""Trades read from the tape per VWAP slice (the market-data actor keeps as many)."""
_FUNDS = (RejectReason.INSUFFICIENT_FUNDS, RejectReason.INSUFFICIENT_MARGIN)


class AlgoEngine(Protocol):
    """What an algorithm needs of the engine: the ``Engine`` façade's order entry and reads."""

    async def submit(self, request: OrderRequest) -> SubmitOutcome: ...

    async def order(self, order_id: OrderId) -> OrderView | None: ...

    async def cancel(self, order_id: OrderId, user_id: UserId | None) -> OrderResult | Refused: ...

    async def trades(self, symbol: Symbol, limit: int = 100) -> list[Trade] | None: ...

    def halted(self) -> dict[Symbol, str]: ...


Write = Callable[[Callable[[int, int], AlgoSliceDone | AlgoStatusChanged]], Awaitable[None]]
"""The supervisor's journal write: makes the event from ``(seq, ts)``, returns once it is
durable and applied to the algorithm's state."""


@attrs.define(eq=False)
class AlgoHandle:
    """What the supervisor keeps of a running algorithm across restarts of its actor."""

    state: AlgoState
    stopping: bool = False
    sleep: trio.CancelScope | None = None
    stopped: trio.Event = attrs.field(factory=trio.Event)
    restarts: list[float] = attrs.field(factory=list)

    def stop(self) -> None:
        self.stopping = True
        if self.sleep is not None:
            self.sleep.cancel()


class AlgoActor:
    def __init__(
        self,
        handle: AlgoHandle,
        engine: AlgoEngine,
        write: Write,
        clock: Callable[[], int],
        *,
        poll: float = 1.0,
    ) -> None:
        self._handle = handle
        self._state = handle.state
        self._engine = engine
        self._write = write
        self._clock = clock
        self._poll = poll

    async def run(self) -> None:
        """Work the algorithm until it ends or is asked to stop."""
        state, handle = self._state, self._handle
        started = state.started
        while not state.status.is_final and not handle.stopping:
            k = state.next_slice
            if k >= started.slices or state.remaining == 0:
                await self._finish()
                return
            await self._sleep_until(slice_due(started.ts, started.duration_ns, started.slices, k))
            if self._stop_asked():
                return
            if started.symbol in self._engine.halted():
                await self._pause()
                continue
            if state.status is AlgoStatus.PAUSED:
                await self._status(AlgoStatus.RUNNING, "")
            await self._slice(k)

    def _stop_asked(self) -> bool:
        """Whether a stop was asked for (a call, so that it is read afresh after an await)."""
        return self._handle.stopping

    async def _slice(self, k: int) -> None:
        state = self._state
        started = state.started
        mark = state.mark
        if started.kind is AlgoType.TWAP:
            quantity = state.twap_child(k)
        else:
            volume, mark = await self._volume()
            first = state.mark < 0
            quantity = 0 if first else vwap_quantity(volume, state.participation, state.remaining)
        if quantity == 0:
            await self._done(k, -1, None, 0, mark)
            return
        child = state.next_child
        request = OrderRequest(
            started.user_id, started.symbol, started.side,
            OrderType.LIMIT if started.limit_price else OrderType.MARKET, quantity,
            price=started.limit_price, time_in_force=TimeInForce.IOC,
            client_order_id=child_client_id(started.algo_id, child), algo_id=started.algo_id,
        )  # fmt: skip
        outcome = await self._engine.submit(request)
        if isinstance(outcome, Rejected):
            await self._rejected(outcome)
            return
        if isinstance(outcome, ClientIdReused):
            view = await self._engine.order(outcome.order_id)
            assert view is not None, f"child {outcome.order_id} of algo {started.algo_id} unknown"
        else:
            view = outcome.order
        if not view.status.is_final:
            view = await self._cancel(view)
        await self._done(k, child, view, quantity, mark)
        if state.remaining == 0:
            await self._finish()

    async def _cancel(self, view: OrderView) -> OrderView:
        """The working child cancelled, as it is then; raises if it is still open (the
        actor's restart finds it again under its client order id)."""
        await self._engine.cancel(view.order_id, view.user_id)
        now = await self._engine.order(view.order_id)
        if now is None or not now.status.is_final:
            raise RuntimeError(f"child order {view.order_id} is still open after its cancel")
        return now

    async def _rejected(self, outcome: Rejected) -> None:
        reasons = outcome.reasons
        if RejectReason.SYMBOL_HALTED in reasons:
            # Halted (or resumed, with the risk actor not told yet): the next turn of
            # the loop pauses, or sends the slice again, after a poll's wait.
            await self._sleep(self._poll)
            return
        if any(reason in _FUNDS for reason in reasons):
            await self._status(AlgoStatus.FAILED, "insufficient_funds")
        else:
            await self._status(AlgoStatus.FAILED, "rejected: " + ", ".join(map(str, reasons)))

    async def _volume(self) -> tuple[int, int]:
        """Lots others traded since the algorithm's mark, and the new mark."""
        state = self._state
        trades = await self._engine.trades(state.started.symbol, _TAPE) or []
        mine = set(state.children)
        volume = sum(
            trade.quantity
            for trade in trades
            if trade.seq > state.mark
            and trade.maker_order_id not in mine
            and trade.taker_order_id not in mine
        )
        mark = max(state.mark, trades[0].seq if trades else 0)
        return volume, mark

    async def _done(
        self, k: int, child: int, view: OrderView | None, quantity: int, mark: int
    ) -> None:
        started = self._state.started
        order_id = filled = notional = 0
        if view is not None:
            order_id, filled, notional = view.order_id, view.filled, view.notional

        def make(seq: int, ts: int) -> AlgoSliceDone:
            return AlgoSliceDone(
                seq, ts, started.algo_id, started.user_id, started.symbol, k, child, order_id,
                quantity, filled, notional, mark,
            )  # fmt: skip

        await self._write(make)

    async def _finish(self) -> None:
        if self._state.remaining == 0:
            await self._status(AlgoStatus.COMPLETED, "")
        else:
            await self._status(AlgoStatus.FAILED, "schedule_ended")

    async def _pause(self) -> None:
        state, handle = self._state, self._handle
        symbol = state.started.symbol
        if state.status is not AlgoStatus.PAUSED:
            await self._status(AlgoStatus.PAUSED, f"symbol_halted: {symbol}")
        while symbol in self._engine.halted() and not handle.stopping:
            await self._sleep(self._poll)

    async def _status(self, status: AlgoStatus, reason: str) -> None:
        started = self._state.started
        await self._write(
            lambda seq, ts: AlgoStatusChanged(
                seq, ts, started.algo_id, started.user_id, started.symbol, status, reason
            )
        )

    async def _sleep_until(self, due_ns: int) -> None:
        delay = due_ns - self._clock()
        if delay > 0:
            await self._sleep(delay / 1e9)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short by a stop request."""
        handle = self._handle
        if handle.stopping:
            return
        with trio.CancelScope() as scope:
            handle.sleep = scope
            try:
                await trio.sleep(seconds)
            finally:
                handle.sleep = None
