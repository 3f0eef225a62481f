"""``trading-engine loadtest --url URL``: real HTTP and WebSocket load against a server.

``--mode`` chooses the load; each creates fresh funded users through the
admin API first and prints one JSON object:

- ``http`` (the default, below): single orders over REST with WebSocket
  subscribers timing market-data delivery;
- ``ws``: orders over the WebSocket, pipelined, closed loop or at a fixed
  rate (``ws_orders.py``); ``ws-batch`` the same with ``orders.place_batch``;
- ``batch``: batches of orders over REST (``batches.py``);
- ``cancel-on-disconnect``: how soon a dropped connection's orders are
  cancelled (``disconnect.py``).

In ``http`` mode it sends limit orders
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

from trading_engine.benchmarks.accounts import create_users, markets
from trading_engine.benchmarks.batches import batch_orders
from trading_engine.benchmarks.disconnect import cancel_on_disconnect
from trading_engine.benchmarks.orderflow import OrderFlow, percentile_ms
from trading_engine.benchmarks.ws_orders import ws_orders

__all__ = ["run_loadtest"]


async def loadtest(
    url: str, admin_key: str, *, symbol: str, users: int, rate: float, duration: float,
    concurrency: int, subscribers: int, seed: int,
) -> dict[str, Any]:  # fmt: skip
    base = url.rstrip("/") + "/api/v1/trading"
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": admin_key}, timeout=30
    ) as api:
        keys = await create_users(api, users, [symbol])
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
    latencies.sort()
    deliveries.sort()
    return {
        "url": url,
        "offered_rate": rate or "max",
        "orders": len(latencies),
        "seconds": round(seconds, 3),
        "orders_per_sec": round(len(latencies) / seconds),
        "p50_ms": percentile_ms(latencies, 0.50),
        "p99_ms": percentile_ms(latencies, 0.99),
        "p999_ms": percentile_ms(latencies, 0.999),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "subscribers": subscribers,
        "ws_deltas": len(deliveries),
        "ws_delivery_p50_ms": percentile_ms(deliveries, 0.50),
        "ws_delivery_p99_ms": percentile_ms(deliveries, 0.99),
        "ws_seq_gaps": gaps,
    }


async def order_entry(
    url: str, admin_key: str, *, mode: str, symbols: list[str], users: int, duration: float,
    rate: float, connections: int, in_flight: int, batch_size: int, max_resting: int,
    orders: int, cut: bool, seed: int,
) -> dict[str, Any]:  # fmt: skip
    """The order-entry modes (see the module docstring)."""
    base = url.rstrip("/") + "/api/v1/trading"
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": admin_key}, timeout=30
    ) as api:
        found = await markets(api, symbols)
        keys = await create_users(api, users, symbols)
    if mode == "cancel-on-disconnect":
        return await cancel_on_disconnect(url, keys[0], found[0], orders=orders, cut=cut, wait=2.0)
    flows = [OrderFlow.seeded(found, seed * 1_000 + i) for i in range(connections)]
    if mode == "batch":
        return await batch_orders(
            url, keys, flows, duration=duration, batch_size=batch_size, max_resting=max_resting
        )
    return await ws_orders(
        url, keys, flows, duration=duration, in_flight=in_flight, rate=rate,
        max_resting=max_resting, batch_size=batch_size if mode == "ws-batch" else 1,
    )  # fmt: skip


def run_loadtest(mode: str = "http", **kwargs: Any) -> dict[str, Any]:
    """Run ``mode``'s load; ``kwargs`` are ``loadtest``'s (``http``) or ``order_entry``'s."""
    if mode == "http":
        result: dict[str, Any] = trio.run(lambda: loadtest(**kwargs))
    else:
        result = trio.run(lambda: order_entry(mode=mode, **kwargs))
    return result
