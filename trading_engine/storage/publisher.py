"""The publisher port: where market data goes for other front-end processes.

The market-data actor hands each message it renders to the fan-out actor
(``actors/fanout.py``), which publishes batches through a ``Publisher``.
Redis's adapter is ``storage.redis.RedisPublisher``, which ``serve.py`` makes
for ``REDIS_URL``; without one, nothing is published.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Publisher"]


class Publisher(Protocol):
    async def publish(self, batch: list[tuple[str, str]]) -> None:
        """Publish each ``(channel, text)`` on its channel; raises ``StorageUnavailable``
        if it cannot (the batch is then lost, and subscribers see the ``seq`` gap)."""
        ...
