"""ccxt's real ``binance`` class pointed at a test server, run in a worker thread."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import ccxt
import httpx
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


def signed(params: dict[str, Any], secret: str, *, at: int | None = None) -> str:
    """``params`` with ``timestamp`` (now, or ``at``) as a query string, HMAC-signed with
    ``secret``."""
    query = urlencode({**params, "timestamp": at or int(time.time() * 1000)})
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


async def send(
    server: Server, method: str, path: str, *, query: str = "", body: str = "",
    key: str | None = None,
) -> httpx.Response:  # fmt: skip
    """A raw request to ``/api/v3/{path}``, with ``X-MBX-APIKEY: key`` if given."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if key is not None:
        headers["X-MBX-APIKEY"] = key
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        return await http.request(
            method, f"/api/v3/{path}" + (f"?{query}" if query else ""), content=body,
            headers=headers,
        )  # fmt: skip


async def signed_request(
    server: Server, user: str, method: str, path: str, **params: Any
) -> httpx.Response:
    """A request to ``/api/v3/{path}`` signed as ``user`` (a demo user): ``params`` in the
    query of a GET, else in the body."""
    query = signed(params, demo_secret(ADMIN, user))
    where = {"query": query} if method == "GET" else {"body": query}
    return await send(server, method, path, key=server.keys[user], **where)


async def limit_order(
    server: Server, user: str, side: str, price: str, quantity: str = "0.1", **extra: str
) -> None:
    """A limit order of ``user`` in BTC_AIT through ``/api/v1`` (the engine's own dialect),
    with ``extra`` fields in its body."""
    async with server.client(server.keys[user]) as http:
        body = {"symbol": "BTC_AIT", "side": side, "type": "limit", "price": price,
                "quantity": quantity, **extra}  # fmt: skip
        response = await http.post("/orders", json=body)
        assert response.status_code == 201, response.text
