"""Book streams paced as Binance's: @depth and the partial books every 1000 ms, their
@100ms forms every 100 ms, diffs merged over the interval with U/u still chained, so
Binance's book-sync recipe rebuilds the REST depth."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

from tests.api.binance_client import limit_order
from tests.api.conftest import Server

_STREAMS = ("btcait@depth", "btcait@depth@100ms", "btcait@depth5")


async def _depth() -> Any:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(_BASE + "/api/v3/depth?symbol=BTCAIT")).json()


_BASE = ""


def _synced(snapshot: dict[str, Any], diffs: list[dict[str, Any]]) -> dict[str, Any]:
    """Binance's recipe: drop diffs with u <= lastUpdateId, the first kept must hold
    lastUpdateId + 1, each next U is the previous u + 1; apply (0 removes a level)."""
    last = snapshot["lastUpdateId"]
    book = {side: {Decimal(p): q for p, q in snapshot[side]} for side in ("bids", "asks")}
    kept = [d for d in diffs if d["u"] > last]
    assert kept, "a diff after the snapshot"
    assert kept[0]["U"] <= last + 1 <= kept[0]["u"]
    for before, after in itertools.pairwise(kept):
        assert after["U"] == before["u"] + 1
    for diff in kept:
        for side, key in (("bids", "b"), ("asks", "a")):
            for price, quantity in diff[key]:
                if Decimal(quantity) == 0:
                    book[side].pop(Decimal(price), None)
                else:
                    book[side][Decimal(price)] = quantity
    return {
        "u": kept[-1]["u"],
        "bids": sorted(book["bids"].items(), reverse=True),
        "asks": sorted(book["asks"].items()),
    }


async def test_depth_streams_are_paced_merged_and_still_sync(server: Server) -> None:
    global _BASE  # noqa: PLW0603 - the server of this test, for _depth
    _BASE = server.url
    url = server.url.replace("http://", "ws://") + "/stream?streams=" + "/".join(_STREAMS)
    received: dict[str, list[tuple[float, Any]]] = {name: [] for name in _STREAMS}
    with trio.fail_after(30):
        async with open_websocket_url(url) as ws:

            async def read() -> None:
                while True:
                    message = json.loads(await ws.get_message())
                    received[message["stream"]].append((trio.current_time(), message["data"]))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                await limit_order(server, "demo_alice", "sell", "105")  # the book has a level
                await trio.sleep(1.2)
                snapshot = await _depth()
                for number in range(8):
                    await limit_order(server, "demo_alice", "sell", str(101 + number))
                    await limit_order(server, "demo_bob", "buy", str(99 - number))
                await trio.sleep(2.3)
                nursery.cancel_scope.cancel()
            final = await _depth()
    slow, fast, partial = (received[name] for name in _STREAMS)
    # Read by a client busy placing orders: arrival times jitter by some 50 ms.
    for messages in (slow, partial):
        times = [at for at, _ in messages]
        assert all(b - a >= 0.8 for a, b in itertools.pairwise(times)), times
    elapsed = fast[-1][0] - fast[0][0]
    assert len(fast) <= elapsed / 0.1 + 2
    # Sixteen orders, each its own book update: merged into a few diffs a second.
    assert 2 <= len(slow) <= 6
    assert len(fast) < 16
    assert sum(len(d["b"]) + len(d["a"]) for _, d in slow) >= 16
    expected = {
        "u": final["lastUpdateId"],
        "bids": [(Decimal(p), q) for p, q in final["bids"]],
        "asks": [(Decimal(p), q) for p, q in final["asks"]],
    }
    assert _synced(snapshot, [d for _, d in slow]) == expected
    assert _synced(snapshot, [d for _, d in fast]) == expected
    top = partial[-1][1]
    assert top == {"lastUpdateId": final["lastUpdateId"], "bids": final["bids"][:5],
                   "asks": final["asks"][:5]}  # fmt: skip
