"""``trading-engine loadtest --mode batch``: batches of orders over REST.

``connections`` clients, each on one keep-alive HTTP connection with its own
key (keys rotate when there are fewer), post ``POST /orders/batch`` of
``batch_size`` orders of the ``OrderFlow`` one after the other for
``duration`` seconds. A client that holds more than ``max_resting`` resting
orders cancels them all with ``DELETE /orders`` (as a market maker pulls its
quotes: one call, where ``DELETE /orders/batch`` cancels one order after
another) before its next batch, so the book stays bounded. The figure is
``orders_per_sec``: orders answered 201 per second; ``batch_*_ms`` is the
time of one batch's round trip.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import msgspec
import trio

from trading_engine.benchmarks.orderflow import OrderFlow, Resting, latency_ms
from trading_engine.benchmarks.ws_orders import Answer

__all__ = ["batch_orders"]


class _Results(msgspec.Struct):
    results: list[Answer]


_decode = msgspec.json.Decoder(_Results).decode


async def batch_orders(
    url: str, keys: list[str], flows: list[OrderFlow], *, duration: float, batch_size: int,
    max_resting: int,
) -> dict[str, Any]:  # fmt: skip
    """Run ``len(flows)`` clients (see the module docstring); the figures as a dict."""
    base = url.rstrip("/") + "/api/v1/trading"
    statuses: Counter[str] = Counter()
    order_statuses: Counter[str] = Counter()
    round_trips: list[float] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    start = trio.current_time()
    deadline = start + duration
    last = start
    cancelled = 0

    async def client(index: int) -> None:
        nonlocal last, cancelled
        flow, resting = flows[index], Resting(max_resting)
        headers = {"X-API-Key": keys[index % len(keys)]}
        async with httpx.AsyncClient(
            base_url=base, headers=headers, timeout=30, limits=limits
        ) as http:
            while trio.current_time() < deadline:
                if resting.over():
                    resting.ids.clear()
                    pulled = await http.delete("/orders")
                    statuses[f"cancel_all {pulled.status_code}"] += 1
                    cancelled += len(pulled.json().get("cancelled", ()))
                sent = trio.current_time()
                placed = await http.post("/orders/batch", json={"orders": flow.batch(batch_size)})
                last = trio.current_time()
                round_trips.append(last - sent)
                if placed.status_code != 200:
                    statuses[f"batch {placed.status_code}"] += 1
                    continue
                for item in _decode(placed.content).results:
                    statuses[f"order {item.status}"] += 1
                    if item.data is not None:
                        order_statuses[item.data.status] += 1
                        resting.record(item.data.order_id, item.data.status)

    async with trio.open_nursery() as nursery:
        for index in range(len(flows)):
            nursery.start_soon(client, index)
    seconds = max(last - start, 1e-9)
    return {
        "mode": "batch",
        "connections": len(flows),
        "batch_size": batch_size,
        "seconds": round(seconds, 3),
        "batches": len(round_trips),
        "orders": sum(v for k, v in statuses.items() if k.startswith("order ")),
        "orders_per_sec": round(statuses["order 201"] / seconds),
        **latency_ms(round_trips, "batch_"),
        "cancelled": cancelled,
        "statuses": dict(sorted(statuses.items())),
        "order_statuses": dict(sorted(order_statuses.items())),
    }
