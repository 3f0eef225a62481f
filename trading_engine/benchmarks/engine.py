"""``trading-engine bench engine``: the whole engine in-process, no HTTP.

Many concurrent submitter tasks send seeded random limit orders (about a
third of them crossing) for many funded users across several symbols,
through risk, the symbol actors and the journal (in memory, or PostgreSQL
in the storage benchmark), and time each order from the call to the durable
acknowledgement. Prints one JSON object: orders per second, latency
percentiles, trades, and how the journal batched the commits; then, unless
``relay=False``, the yardstick of ``relay.py`` run first in the same process
(``relay_per_sec``) and the ratio of the two (``ratio_to_relay``).
"""

from __future__ import annotations

import random
import time
from typing import Any

import trio

from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderRequest, OrderResult
from trading_engine.benchmarks.databases import fresh_database
from trading_engine.benchmarks.relay import relay_per_second
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderType, Side, StpMode
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.runtime import tune_gc
from trading_engine.storage.journal import InMemoryJournal, Journal
from trading_engine.storage.postgres import open_postgres_journal

__all__ = ["run_engine_bench"]

_MID = 100_000


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


async def _setup(engine: Engine, symbols: int, users: int) -> list[Symbol]:
    names: list[Symbol] = []
    for i in range(symbols):
        instrument = Instrument.create(
            f"B{i}_AIT", f"B{i}", "AIT", "0.01", "0.0001", taker_fee_bps=10, maker_fee_bps=-2,
            price_band_pct="20",
        )  # fmt: skip
        await engine.add_symbol(instrument)
        names.append(instrument.symbol)
    for u in range(users):
        user = UserId(f"bench{u}")
        await engine.create_user(user, f"bench-key-{u}")
        await engine.deposit(user, "AIT", 10**18)
        for i in range(symbols):
            await engine.deposit(user, f"B{i}", 10**16)
    return names


def _requests(
    seed: int, index: int, count: int, users: int, names: list[Symbol]
) -> list[OrderRequest]:
    rng = random.Random(seed * 100_003 + index)  # noqa: S311 - a seeded workload
    requests = []
    for _ in range(count):
        buy = rng.random() < 0.5
        offset = rng.randint(-10, 30)  # about a third cross the spread
        price = _MID - offset if buy else _MID + offset
        requests.append(
            OrderRequest(
                UserId(f"bench{rng.randrange(users)}"), names[rng.randrange(len(names))],
                Side.BUY if buy else Side.SELL, OrderType.LIMIT, rng.randint(1, 100), price,
                stp=StpMode.NONE,
            )
        )  # fmt: skip
    return requests


async def bench(
    engine: Engine, *, orders: int, symbols: int, users: int, concurrency: int, seed: int
) -> dict[str, Any]:
    names = await _setup(engine, symbols, users)
    latencies: list[float] = []
    outcomes = {"accepted": 0, "rejected": 0}
    per_task = orders // concurrency
    trades = 0

    # The requests are made before the clock starts: building them is the
    # client's work (another process, in production), not the engine's.
    workloads = [_requests(seed, index, per_task, users, names) for index in range(concurrency)]
    tune_gc()  # as `trading-engine serve` does once it has recovered

    async def submitter(requests: list[OrderRequest]) -> None:
        nonlocal trades
        submit = engine.submit
        clock = time.perf_counter
        for request in requests:
            started = clock()
            result = await submit(request)
            latencies.append(clock() - started)
            if isinstance(result, OrderResult):
                outcomes["accepted"] += 1
                trades += len(result.trades)
            else:
                outcomes["rejected"] += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for requests in workloads:
            nursery.start_soon(submitter, requests)
    seconds = time.perf_counter() - started
    latencies.sort()
    stats = engine.journal_stats
    done = len(latencies)
    return {
        "orders": done,
        "seconds": round(seconds, 3),
        "orders_per_sec": round(done / seconds),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 3),
        "p999_ms": round(_percentile(latencies, 0.999) * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 3) if latencies else 0,
        "accepted": outcomes["accepted"],
        "rejected": outcomes["rejected"],
        "trades": trades,
        "symbols": symbols,
        "users": users,
        "concurrency": concurrency,
        "journal_writes": stats.batches,
        "commits_per_write_mean": round(stats.commands / max(stats.batches, 1), 2),
        "commits_per_write_max": stats.largest_batch,
        "commit_batch_histogram": {str(k): v for k, v in sorted(stats.batch_sizes.items())},
    }


def run_engine_bench(
    *,
    orders: int = 100_000,
    symbols: int = 4,
    users: int = 200,
    concurrency: int = 400,
    seed: int = 1,
    journal: str = "memory",
    database_url: str | None = None,
    relay: bool = True,
    project_every: float = 0.1,
) -> dict[str, Any]:
    """Run the benchmark and return the result.

    ``journal`` is ``memory`` or ``postgres``: a fresh database on
    ``database_url``'s server, or on a throwaway local server (durable:
    fsync on, as in production) when none is given. With ``postgres`` the read
    tables are projected at most every ``project_every`` seconds, as the engine
    does by default (0.1); the result's ``read_tables_catch_up_seconds`` is how
    long they then took to catch up with the journal after the run.
    """
    relayed = trio.run(relay_per_second, min(orders, 100_000), concurrency) if relay else None
    result = _run_journal(
        journal, database_url, orders, symbols, users, concurrency, seed, project_every
    )
    if relayed is not None:
        result["relay_per_sec"] = relayed
        result["ratio_to_relay"] = round(result["orders_per_sec"] / relayed, 3)
    return result


def _run_journal(
    journal: str,
    database_url: str | None,
    orders: int,
    symbols: int,
    users: int,
    concurrency: int,
    seed: int,
    project_every: float,
) -> dict[str, Any]:
    if journal == "memory":
        result = trio.run(_run, InMemoryJournal(), orders, symbols, users, concurrency, seed)
        result["journal"] = "memory"
        return result
    with fresh_database(database_url, "engine_bench") as dsn:
        result = trio.run(
            _run_postgres, dsn, orders, symbols, users, concurrency, seed, project_every
        )
    result["journal"] = "postgres"
    return result


async def _run(
    journal: Journal, orders: int, symbols: int, users: int, concurrency: int, seed: int
) -> dict[str, Any]:
    config = EngineConfig(expire_every=float("inf"))
    async with open_engine(config, journal) as engine:
        return await bench(
            engine, orders=orders, symbols=symbols, users=users, concurrency=concurrency,
            seed=seed,
        )  # fmt: skip


async def _run_postgres(
    dsn: str,
    orders: int,
    symbols: int,
    users: int,
    concurrency: int,
    seed: int,
    project_every: float,
) -> dict[str, Any]:
    async with open_postgres_journal(dsn, project_every=project_every) as journal:
        result = await _run(journal, orders, symbols, users, concurrency, seed)
        started = time.perf_counter()
        await journal.project()
        result["read_tables_catch_up_seconds"] = round(time.perf_counter() - started, 2)
        result["project_every"] = project_every
        return result
