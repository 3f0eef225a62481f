"""The fan-out actor: market-data messages to Redis, a pipeline per wake-up.

It reads ``(channel, text)`` pairs that the market-data actor offers it
(never waiting: a full outbox drops messages there) and publishes them with
``storage.redis.RedisPublisher``. A failed publish loses that batch, counted
in ``failed``; subscribers of other front ends see the ``seq`` gap and
resubscribe.
"""

from __future__ import annotations

import logging

import trio

from trading_engine.actors.mailbox import receive_batch
from trading_engine.storage.journal import StorageUnavailable
from trading_engine.storage.redis import RedisPublisher

__all__ = ["FanoutActor"]

log = logging.getLogger(__name__)


class FanoutActor:
    def __init__(
        self, publisher: RedisPublisher, inbox: trio.MemoryReceiveChannel[tuple[str, str]]
    ) -> None:
        self._publisher = publisher
        self._inbox = inbox
        self.published = 0
        self.failed = 0

    async def run(self) -> None:
        while (batch := await receive_batch(self._inbox, 5000)) is not None:
            try:
                await self._publisher.publish(batch)
            except StorageUnavailable as exc:
                self.failed += len(batch)
                log.warning("%d market-data messages not published: %s", len(batch), exc)
            else:
                self.published += len(batch)
