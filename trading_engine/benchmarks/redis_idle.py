"""What one Redis round trip costs a process that was idle: the gateway hop's floor.

A REST order through a gateway crosses Redis twice (the command to the
engine, the answer back), and at low load every process on the way has gone
idle before the message reaches it, so each crossing pays the wake-ups of a
round trip from idle, whatever the client. ``benchmarks/gateway_hop.sh``
prints this beside the hop it measures.

``python -m trading_engine.benchmarks.redis_idle URL --gap SECONDS`` sends a
``PING`` every ``--gap`` seconds (``--count`` of them), from redis-py on a
bare asyncio loop, then the same through the asyncio bridge from Trio (as
the engine and the gateways call Redis), and prints one JSON object: the p50
of each in milliseconds, and ``floor_ms``, twice the bare p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import redis.asyncio as aioredis
import trio

from trading_engine.storage.bridge import open_bridge

__all__ = ["main"]


async def _ping(client: Any) -> None:
    await client.ping()


async def _bare(url: str, gap: float, count: int) -> list[float]:
    client = aioredis.Redis.from_url(url)
    try:
        await client.ping()
        times = []
        for _ in range(count):
            await asyncio.sleep(gap)
            start = time.perf_counter_ns()
            await client.ping()
            times.append((time.perf_counter_ns() - start) / 1e6)
        return times
    finally:
        await client.aclose()


async def _bridged(url: str, gap: float, count: int) -> list[float]:
    async def connect() -> Any:
        return aioredis.Redis.from_url(url)

    async def close(client: Any) -> None:
        await client.aclose()

    async with open_bridge() as bridge:
        client = await bridge.call(connect)
        try:
            await bridge.call(_ping, client)
            times = []
            for _ in range(count):
                await trio.sleep(gap)
                start = time.perf_counter_ns()
                await bridge.call(_ping, client)
                times.append((time.perf_counter_ns() - start) / 1e6)
            return times
        finally:
            await bridge.call(close, client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="redis://HOST:PORT/DB")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between pings")
    parser.add_argument("--count", type=int, default=200, help="pings of each kind")
    args = parser.parse_args()
    bare = statistics.median(asyncio.run(_bare(args.url, args.gap, args.count)))
    bridged = statistics.median(trio.run(_bridged, args.url, args.gap, args.count))
    print(
        json.dumps(
            {
                "gap_s": args.gap,
                "ping_p50_ms": round(bare, 2),
                "ping_via_bridge_p50_ms": round(bridged, 2),
                "floor_ms": round(2 * bare, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
