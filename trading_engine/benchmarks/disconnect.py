"""``trading-engine loadtest --mode cancel-on-disconnect``: how soon a dropped
connection's orders are cancelled.

A watcher connection of the user subscribes to its ``orders`` channel. A
second connection authenticates with ``"cancel_on_disconnect": true``,
places ``orders`` resting orders (bids a twentieth below the mid, pipelined) and,
once every one is acknowledged, is cut: its TCP connection reset (``cut``),
or closed with a close frame. The figure is ``close_to_last_cancel_ms``:
from the cut to the watcher's receipt of the last of those orders'
``OrderCancelled``; ``close_to_last_cancel_engine_ms`` is to that cancel's
engine time instead (same machine, same wall clock). Orders not cancelled
within ``wait`` seconds are counted and cancelled over REST at the end, so
that a run leaves nothing behind.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url, wrap_client_stream

from trading_engine.benchmarks.orderflow import Market
from trading_engine.benchmarks.ws_orders import authenticate, ws_url

__all__ = ["cancel_on_disconnect"]


async def cancel_on_disconnect(
    url: str, key: str, market: Market, *, orders: int, cut: bool, wait: float
) -> dict[str, Any]:
    """Run the measurement (see the module docstring); the figures as a dict."""
    feed = ws_url(url)
    placed: set[str] = set()
    cancelled: dict[str, tuple[float, float]] = {}  # order id: (received, engine time)
    everything = trio.Event()
    async with open_websocket_url(feed) as watcher, trio.open_nursery() as nursery:
        await authenticate(watcher, key)
        await watcher.send_message(json.dumps({"op": "subscribe", "channels": ["orders"]}))
        await _until(watcher, "snapshot")

        async def watch() -> None:
            while True:
                message = json.loads(await watcher.get_message())
                if message.get("event") == "OrderCancelled":
                    cancelled[message["order_id"]] = (time.time(), float(message["ts"]))
                    if placed and placed <= cancelled.keys():
                        everything.set()

        nursery.start_soon(watch)
        host, port = _address(url)
        stream = await trio.open_tcp_stream(host, port)
        async with trio.open_nursery() as own:
            trader = await wrap_client_stream(own, stream, host, urlsplit(feed).path)
            welcome = await authenticate(trader, key, cancel_on_disconnect=True)
            placed.update(await _place(trader, market, orders))
            closed = time.time()
            if cut:
                # SO_LINGER 0: closing sends a reset, as a dropped network's timeout would.
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await stream.aclose()
            else:
                await trader.aclose()
            own.cancel_scope.cancel()
        with trio.move_on_after(wait):
            await everything.wait()
        nursery.cancel_scope.cancel()
    ours = [cancelled[i] for i in placed if i in cancelled]
    left = sorted(placed - cancelled.keys())
    await _cancel_over_rest(url, key, left)
    result: dict[str, Any] = {
        "mode": "cancel-on-disconnect",
        "closed_by": "tcp reset" if cut else "close frame",
        "acknowledged": {k: v for k, v in welcome.items() if k != "type"},
        "orders": len(placed),
        "cancelled": len(ours),
        "all_cancelled": not left,
    }
    if ours:
        result["close_to_first_cancel_ms"] = round((min(r for r, _ in ours) - closed) * 1000, 3)
        result["close_to_last_cancel_ms"] = round((max(r for r, _ in ours) - closed) * 1000, 3)
        result["close_to_last_cancel_engine_ms"] = round(
            (max(t for _, t in ours) - closed) * 1000, 3
        )
    return result


async def _place(ws: WebSocketConnection, market: Market, orders: int) -> list[str]:
    """Place ``orders`` bids that rest (a twentieth below the mid and lower), pipelined:
    their ids. ``SystemExit`` if one is not accepted."""
    below = market.mid * 19 // 20
    for i in range(orders):
        body = {"symbol": market.symbol, "side": "buy", "type": "limit",
                "quantity": market.quantity, "price": str(below - i % 10)}  # fmt: skip
        await ws.send_message(json.dumps({"op": "order.place", "id": i, "args": body}))
    ids: list[str] = []
    while len(ids) < orders:
        message = json.loads(await ws.get_message())
        if message.get("type") == "result":
            ids.append(message["data"]["order_id"])
        elif message.get("type") == "error":
            raise SystemExit(f"loadtest: an order was refused: {message}")
    return ids


async def _until(ws: WebSocketConnection, kind: str) -> None:
    while json.loads(await ws.get_message()).get("type") != kind:
        pass


async def _cancel_over_rest(url: str, key: str, order_ids: list[str]) -> None:
    base = url.rstrip("/") + "/api/v1/trading"
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=30) as api:
        for start in range(0, len(order_ids), 100):
            chunk = order_ids[start : start + 100]
            await api.request("DELETE", "/orders/batch", json={"order_ids": chunk})


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
