"""The journal actor: group commit, then release.

It drains every ``Commit`` waiting in its inbox, writes all their events in
one ``Journal.append`` (one transaction), and only then fans the events out
to the actors downstream (risk first, so that funds from a fill are there
before the client hears of it) and answers the replies. A burst becomes one
write; a lone command is written at once. While a write is under way the
next batch gathers in the inbox, so the batch size follows the load.

Before it takes a batch, the actor lets the tasks that can run go a few
steps further (``gather``, three scheduler passes): right after a write is
released, the symbol actors are still finishing commands and the settlement
actor is posting the trades it just heard of, and their commits would
otherwise make a write of a few events each, just ahead of the big one. Idle,
that costs no time; in the engine benchmark it made a quarter fewer writes
and about 4% more orders a second (docs/decisions/0001-group-commit-and-gathering.md).

If the journal is unreachable it keeps the batch, tells the risk actor that
storage is unavailable (which then refuses new orders with 503), and retries
with backoff until the write goes through. Nothing is answered that was not
written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs
import trio

from trading_engine.actors.mailbox import receive_batch
from trading_engine.actors.messages import (
    Commit,
    Committed,
    CommittedBatch,
    StorageStatus,
)
from trading_engine.core.account_events import LEDGER_STREAM
from trading_engine.storage.journal import Journal, StorageUnavailable

__all__ = ["JournalActor", "JournalStats"]

log = logging.getLogger(__name__)


@attrs.define
class JournalStats:
    """Counters for metrics and the engine benchmark."""

    batches: int = 0
    commands: int = 0
    events: int = 0
    largest_batch: int = 0
    failures: int = 0
    batch_sizes: dict[int, int] = attrs.field(factory=dict)
    """Histogram: commits per write, by power-of-two bucket."""


class JournalActor:
    def __init__(
        self,
        journal: Journal,
        inbox: trio.MemoryReceiveChannel[Commit],
        downstream: Sequence[trio.MemorySendChannel[CommittedBatch]],
        status: trio.MemorySendChannel[StorageStatus],
        *,
        max_batch: int = 5000,
        gather: int = 3,
    ) -> None:
        self.journal = journal
        self._inbox = inbox
        self._downstream = downstream
        self._status = status
        self._max_batch = max_batch
        self._gather = gather
        self.stats = JournalStats()
        self.available = True

    async def run(self) -> None:
        while (
            batch := await receive_batch(self._inbox, self._max_batch, self._gather)
        ) is not None:
            try:
                await self._write(batch)
            except BaseException:
                for commit in batch:
                    for reply, _ in commit.replies:
                        reply.close()
                raise
            self._release(batch)

    async def _write(self, batch: list[Commit]) -> None:
        records = [(c.stream, c.events) for c in batch if c.events]
        if not records:
            return
        delay = 0.05
        while True:
            try:
                await self.journal.append(records)
            except StorageUnavailable as exc:
                self.stats.failures += 1
                if self.available:
                    self.available = False
                    log.warning("journal unavailable, holding %d commits: %s", len(batch), exc)
                    await self._status.send(StorageStatus(available=False, detail=str(exc)))
                await trio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            break
        if not self.available:
            self.available = True
            log.warning("journal available again")
            await self._status.send(StorageStatus(available=True))
        stats = self.stats
        stats.batches += 1
        stats.commands += len(batch)
        stats.events += sum(len(events) for _, events in records)
        stats.largest_batch = max(stats.largest_batch, len(batch))
        bucket = 1 << (len(batch) - 1).bit_length()
        stats.batch_sizes[bucket] = stats.batch_sizes.get(bucket, 0) + 1

    def _release(self, batch: list[Commit]) -> None:
        # The ledger's own postings go back to no one: the settlement actor made them.
        commits = tuple(
            Committed(c.stream, c.events) for c in batch if c.events and c.stream != LEDGER_STREAM
        )
        if commits:
            message = CommittedBatch(commits)
            for channel in self._downstream:
                # Downstream inboxes are unbounded: the journal never waits on a
                # reader, so no cycle of full inboxes can stall the engine.
                channel.send_nowait(message)
        for commit in batch:
            for reply, value in commit.replies:
                reply.send(value)
