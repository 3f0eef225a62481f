"""The durable engine benchmark runs on PostgreSQL and leaves the read tables complete."""

from __future__ import annotations

from tests.conftest import sql
from trading_engine.benchmarks.engine import _run_postgres


async def test_the_durable_bench_with_the_read_tables_held_off(database_url: str) -> None:
    result = await _run_postgres(database_url, 300, 2, 10, 20, 1, project_every=3600.0)
    assert result["orders"] == result["accepted"] == 300
    assert result["project_every"] == 3600.0
    assert result["read_tables_catch_up_seconds"] >= 0
    [(orders,)] = await sql(database_url, "SELECT count(*) FROM orders")
    [(projected, newest)] = await sql(
        database_url, "SELECT last_id, (SELECT max(id) FROM journal) FROM projection"
    )
    assert orders == 300
    assert projected == newest
