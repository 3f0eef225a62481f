"""Dead man's switches: per user, a deadline after which every open order is cancelled.

``CancelAllAfter`` arms the user's switch, or with a timeout of 0 disarms it:
a ``CancelAllAfterSet`` event on ``$accounts``, applied at once and answered
once durable, as a deposit is; while storage is unavailable it is refused, as
an order is. Deadlines are absolute (wall-clock ns), so
replay re-arms each switch with its deadline, and one that passed while the
engine was down is due as soon as the clock starts.

The clock (``switch_clock``) is a task of the actor that sleeps until the
earliest deadline (``DeadManSwitches.next_due``), then sends the actor
``FireSwitches``: for each user due, a ``MatchCancelAll`` goes to every
symbol, and a task awaits their replies, which come once the cancels are
durable. Only then is ``CancelAllAfterFired`` journaled: a crash in between
leaves the switch armed and the restart fires it again (cancelling nothing
more), rather than a switch disarmed with its orders still open. A symbol
that does not answer (busy, the journal retrying) makes the switch due again
after ``RETRY_NS``. A halted symbol answers at once and keeps its orders, as
it does for ``DELETE /orders``.

Arming is cheap, since a market maker re-arms every second or so: a heap
push, and one event that group commit writes with the others. The clock is
woken only by a deadline earlier than the one it sleeps until; a re-arm that
pushes a deadline out leaves it be, and the clock, waking for a deadline
since pushed out, finds nothing due and sleeps until the next.

A mixin over ``RiskState``.
"""

from __future__ import annotations

import contextlib
import time

import trio

from trading_engine.actors.mailbox import Reply
from trading_engine.actors.messages import (
    CancelAllAfter,
    FireSwitches,
    MatchCancelAll,
    Refused,
    Switch,
    SwitchFired,
)
from trading_engine.actors.risk.state import RiskState, log
from trading_engine.core.account_events import CancelAllAfterFired, CancelAllAfterSet
from trading_engine.core.dead_man import MAX_TIMEOUT_MS
from trading_engine.core.enums import CancelReason
from trading_engine.core.ids import UserId
from trading_engine.core.views import OrderView
from trading_engine.errors import InvalidInput, TradingEngineError
from trading_engine.storage.journal import StorageUnavailable

__all__ = ["RETRY_NS", "SwitchesMixin"]

RETRY_NS = 1_000_000_000
"""A switch whose cancels failed is due again this long (ns) after."""
_CANCEL_TIMEOUT = 10.0
"""Seconds to wait for a symbol to answer a switch's cancels."""


class SwitchesMixin(RiskState):
    """Users' dead man's switches: armed, disarmed, fired, and the clock that fires them."""

    def _cancel_all_after(self, message: CancelAllAfter) -> None:
        user_id, timeout_ms, reply = message.user_id, message.timeout_ms, message.reply
        if user_id not in self.users:
            reply.send(Refused("unknown_user", f"no user {user_id}"))
            return
        if type(timeout_ms) is not int or not 0 <= timeout_ms <= MAX_TIMEOUT_MS:
            reply.fail(InvalidInput("timeout_ms", f"must be an integer from 0 to {MAX_TIMEOUT_MS}"))
            return
        if not self.storage_available:
            # As for orders: nothing is answered that was not written, and a switch set
            # but not journaled would not be the one a restart finds.
            reply.fail(StorageUnavailable("storage is unavailable: the switch is not set"))
            return
        now = time.time_ns()
        cancel_at = now + timeout_ms * 1_000_000 if timeout_ms else None
        self.accounts_seq += 1
        event = CancelAllAfterSet(self.accounts_seq, now, user_id, timeout_ms, cancel_at)
        self._apply_switch(event)
        self._account_events.append(event)
        self._account_replies.append((reply, Switch(now, timeout_ms, cancel_at)))
        self._wake_clock(cancel_at)

    def _apply_switch(self, event: CancelAllAfterSet | CancelAllAfterFired) -> None:
        """A switch event, live or replayed."""
        if isinstance(event, CancelAllAfterFired):
            self.switches.disarm(event.user_id, event.cancel_at)
        elif event.cancel_at is None:
            self.switches.disarm(event.user_id)
        else:
            self.switches.arm(event.user_id, event.cancel_at, event.timeout_ms)

    def _fire_switches(self, message: FireSwitches) -> None:
        """Cancel the orders of each user whose switch is due, in every symbol."""
        assert self._tasks is not None, "the clock runs only in a running actor"
        for user_id, cancel_at in self.switches.take_due(time.time_ns()):
            replies: list[Reply[list[OrderView]]] = []
            for symbol in self.symbols:
                reply: Reply[list[OrderView]] = Reply()
                self._queue(symbol, MatchCancelAll(user_id, reply, CancelReason.CANCEL_ALL_AFTER))
                replies.append(reply)
            self._tasks.start_soon(self._await_cancels, user_id, cancel_at, replies)
        message.reply.send(None)

    async def _await_cancels(
        self, user_id: UserId, cancel_at: int, replies: list[Reply[list[OrderView]]]
    ) -> None:
        cancelled = True
        for reply in replies:
            try:
                await reply.wait(_CANCEL_TIMEOUT)
            except TradingEngineError as exc:
                log.warning("dead man's switch of %s: a cancel failed (%s); retrying", user_id, exc)
                cancelled = False
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            self._itself.send_nowait(SwitchFired(user_id, cancel_at, cancelled))

    def _switch_fired(self, message: SwitchFired) -> None:
        """Journal that the switch fired, unless it was set again meanwhile; or, its
        cancels having failed, make it due again shortly."""
        user_id, cancel_at = message.user_id, message.cancel_at
        if not message.cancelled:
            retry_at = time.time_ns() + RETRY_NS
            self.switches.retry(user_id, cancel_at, retry_at)
            self._wake_clock(retry_at)
        elif self.switches.disarm(user_id, cancel_at):
            self.accounts_seq += 1
            fired = CancelAllAfterFired(self.accounts_seq, time.time_ns(), user_id, cancel_at)
            self._account_events.append(fired)

    def _wake_clock(self, due: int | None) -> None:
        """Wake the clock if ``due`` comes before the deadline it sleeps until."""
        if due is None or self._clock is None:
            return
        if self._clock_wake is None or due < self._clock_wake:
            self._clock.cancel()

    async def switch_clock(self) -> None:
        """Sleep until the earliest switch is due, have the actor fire what is due, repeat."""
        while True:
            due = self.switches.next_due()
            with trio.CancelScope() as scope:
                self._clock, self._clock_wake = scope, due
                if due is not None:
                    # Wall-clock ns to Trio's clock: seconds as a float, which is fine for time.
                    scope.deadline = trio.current_time() + (due - time.time_ns()) / 1e9
                await trio.sleep_forever()
            self._clock = None
            self._clock_wake = None
            if due is not None and due <= time.time_ns():
                reply: Reply[None] = Reply()
                self._itself.send_nowait(FireSwitches(reply))
                await reply.wait()
