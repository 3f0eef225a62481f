"""The order-entry summary: wrk's output read, the ratios the targets name, the verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from trading_engine.benchmarks.order_entry import summarize, verdicts, wrk_figures

WRK = """Running 10s test @ http://127.0.0.1:8081
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    25.10ms    5.03ms  80.20ms   90.00%
  Latency Distribution
     50%   24.50ms
     75%   27.00ms
     90%   30.00ms
     99%    1.02s
  12000 requests in 10.00s, 5.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   1200.40
Transfer/sec:    512.00KB
"""


def test_wrk_output_gives_rate_percentiles_and_failures() -> None:
    assert wrk_figures(WRK) == {"per_sec": 1200, "p50_ms": 24.5, "p99_ms": 1020.0, "non_2xx": 7}
    with pytest.raises(ValueError, match="Requests/sec"):
        wrk_figures("wrk: connection refused")


def test_ratios_and_targets_from_the_figures() -> None:
    wrk = {
        "echo": [{"per_sec": 1000, "non_2xx": 0}, {"per_sec": 1200, "non_2xx": 0}],
        "rest": [{"per_sec": 900, "non_2xx": 0}, {"per_sec": 1000, "non_2xx": 0}],
        "rest-redis": [{"per_sec": 880, "non_2xx": 0}, {"per_sec": 880, "non_2xx": 0}],
    }
    runs: dict[str, dict[str, Any]] = {
        "ws-closed": {"orders_per_sec": 5000, "requests_per_sec": 6000},
        "ws-open": {"offered_rate": 2000, "orders_per_sec": 1999, "p99_ms": 12.5},
        "batch": {"orders_per_sec": 4000},
        "engine": {"orders_per_sec": 10000},
        "cancel-on-disconnect": {"orders": 100, "cancelled": 100, "close_to_last_cancel_ms": 40},
    }
    summary = summarize(wrk, runs)
    figures, targets = summary["figures"], summary["targets"]
    assert (figures["echo_per_sec"], figures["rest_per_sec"]) == (1100, 950)  # medians
    assert figures["rest_redis_to_echo"] == 0.8
    assert figures["rest_redis_to_rest"] == round(880 / 950, 3)
    assert figures["ws_to_rest_redis"] == round(5000 / 880, 3)
    met = {name: target["met"] for name, target in targets.items()}
    assert met == {
        "rest_redis_to_echo": True, "rest_redis_to_rest": True, "ws_to_engine": True,
        "ws_to_rest_redis": True, "ws_open_p99_ms": True, "batch_to_engine": False,
        "close_to_last_cancel_ms": True,
    }  # fmt: skip
    assert targets["batch_to_engine"] == {"value": 0.4, "target": ">= 0.5", "met": False}


def test_a_missing_figure_is_not_judged_and_uncancelled_orders_fail_the_target() -> None:
    runs = {"cancel-on-disconnect": {"orders": 100, "cancelled": 0}}
    targets = summarize({}, runs)["targets"]
    assert targets["ws_to_engine"] == {"value": None, "target": ">= 0.5", "met": None}
    assert targets["close_to_last_cancel_ms"]["met"] is False


def test_verdicts_name_each_target_with_its_figure() -> None:
    runs = {"engine": {"orders_per_sec": 1000}, "batch": {"orders_per_sec": 600}}
    lines = verdicts(summarize({}, runs))
    assert len(lines) == 7
    assert [line.split() for line in lines if line.startswith("batch_to_engine")] == [
        ["batch_to_engine", "0.6", ">=", "0.5", "met"]
    ]
    assert any(line.split()[-2:] == ["no", "figure"] for line in lines)
