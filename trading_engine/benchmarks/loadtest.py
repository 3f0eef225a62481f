"""``trading-engine loadtest --url URL``: real HTTP and WebSocket load against a server.

It creates users through the admin API, funds them, then sends limit orders
around a mid price (about a third cross) at a fixed rate (``--rate``) or as
fast as ``--concurrency`` connections allow, for ``--duration`` seconds,
while ``--subscribers`` WebSocket clients follow ``book.SYMBOL``. It prints
one JSON object: orders per second achieved, latency percentiles, errors by
status, and WebSocket delivery latency (the book event's engine time to its
arrival at the subscriber; same machine, same clock) with any ``seq`` gaps.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

__all__ = ["run_loadtest"]


def _pct(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return round(values[min(len(values) - 1, int(fraction * len(values)))] * 1000, 3)


async def _setup(api: httpx.AsyncClient, users: int, symbol: str) -> list[str]:
    symbols = (await api.get("/symbols")).json()["symbols"]
    listed = next((s for s in symbols if s["symbol"] == symbol), None)
    if listed is None:
        raise SystemExit(f"loadtest: no symbol {symbol} on the server")
    keys = []
    stamp = int(time.time())
    for index in range(users):
        user = f"load_{stamp}_{index}"
        created = await api.post("/admin/users", json={"user_id": user})
        created.raise_for_status()
        keys.append(created.json()["api_key"])
        for asset, amount in (
            (listed["quote_asset"], "100000000"),
            (listed["base_asset"], "100000"),
        ):
            deposit = await api.post(
                "/admin/deposits", json={"user_id": user, "asset": asset, "amount": amount}
            )
            deposit.raise_for_status()
    return keys


async def loadtest(
    url: str, admin_key: str, *, symbol: str, users: int, rate: float, duration: float,
    concurrency: int, subscribers: int, seed: int,
) -> dict[str, Any]:  # fmt: skip
    base = url.rstrip("/") + "/api/v1/trading"
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": admin_key}, timeout=30, limits=limits
    ) as api:
        keys = await _setup(api, users, symbol)
        book = (await api.get(f"/orderbook/{symbol}", params={"depth": 1})).json()
        mid = 30_000
        if book["bids"] and book["asks"]:
            mid = int((float(book["bids"][0][0]) + float(book["asks"][0][0])) / 2)
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        deliveries: list[float] = []
        gaps = 0
        stop = trio.Event()
        interval = 1.0 / rate if rate > 0 else 0.0
        rng = random.Random(seed)  # noqa: S311 - a seeded workload
        tokens = trio.Semaphore(concurrency)

        async def one(key: str) -> None:
            buy = rng.random() < 0.5
            offset = rng.randint(-3, 6)
            price = mid - offset if buy else mid + offset
            body = {"symbol": symbol, "side": "buy" if buy else "sell", "type": "limit",
                    "quantity": "0.001", "price": str(price)}  # fmt: skip
            started = time.perf_counter()
            try:
                response = await api.post("/orders", json=body, headers={"X-API-Key": key})
                statuses[response.status_code] += 1
                latencies.append(time.perf_counter() - started)
            except httpx.HTTPError:
                statuses[0] += 1
            finally:
                tokens.release()

        async def subscriber() -> None:
            nonlocal gaps
            ws_url = url.replace("http", "ws", 1).rstrip("/") + "/api/v1/trading/ws"
            async with open_websocket_url(ws_url) as ws:
                await ws.send_message(
                    json.dumps({"op": "subscribe", "channels": [f"book.{symbol}"]})
                )
                last = None
                while not stop.is_set():
                    with trio.move_on_after(0.5):
                        message = json.loads(await ws.get_message())
                        if message.get("type") == "snapshot":
                            last = message["seq"]
                        elif message.get("type") == "delta":
                            if last is not None and message["prev_seq"] != last:
                                gaps += 1
                            last = message["seq"]
                            deliveries.append(time.time() - message["ts"] / 1e9)

        async with trio.open_nursery() as nursery:
            for _ in range(subscribers):
                nursery.start_soon(subscriber)
            await trio.sleep(0.5 if subscribers else 0)
            started = time.perf_counter()
            sent = 0
            deadline = started + duration
            while time.perf_counter() < deadline:
                await tokens.acquire()
                nursery.start_soon(one, keys[sent % len(keys)])
                sent += 1
                if interval:
                    await trio.sleep_until(
                        trio.current_time()
                        + max(0.0, started + sent * interval - time.perf_counter())
                    )
            for _ in range(concurrency):
                await tokens.acquire()
            seconds = time.perf_counter() - started
            await trio.sleep(0.5)
            stop.set()
    return {
        "url": url,
        "offered_rate": rate or "max",
        "orders": len(latencies),
        "seconds": round(seconds, 3),
        "orders_per_sec": round(len(latencies) / seconds),
        "p50_ms": _pct(latencies, 0.50),
        "p99_ms": _pct(latencies, 0.99),
        "p999_ms": _pct(latencies, 0.999),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "subscribers": subscribers,
        "ws_deltas": len(deliveries),
        "ws_delivery_p50_ms": _pct(deliveries, 0.50),
        "ws_delivery_p99_ms": _pct(deliveries, 0.99),
        "ws_seq_gaps": gaps,
    }


def run_loadtest(**kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = trio.run(lambda: loadtest(**kwargs))
    return result
