"""What a load generator needs from the server before it starts: funded users, markets.

Through the admin API, as an operator would: ``create_users`` makes fresh
users, each funded in every asset of the markets traded, and returns their
API keys; ``markets`` turns listed symbols into ``Market``s, each with its
book's mid price (``DEFAULT_MIDS`` on an empty book) and an order of ten
lots.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import httpx

from trading_engine.benchmarks.orderflow import Market

__all__ = ["DEFAULT_MIDS", "create_users", "markets"]

DEFAULT_MIDS = {"ETH_AIT": 2_000}
"""A symbol's mid price when its book is empty; 30,000 for any other."""
_FUNDS = {"quote": "100000000", "base": "100000"}


async def markets(api: httpx.AsyncClient, symbols: Sequence[str]) -> list[Market]:
    """The listed ``symbols`` as markets; ``SystemExit`` names one that is not listed."""
    listed = await _listed(api, symbols)
    found = []
    for symbol in symbols:
        book = (await api.get(f"/orderbook/{symbol}", params={"depth": 1})).json()
        mid = DEFAULT_MIDS.get(symbol, 30_000)
        if book["bids"] and book["asks"]:
            mid = int((Decimal(book["bids"][0][0]) + Decimal(book["asks"][0][0])) / 2)
        quantity = Decimal(listed[symbol]["lot_size"]) * 10
        found.append(Market(symbol, mid, str(quantity.normalize())))
    return found


async def create_users(
    api: httpx.AsyncClient, count: int, symbols: Sequence[str], prefix: str = "load"
) -> list[str]:
    """``count`` new users funded in every asset ``symbols`` trade: their API keys.
    ``SystemExit`` names a symbol that is not listed."""
    listed = await _listed(api, symbols)
    funds: dict[str, str] = {}
    for symbol in symbols:
        funds[listed[symbol]["quote_asset"]] = _FUNDS["quote"]
        funds[listed[symbol]["base_asset"]] = _FUNDS["base"]
    keys = []
    stamp = time.time_ns() // 1_000_000
    for index in range(count):
        user = f"{prefix}_{stamp}_{index}"
        created = await api.post("/admin/users", json={"user_id": user})
        created.raise_for_status()
        keys.append(created.json()["api_key"])
        for asset, amount in funds.items():
            deposit = await api.post(
                "/admin/deposits", json={"user_id": user, "asset": asset, "amount": amount}
            )
            deposit.raise_for_status()
    return keys


async def _listed(api: httpx.AsyncClient, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The server's listing of each of ``symbols``; ``SystemExit`` names one not listed."""
    listed = {s["symbol"]: s for s in (await api.get("/symbols")).json()["symbols"]}
    for symbol in symbols:
        if symbol not in listed:
            raise SystemExit(f"loadtest: no symbol {symbol} on the server")
    return listed
