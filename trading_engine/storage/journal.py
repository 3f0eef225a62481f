"""The journal port: where events become durable, and where recovery reads them.

A journal holds streams: one per symbol (its matcher's events, numbered by
the symbol's ``seq``) and ``$accounts``. ``append`` writes a batch of events
from any streams atomically: when it returns, all of them are durable; when
it raises, none of them are. Appending a batch that is already stored,
event for event, is a no-op (a retry after a lost answer); any other overlap
or gap raises. Recovery reads each stream back in ``seq`` order.

``InMemoryJournal`` keeps events in a dict; it is durable for as long as the
object lives, which is what tests of restarts within one process need. The
PostgreSQL journal implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs
import trio

from trading_engine.core.events import Journaled
from trading_engine.errors import TradingEngineError

__all__ = ["InMemoryJournal", "Journal", "Snapshot", "StorageUnavailable"]


class StorageUnavailable(TradingEngineError):
    """Raised when the journal cannot be reached; nothing of the failed call was written."""

    code = "storage_unavailable"


@attrs.frozen
class Snapshot:
    """The engine's state after every event up to ``position`` (in commit order)."""

    position: int
    """The journal position of the last event the state holds (``Journal.read_since``)."""
    tips: dict[str, int]
    """Each stream's last ``seq`` at ``position``: a journal that disagrees is not its journal."""
    version: str
    """Which code wrote ``state``: a snapshot is read only by the same version."""
    state: bytes | bytearray
    """The actors' state, pickled; a ``bytearray`` when loaded from PostgreSQL, where
    it is put together from chunks."""
    events: int
    """How many events the state holds (for operators; recovery replays the rest)."""


class Journal(Protocol):
    async def append(self, batch: Sequence[tuple[str, Sequence[Journaled]]]) -> None:
        """Make every event of ``batch`` (stream, events) durable, all or none."""
        ...

    async def ping(self) -> None:
        """Raise ``StorageUnavailable`` unless the journal answers now."""
        ...

    async def streams(self) -> list[str]:
        """The names of every stream that has events."""
        ...

    async def read(self, stream: str, after_seq: int = 0) -> list[Journaled]:
        """The events of ``stream`` with ``seq > after_seq``, in order."""
        ...

    async def read_all(self) -> list[tuple[str, Journaled]]:
        """Every event of every stream, in the order the batches were committed."""
        ...

    async def read_since(self, position: int = 0) -> tuple[list[tuple[str, Journaled]], int]:
        """The events committed after ``position``, in commit order, and the position of
        the last one (``position`` itself if there are none)."""
        ...

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` (and drop older ones but the one before it)."""
        ...

    async def load_snapshot(self, version: str) -> Snapshot | None:
        """The newest snapshot of ``version`` whose tips this journal still holds, or None."""
        ...


class InMemoryJournal:
    """A journal in memory, with a switch that makes it unavailable (for tests)."""

    def __init__(self) -> None:
        self._streams: dict[str, list[Journaled]] = {}
        self._log: list[tuple[str, Journaled]] = []
        self._snapshots: list[tuple[Snapshot, dict[str, Journaled]]] = []
        self.available = True
        self.batches = 0
        self.events = 0

    async def ping(self) -> None:
        await trio.lowlevel.checkpoint()
        if not self.available:
            raise StorageUnavailable("the in-memory journal is switched off")

    async def append(self, batch: Sequence[tuple[str, Sequence[Journaled]]]) -> None:
        await trio.lowlevel.checkpoint()
        if not self.available:
            raise StorageUnavailable("the in-memory journal is switched off")
        last = {
            stream: (e[-1].seq if (e := self._streams.get(stream)) else 0) for stream, _ in batch
        }
        if self._already_written(batch, last):
            return  # a retry of a batch that was written: nothing to do, as in PostgreSQL
        for stream, events in batch:
            # Each batch of a stream comes from its one writer in seq order:
            # its two ends tell whether it follows on without a gap.
            if not events:
                continue
            first, end = events[0].seq, events[-1].seq
            if first != last[stream] + 1 or end != last[stream] + len(events):
                raise TradingEngineError(f"{stream}: seq {first} after {last[stream]}")
            last[stream] = end
        for stream, events in batch:
            self._streams.setdefault(stream, []).extend(events)
            self._log.extend((stream, event) for event in events)
            self.events += len(events)
        self.batches += 1

    def _already_written(
        self, batch: Sequence[tuple[str, Sequence[Journaled]]], last: dict[str, int]
    ) -> bool:
        """Whether every event of ``batch`` is stored already, exactly as given."""
        if not any(events and events[0].seq <= last[stream] for stream, events in batch):
            return False
        for stream, events in batch:
            stored = self._streams.get(stream, [])
            for event in events:
                if event.seq > len(stored) or stored[event.seq - 1] != event:
                    return False
        return True

    async def streams(self) -> list[str]:
        await trio.lowlevel.checkpoint()
        return sorted(self._streams)

    async def read(self, stream: str, after_seq: int = 0) -> list[Journaled]:
        await trio.lowlevel.checkpoint()
        events = self._streams.get(stream, [])
        return [e for e in events if e.seq > after_seq]

    async def read_all(self) -> list[tuple[str, Journaled]]:
        await trio.lowlevel.checkpoint()
        return list(self._log)

    async def read_since(self, position: int = 0) -> tuple[list[tuple[str, Journaled]], int]:
        await trio.lowlevel.checkpoint()
        return self._log[position:], max(position, len(self._log))

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        await trio.lowlevel.checkpoint()
        tips = self._tip_events(snapshot)
        if tips is None:
            raise TradingEngineError("the journal does not hold this snapshot's tips")
        self._snapshots = [*self._snapshots[-1:], (snapshot, tips)]

    async def load_snapshot(self, version: str) -> Snapshot | None:
        await trio.lowlevel.checkpoint()
        for snapshot, tips in reversed(self._snapshots):
            if snapshot.version == version and self._tip_events(snapshot) == tips:
                return snapshot
        return None

    def _tip_events(self, snapshot: Snapshot) -> dict[str, Journaled] | None:
        """The last event of each stream up to the snapshot's position, if they are its tips
        (kept at save and compared at load, as PostgreSQL compares the tips' hashes)."""
        if snapshot.position > len(self._log):
            return None
        tips = dict(self._log[: snapshot.position])  # the last event of each stream
        if {stream: event.seq for stream, event in tips.items()} != snapshot.tips:
            return None
        return tips
