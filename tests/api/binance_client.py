"""ccxt's real ``binance`` class pointed at a test server, run in a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import ccxt
import trio

from tests.api.conftest import ADMIN, Server
from trading_engine.serve import demo_secret

T = TypeVar("T")

SPOT_ONLY = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}
"""The options that keep ccxt on the spot API (docs/ccxt.md)."""


def client(server: Server, user: str | None = "demo_alice", **config: Any) -> ccxt.binance:
    """ccxt's binance for ``user`` (a demo user, whose key and secret are known), or
    public only."""
    api = server.url + "/api/v3"
    settings: dict[str, Any] = {
        "urls": {"api": {"public": api, "private": api}},
        "options": dict(SPOT_ONLY),
        "enableRateLimit": False,
        "timeout": 10_000,
    }
    if user is not None:
        settings["apiKey"] = server.keys[user]
        settings["secret"] = demo_secret(ADMIN, user)
    settings.update(config)
    return ccxt.binance(settings)


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in a worker thread (ccxt's sync client blocks)."""
    return await trio.to_thread.run_sync(lambda: function(*args, **kwargs))
