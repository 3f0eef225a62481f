"""Listen keys of the user data stream: which user a key streams, until when.

``POST /api/v3/userDataStream`` makes one (or answers the user's live one,
as Binance does), ``PUT`` keeps it alive for another 60 minutes, ``DELETE``
closes it. A key not kept alive expires 60 minutes after it was made or last
kept alive. The WebSocket handler of ``/ws/<listenKey>`` looks a key up with
``ListenKeys.user_of`` (the app's ``ListenKeys``: ``app.config[ListenKeys.CONFIG_KEY]``)
and watches ``expired`` to send ``listenKeyExpired``.

Keys are random (256 bits), live in this process only (a restart, or another
front-end process, does not know them: clients make a new one, as after an
expiry), and are never logged.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from trading_engine.core.ids import UserId

__all__ = ["KEEP_ALIVE_NS", "ListenKeys"]

KEEP_ALIVE_NS = 60 * 60 * 1_000_000_000
"""How long a listen key lives without a keep-alive: 60 minutes."""


class ListenKeys:
    """The live listen keys: key to ``(user, expiry)``."""

    CONFIG_KEY = "BINANCE_LISTEN_KEYS"

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._keys: dict[str, tuple[UserId, int]] = {}

    def create(self, user: UserId) -> str:
        """The user's live key, kept alive, or a new one."""
        self._forget_expired()
        for key, (owner, _) in self._keys.items():
            if owner == user:
                self._keys[key] = (user, self._clock() + KEEP_ALIVE_NS)
                return key
        key = secrets.token_urlsafe(45)
        self._keys[key] = (user, self._clock() + KEEP_ALIVE_NS)
        return key

    def keep_alive(self, key: str, user: UserId) -> bool:
        """Extend ``user``'s key by 60 minutes; False if it is not theirs or not live."""
        if self.user_of(key) != user:
            return False
        self._keys[key] = (user, self._clock() + KEEP_ALIVE_NS)
        return True

    def close(self, key: str, user: UserId) -> bool:
        """Forget ``user``'s key; False if it is not theirs or not live."""
        if self.user_of(key) != user:
            return False
        del self._keys[key]
        return True

    def user_of(self, key: str) -> UserId | None:
        """The user whose events ``key`` streams, or None if it is unknown or expired."""
        found = self._keys.get(key)
        if found is None or self.expired(key):
            return None
        return found[0]

    def expired(self, key: str) -> bool:
        """True once ``key`` is past its expiry (or was never made, or was closed)."""
        found = self._keys.get(key)
        return found is None or found[1] <= self._clock()

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [k for k, (_, until) in self._keys.items() if until <= now]:
            del self._keys[key]
