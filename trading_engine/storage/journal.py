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

import trio

from trading_engine.core.events import Journaled
from trading_engine.errors import TradingEngineError

__all__ = ["InMemoryJournal", "Journal", "StorageUnavailable"]


class StorageUnavailable(TradingEngineError):
    """Raised when the journal cannot be reached; nothing of the failed call was written."""

    code = "storage_unavailable"


class Journal(Protocol):
    async def append(self, batch: Sequence[tuple[str, Sequence[Journaled]]]) -> None:
        """Make every event of ``batch`` (stream, events) durable, all or none."""
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


class InMemoryJournal:
    """A journal in memory, with a switch that makes it unavailable (for tests)."""

    def __init__(self) -> None:
        self._streams: dict[str, list[Journaled]] = {}
        self._log: list[tuple[str, Journaled]] = []
        self.available = True
        self.batches = 0
        self.events = 0

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
