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
import math
import random
import ssl
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
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": admin_key}, timeout=30
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
        sent = 0
        deadline = math.inf
        # One order per tick. A tick waits while every worker is busy, so a rate
        # that is not kept up with is still offered, late and in bursts.
        ticks_out, ticks = trio.open_memory_channel[None](math.inf if interval else 0)

        # A client, and so a connection pool, per worker: httpx's pool scans all of
        # its connections for every request, and with one pool of 64 this client
        # spent more CPU than the server it measured. They share one TLS context:
        # each would load the CA bundle (about 65 ms) otherwise.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        tls = ssl.create_default_context()

        async def worker(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            nonlocal sent
            async with httpx.AsyncClient(
                base_url=base, timeout=30, limits=limits, verify=tls
            ) as client:
                task_status.started()
                async for _ in ticks:
                    if time.perf_counter() < deadline:
                        sent += 1
                        await one(client, keys[sent % len(keys)])

        async def one(client: httpx.AsyncClient, key: str) -> None:
            buy = rng.random() < 0.5
            offset = rng.randint(-3, 6)
            price = mid - offset if buy else mid + offset
            body = {"symbol": symbol, "side": "buy" if buy else "sell", "type": "limit",
                    "quantity": "0.001", "price": str(price)}  # fmt: skip
            started = time.perf_counter()
            try:
                response = await client.post("/orders", json=body, headers={"X-API-Key": key})
                statuses[response.status_code] += 1
                latencies.append(time.perf_counter() - started)
            except httpx.HTTPError:
                statuses[0] += 1

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
                            # ts is seconds as a decimal string; float is fine for a latency
                            deliveries.append(time.time() - float(message["ts"]))

        async with trio.open_nursery() as nursery:
            for _ in range(subscribers):
                nursery.start_soon(subscriber)
            await trio.sleep(0.5 if subscribers else 0)
            async with trio.open_nursery() as senders:
                for _ in range(concurrency):
                    await senders.start(worker)
                started = time.perf_counter()
                deadline = started + duration
                with ticks_out:
                    ticked = 0
                    while (now := time.perf_counter()) < deadline:
                        await ticks_out.send(None)
                        ticked += 1
                        if interval:
                            await trio.sleep(max(0.0, started + ticked * interval - now))
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
