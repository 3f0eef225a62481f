"""The fan-out actor: market-data messages to Redis, one call per wake-up.

It reads ``(channel, text)`` pairs that the market-data actor offers it
(never waiting: a full outbox drops messages there) and publishes them
through a ``storage.publisher.Publisher`` (``RedisPublisher``, which
``serve.py`` makes). A failed publish loses that batch, counted in
``failed``; subscribers of other front ends see the ``seq`` gap and
resubscribe. An outage is logged twice, when publishing starts failing and
when it works again (with what was lost meanwhile), not once a batch.
``Engine.published`` reads the counts (``Published``), for ``/metrics``.
"""

from __future__ import annotations

import logging

import attrs
import trio

from trading_engine.actors.mailbox import receive_batch
from trading_engine.storage.journal import StorageUnavailable
from trading_engine.storage.publisher import Publisher

__all__ = ["FanoutActor", "Published"]

log = logging.getLogger(__name__)


@attrs.frozen
class Published:
    """Market data sent to Redis so far, in messages."""

    published: int
    failed: int
    """Lost because Redis did not take them."""
    dropped: int
    """Dropped by the market-data actor: the fan-out actor's outbox was full."""


class FanoutActor:
    def __init__(
        self, publisher: Publisher, inbox: trio.MemoryReceiveChannel[tuple[str, str]]
    ) -> None:
        self._publisher = publisher
        self._inbox = inbox
        self.published = 0
        self.failed = 0

    async def run(self) -> None:
        failed_since: int | None = None  # ``failed`` when the outage began
        while (batch := await receive_batch(self._inbox, 5000)) is not None:
            try:
                await self._publisher.publish(batch)
            except StorageUnavailable as exc:
                if failed_since is None:
                    failed_since = self.failed
                    log.warning("market data is not published until Redis answers: %s", exc)
                self.failed += len(batch)
            else:
                if failed_since is not None:
                    log.warning(
                        "market data is published again; %d messages were not",
                        self.failed - failed_since,
                    )
                    failed_since = None
                self.published += len(batch)
