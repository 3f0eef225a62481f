"""One latency summary over the per-request CSV of several ``hey`` runs.

``benchmarks/http_load.sh`` offers a fixed rate as evenly spread arrivals:
many ``hey -c 1 -q Q`` processes, each started a fraction of its period
after the one before. Each process alone sees too few requests for its own
percentiles (``hey`` prints ``0%`` for a p99 it cannot tell), so every
process writes one CSV row per request (``hey -o csv``) and this module
computes the percentiles over all of them.
``python -m trading_engine.benchmarks.hey_summary SECONDS FILE...`` prints
one JSON object: orders answered 201 per second, answers by status, and
p50 / p90 / p99 / p99.9 of the 201s, in milliseconds.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["summarize"]


def summarize(lines: Iterable[str], seconds: float) -> dict[str, Any]:
    """The summary of ``hey -o csv`` output lines (headers may repeat: one per run)."""
    statuses: Counter[str] = Counter()
    times: list[float] = []
    for line in lines:
        fields = line.strip().split(",")
        if len(fields) < 7 or fields[0] == "response-time":
            continue
        status = fields[6]
        statuses[status] += 1
        if status == "201":
            times.append(float(fields[0]))
    times.sort()

    def ms(fraction: float) -> float | None:
        if not times:
            return None
        return round(times[min(len(times) - 1, int(fraction * len(times)))] * 1000, 1)

    return {
        "orders_per_sec": round(len(times) / seconds),
        "statuses": dict(sorted(statuses.items())),
        "p50_ms": ms(0.5),
        "p90_ms": ms(0.9),
        "p99_ms": ms(0.99),
        "p99_9_ms": ms(0.999),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", type=float, help="how long the runs offered load")
    parser.add_argument("files", nargs="+", type=Path, help="hey -o csv outputs")
    args = parser.parse_args()
    lines = (line for path in args.files for line in path.read_text().splitlines())
    print(json.dumps(summarize(lines, args.seconds)))


if __name__ == "__main__":
    main()
