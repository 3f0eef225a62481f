"""What a WebSocket client may send: the HTTP rate limits per message, and failed
``auth`` slowed down.

Every client message takes a token from the limiter HTTP uses
(``api/limits.py``) and from the same bucket: the client address's
(``ip:<address>``) until the connection authenticates, then its user's
(``user:<id>``, or ``admin``), shared with that user's HTTP requests. An
``auth`` on a connection already authenticated takes one from the address's
bucket as well, so that every key the server checks costs its address a
token, as a request with a wrong key does over HTTP, however many
connections carry the guesses. A message that finds its bucket empty is
answered ``rate_limited`` and not acted on; a connection that has
``FLOOD_REFUSALS`` messages refused within ``FLOOD_SECONDS`` is closed.

With ``REDIS_URL`` the limiter takes a busy bucket's tokens ahead
(``storage.limits.Leases``), so that a connection sending fast is not held to
one message per Redis round trip.

A failed ``auth`` is answered only after a delay that doubles with each
failure in a row on the connection, from ``AUTH_DELAY`` up to
``MAX_AUTH_DELAY`` seconds; the connection reads nothing meanwhile. It
applies with rate limits off too.
"""

from __future__ import annotations

import math

import trio

from trading_engine.storage.limits import Limiter

__all__ = [
    "AUTH_DELAY",
    "FLOOD_REFUSALS",
    "FLOOD_SECONDS",
    "MAX_AUTH_DELAY",
    "MessageLimits",
]

FLOOD_REFUSALS = 100
"""Refused messages within ``FLOOD_SECONDS`` that close the connection."""
FLOOD_SECONDS = 10.0
AUTH_DELAY = 0.1
"""Seconds before the answer to a connection's first failed ``auth`` in a row."""
MAX_AUTH_DELAY = 5.0
"""The longest the answer to a failed ``auth`` waits."""


class MessageLimits:
    """One connection's share of the rate limits (see the module's docstring)."""

    def __init__(self, limiter: Limiter | None, address: str | None) -> None:
        self._limiter = limiter
        self._address = f"ip:{address}"
        self.bucket = self._address
        """The bucket a message takes its token from."""
        self._refused = 0
        self._since = -math.inf
        self._failures = 0

    async def take(self) -> float:
        """0 if the message may be acted on, else the seconds until a token is back."""
        if self._limiter is None:
            return 0.0
        return await self._limiter.take(self.bucket)

    async def take_for_auth(self) -> float:
        """As ``take``, for the address's token an ``auth`` takes once authenticated."""
        if self._limiter is None or self.bucket == self._address:
            return 0.0  # the message already took it
        return await self._limiter.take(self._address)

    def refused(self) -> bool:
        """Count a refused message: True once ``FLOOD_REFUSALS`` fell within ``FLOOD_SECONDS``."""
        now = trio.current_time()
        if now - self._since > FLOOD_SECONDS:
            self._since, self._refused = now, 0
        self._refused += 1
        return self._refused >= FLOOD_REFUSALS

    async def failed_auth(self) -> None:
        """Wait before the answer to a failed ``auth``: twice as long as for the last in a row."""
        self._failures += 1
        doublings = min(self._failures - 1, 16)  # past MAX_AUTH_DELAY long before
        await trio.sleep(min(AUTH_DELAY * 2**doublings, MAX_AUTH_DELAY))

    def authenticated(self, bucket: str) -> None:
        """From now on messages take from ``bucket``; failures in a row start again."""
        self.bucket = bucket
        self._failures = 0
