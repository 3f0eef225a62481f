"""The spread-load summary reads hey's per-request CSV, several runs at once."""

from __future__ import annotations

from trading_engine.benchmarks.hey_summary import summarize

HEADER = (
    "response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset"
)


def _run(times_and_statuses: list[tuple[float, int]]) -> list[str]:
    rows = [f"{t:.4f},0.0001,0.0000,0.0000,{t:.4f},0.0000,{s},{i * 0.1:.4f}"
            for i, (t, s) in enumerate(times_and_statuses)]  # fmt: skip
    return [HEADER, *rows]


def test_percentiles_are_over_every_run_and_only_the_created_orders() -> None:
    first = _run([(0.001 * n, 201) for n in range(1, 101)])  # 1..100 ms
    second = _run([(0.5, 503), (0.101, 201)] + [(0.001 * n, 201) for n in range(102, 201)])
    summary = summarize([*first, *second, ""], seconds=10)
    assert summary["statuses"] == {"201": 200, "503": 1}
    assert summary["orders_per_sec"] == 20
    assert summary["p50_ms"] == 101.0  # the 101st of 1..200 ms, the 503 left out
    assert summary["p90_ms"] == 181.0
    assert summary["p99_ms"] == 199.0
    assert summary["p99_9_ms"] == 200.0


def test_no_created_order_has_no_latency() -> None:
    summary = summarize(_run([(0.2, 429)]), seconds=1)
    assert summary == {
        "orders_per_sec": 0,
        "statuses": {"429": 1},
        "p50_ms": None,
        "p90_ms": None,
        "p99_ms": None,
        "p99_9_ms": None,
    }
