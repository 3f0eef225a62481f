"""``trading-engine bench switch``: the dead man's switch in-process, no HTTP.

Two phases on one engine. Re-arming: ``users`` users, two tasks each, re-arm
their switch (60 s) back to back for ``seconds``, each call answered once
durable: re-arms per second and their latency. Firing: ``rounds`` times, ten
users each rest four orders in two symbols and arm a 200 ms switch; the time
from each deadline to its orders' cancel events (``fire_*``: the symbol
actor's timestamp) and to the event that disarms it (``disarm_*``: journaled
once the cancels are durable). The engine's invariants are checked at the
end. Prints one JSON object.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderRequest, OrderResult, Switch
from trading_engine.benchmarks.databases import fresh_database
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import ACCOUNTS_STREAM, CancelAllAfterFired
from trading_engine.core.enums import OrderType, Side
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.runtime import tune_gc
from trading_engine.storage.journal import InMemoryJournal, Journal
from trading_engine.storage.postgres import open_postgres_journal

__all__ = ["run_switch_bench"]

_SYMBOLS = (
    Instrument.create("S0_AIT", "S0", "AIT", "0.01", "0.0001", price_band_pct="20"),
    Instrument.create("S1_AIT", "S1", "AIT", "0.01", "0.0001", price_band_pct="20"),
)
_FIRING_USERS = 10
_TIMEOUT_MS = 200


def run_switch_bench(
    *,
    users: int = 100,
    seconds: float = 5.0,
    rounds: int = 20,
    journal: str = "postgres",
    database_url: str | None = None,
) -> dict[str, Any]:
    """Run both phases and return the result; ``journal`` is ``memory`` or ``postgres`` (a
    fresh database on ``database_url``'s server, else on a throwaway durable one)."""
    if journal == "memory":
        result = trio.run(_bench, InMemoryJournal(), users, seconds, rounds)
    else:
        with fresh_database(database_url, "switch_bench") as dsn:
            result = trio.run(_bench_postgres, dsn, users, seconds, rounds)
    return {"journal": journal, **result}


async def _bench_postgres(dsn: str, users: int, seconds: float, rounds: int) -> dict[str, Any]:
    async with open_postgres_journal(dsn) as journal:
        return await _bench(journal, users, seconds, rounds)


async def _bench(journal: Journal, users: int, seconds: float, rounds: int) -> dict[str, Any]:
    async with open_engine(EngineConfig(expire_every=float("inf")), journal) as engine:
        names = [UserId(f"mm{i}") for i in range(max(users, _FIRING_USERS))]
        await _setup(engine, names)
        tune_gc()  # as `trading-engine serve` does once it has recovered
        result = await _rearm(engine, names[:users], seconds)
        result.update(await _fire(engine, journal, names[:_FIRING_USERS], rounds))
        await engine.check_invariants()
        return result


async def _setup(engine: Engine, users: list[UserId]) -> None:
    for instrument in _SYMBOLS:
        await engine.add_symbol(instrument)
    for user in users:
        await engine.create_user(user, f"switch-bench-{user}")
        await engine.deposit(user, "AIT", 10**18)


async def _rearm(engine: Engine, users: list[UserId], seconds: float) -> dict[str, Any]:
    latencies: list[float] = []

    async def rearm(user: UserId) -> None:
        clock = time.perf_counter
        while True:
            started = clock()
            await engine.cancel_all_after(user, 60_000)
            latencies.append(clock() - started)

    started = time.perf_counter()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for user in users * 2:
                nursery.start_soon(rearm, user)
    elapsed = time.perf_counter() - started
    for user in users:
        await engine.cancel_all_after(user, 0)
    latencies.sort()
    return {
        "users": len(users),
        "rearms": len(latencies),
        "rearms_per_sec": round(len(latencies) / elapsed),
        "rearm_p50_ms": _ms(_percentile(latencies, 0.5)),
        "rearm_p99_ms": _ms(_percentile(latencies, 0.99)),
    }


async def _fire(
    engine: Engine, journal: Journal, users: list[UserId], rounds: int
) -> dict[str, Any]:
    fire: list[float] = []
    disarm: list[float] = []
    for _ in range(rounds):
        deadlines: dict[UserId, int] = {}
        for user in users:
            for i in range(4):
                symbol = Symbol(_SYMBOLS[i % 2].symbol)
                request = OrderRequest(user, symbol, Side.BUY, OrderType.LIMIT, 10, 100_000 - i)
                assert isinstance(await engine.submit(request), OrderResult)
        for user in users:
            switch = await engine.cancel_all_after(user, _TIMEOUT_MS)
            assert isinstance(switch, Switch)
            assert switch.cancel_at is not None
            deadlines[user] = switch.cancel_at
        with trio.fail_after(10):
            for user in users:
                while await engine.switch(user) is not None:
                    await trio.sleep(0.01)
        for user in users:
            assert not await engine.user_orders(user, open_only=True), "a switch left orders"
            views = await engine.user_orders(user, limit=4)
            fire.extend((view.updated_ts - deadlines[user]) / 1e9 for view in views)
        with trio.fail_after(10):  # disarmed in memory first, then journaled
            while len(ends := await _fired(journal, deadlines)) < len(users):
                await trio.sleep(0.01)
        disarm.extend(ends)
    fire.sort()
    disarm.sort()
    return {
        "rounds": rounds,
        "fired": len(disarm),
        "fire_p50_ms": _ms(_percentile(fire, 0.5)),
        "fire_p99_ms": _ms(_percentile(fire, 0.99)),
        "fire_max_ms": _ms(fire[-1]),
        "disarm_p50_ms": _ms(_percentile(disarm, 0.5)),
        "disarm_p99_ms": _ms(_percentile(disarm, 0.99)),
    }


async def _fired(journal: Journal, deadlines: dict[UserId, int]) -> list[float]:
    """Seconds from each of ``deadlines`` to the journaled event that ended its switch."""
    return [
        (event.ts - event.cancel_at) / 1e9
        for event in await journal.read(ACCOUNTS_STREAM)
        if isinstance(event, CancelAllAfterFired)
        and deadlines.get(event.user_id) == event.cancel_at
    ]


def _percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
