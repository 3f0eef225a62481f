"""ccxt.pro's real ``binance`` class pointed at a test server.

ccxt.pro runs on asyncio: each scenario is one coroutine function, run in a
worker thread on its own asyncio loop (``run_pro``), while the test's Trio
side serves and places orders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt.pro
import trio

from tests.api.binance_client import SPOT_ONLY
from tests.api.conftest import ADMIN, Server
from trading_engine.serve import demo_secret

T = TypeVar("T")


def pro_client(server: Server, user: str | None = "demo_alice") -> Any:
    """ccxt.pro's binance for ``user`` (a demo user), or public only; its REST and its
    WebSocket URLs are the server's."""
    api = server.url + "/api/v3"
    ws = server.url.replace("http://", "ws://")
    settings: dict[str, Any] = {
        "urls": {
            "api": {
                "public": api,
                "private": api,
                "ws": {"spot": ws + "/ws", "ws-api": {"spot": ws + "/ws-api/v3"}},
            }
        },
        "options": dict(SPOT_ONLY),
        "enableRateLimit": False,
        "timeout": 10_000,
    }
    if user is not None:
        settings["apiKey"] = server.keys[user]
        settings["secret"] = demo_secret(ADMIN, user)
    return ccxt.pro.binance(settings)


async def run_pro(scenario: Callable[[], Awaitable[T]]) -> T:
    """``await scenario()`` on a fresh asyncio loop in a worker thread."""
    return await trio.to_thread.run_sync(lambda: asyncio.run(_closing(scenario)))


async def _closing(scenario: Callable[[], Awaitable[T]]) -> T:
    return await asyncio.wait_for(scenario(), timeout=30)
