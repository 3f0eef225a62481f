"""The dead man's switch: per user, a time at which all of the user's open orders are cancelled.

A user arms the switch with a timeout (``POST /orders/cancel-all-after``);
unless the user arms it again before the deadline, the deadline passes and
every open order of the user is cancelled. A timeout of 0 disarms it. Each
user has at most one switch; arming it again replaces its deadline.
Deadlines are absolute (wall-clock nanoseconds since the epoch), so that the
journal's record of one means the same after a restart, and one that passed
while the engine was down is due at once.

``DeadManSwitches`` is the table: which switches are armed, the earliest
time one is due, and which are due now. Arming again is the common case (a
market maker re-arms every second or so, pushing the deadline out), so it
costs a dict write and a heap push: the entry it replaces stays in the heap
until it reaches the top, where it is seen to be stale and dropped (lazy
deletion, as the matcher's expiries). When stale entries outnumber the live
ones the heap is rebuilt, so it stays within about twice the switches armed.

A switch that is due is taken (``take_due``) and stays armed until its cancels
are done and ``disarm(user, cancel_at)`` ends it; meanwhile it is not due
again, unless ``retry`` makes it so (its cancels failed). Arming it again
meanwhile starts a new switch, which that ``disarm`` leaves alone.
"""

from __future__ import annotations

import heapq
from typing import Final

from trading_engine.core.ids import UserId

__all__ = ["MAX_TIMEOUT_MS", "DeadManSwitches"]

MAX_TIMEOUT_MS: Final = 86_400_000
"""The longest timeout a switch takes: one day, in milliseconds."""

_SLACK: Final = 64
"""Stale heap entries tolerated beyond the live ones before the heap is rebuilt."""


class DeadManSwitches:
    """Every armed switch, by user: ``(cancel_at, timeout_ms)``, and when each is due."""

    def __init__(self) -> None:
        self.armed: dict[UserId, tuple[int, int]] = {}
        """Per user with an armed switch: its deadline (ns) and the timeout it was armed with."""
        self._due: dict[UserId, int] = {}
        """Per armed switch not yet taken: when it is due (its deadline, or a retry's time)."""
        self._heap: list[tuple[int, UserId]] = []
        """``(due, user)``; an entry is live while it is the user's ``_due``, else stale."""

    def __repr__(self) -> str:
        return f"DeadManSwitches({self.armed!r})"

    def get(self, user_id: UserId) -> tuple[int, int] | None:
        """The user's armed switch, ``(cancel_at, timeout_ms)``, or None."""
        return self.armed.get(user_id)

    def arm(self, user_id: UserId, cancel_at: int, timeout_ms: int) -> None:
        """Arm the user's switch for ``cancel_at`` (ns), replacing the one armed, if any."""
        self.armed[user_id] = (cancel_at, timeout_ms)
        self._set_due(user_id, cancel_at)

    def disarm(self, user_id: UserId, cancel_at: int | None = None) -> bool:
        """Disarm the user's switch; with ``cancel_at``, only if that is its deadline (a
        switch armed again since is left alone). Whether a switch was disarmed."""
        armed = self.armed.get(user_id)
        if armed is None or (cancel_at is not None and armed[0] != cancel_at):
            return False
        del self.armed[user_id]
        self._due.pop(user_id, None)
        return True

    def next_due(self) -> int | None:
        """The earliest time (ns) at which a switch not yet taken is due, or None."""
        heap, due = self._heap, self._due
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def take_due(self, now: int) -> list[tuple[UserId, int]]:
        """The switches due at ``now`` (ns), ``(user, cancel_at)`` earliest first. They
        stay armed, and are not due again unless ``retry`` says when."""
        heap, due = self._heap, self._due
        taken: list[tuple[UserId, int]] = []
        while heap and heap[0][0] <= now:
            at, user_id = heapq.heappop(heap)
            if due.get(user_id) == at:
                del due[user_id]
                taken.append((user_id, self.armed[user_id][0]))
        return taken

    def retry(self, user_id: UserId, cancel_at: int, at: int) -> None:
        """Make a taken switch due again at ``at``, if it is still armed for ``cancel_at``."""
        armed = self.armed.get(user_id)
        if armed is not None and armed[0] == cancel_at and user_id not in self._due:
            self._set_due(user_id, at)

    def _set_due(self, user_id: UserId, at: int) -> None:
        if self._due.get(user_id) == at:
            return
        self._due[user_id] = at
        heapq.heappush(self._heap, (at, user_id))
        if len(self._heap) > 2 * len(self._due) + _SLACK:
            self._heap = [(at, user) for user, at in self._due.items()]
            heapq.heapify(self._heap)
