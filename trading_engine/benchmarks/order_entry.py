"""The order-entry figures of ``benchmarks/order_entry.sh``, beside their targets.

``python -m trading_engine.benchmarks.order_entry DIR`` reads what the
script left in ``DIR``: ``wrk-NAME-N.txt`` (``wrk --latency``'s output:
``echo``, ``rest``, ``rest-redis``; ``N`` the round) and ``NAME.json`` (one
JSON object each: ``ws-closed``, ``ws-open``, ``ws-open-low``, ``ws-batch``, ``batch``,
``cancel-on-disconnect``, ``engine``). It prints one JSON object: each
figure (the median over the rounds where there are several), the ratios
the targets name, and for each target whether it is met (``null`` where a
figure is missing); before it, on stderr, one line a target.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "main", "summarize", "verdicts", "wrk_figures"]

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m)\b"

TARGETS: dict[str, tuple[str, float]] = {
    "rest_redis_to_echo": (">=", 0.8),
    "rest_redis_to_rest": (">=", 0.9),
    "ws_to_engine": (">=", 0.5),
    "ws_to_rest_redis": (">=", 5.0),
    "ws_open_p99_ms": ("<=", 20.0),
    "batch_to_engine": (">=", 0.5),
    "close_to_last_cancel_ms": ("<=", 100.0),
}
"""Issue 23's targets: a figure's name, the comparison and the bound."""


def wrk_figures(text: str) -> dict[str, float]:
    """``per_sec``, ``p50_ms``, ``p99_ms`` and ``non_2xx`` from ``wrk --latency``'s output
    (``non_2xx`` counts socket errors too); ``ValueError`` if it has no request rate."""
    rate = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.MULTILINE)
    if rate is None:
        raise ValueError("not wrk's output: no Requests/sec line")
    figures: dict[str, float] = {"per_sec": round(float(rate.group(1)))}
    for name, label in (("p50_ms", "50%"), ("p99_ms", "99%")):
        found = re.search(rf"^\s*{label}\s+{_DURATION}", text, re.MULTILINE)
        if found is not None:
            figures[name] = round(float(found.group(1)) * _UNITS[found.group(2)], 3)
    failed = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    figures["non_2xx"] = int(failed.group(1)) if failed else 0
    if errors is not None:
        figures["non_2xx"] += sum(int(n) for n in re.findall(r"\d+", errors.group(0)))
    return figures


def summarize(
    wrk: Mapping[str, Sequence[Mapping[str, float]]], runs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The figures, ratios and targets from wrk's rounds by name and the JSON runs by name."""
    figures: dict[str, Any] = {}
    for name, rounds in wrk.items():
        key = name.replace("-", "_")
        figures[f"{key}_per_sec"] = round(statistics.median(r["per_sec"] for r in rounds))
        figures[f"{key}_rounds"] = [r["per_sec"] for r in rounds]
        figures[f"{key}_p99_ms"] = round(statistics.median(r.get("p99_ms", 0.0) for r in rounds), 3)
        figures[f"{key}_non_2xx"] = sum(int(r["non_2xx"]) for r in rounds)
    taken = {
        "ws_per_sec": ("ws-closed", "orders_per_sec"),
        "ws_requests_per_sec": ("ws-closed", "requests_per_sec"),
        "ws_open_offered": ("ws-open", "offered_rate"),
        "ws_open_per_sec": ("ws-open", "orders_per_sec"),
        "ws_open_p50_ms": ("ws-open", "p50_ms"),
        "ws_open_p99_ms": ("ws-open", "p99_ms"),
        "ws_open_max_ms": ("ws-open", "max_ms"),
        "ws_open_unanswered": ("ws-open", "unanswered"),
        "ws_open_low_offered": ("ws-open-low", "offered_rate"),
        "ws_open_low_p50_ms": ("ws-open-low", "p50_ms"),
        "ws_open_low_p99_ms": ("ws-open-low", "p99_ms"),
        "batch_per_sec": ("batch", "orders_per_sec"),
        "ws_batch_per_sec": ("ws-batch", "orders_per_sec"),
        "engine_per_sec": ("engine", "orders_per_sec"),
        "close_to_last_cancel_ms": ("cancel-on-disconnect", "close_to_last_cancel_ms"),
        "cancelled_on_disconnect": ("cancel-on-disconnect", "cancelled"),
        "placed_before_disconnect": ("cancel-on-disconnect", "orders"),
    }
    for key, (run, field) in taken.items():
        if field in runs.get(run, {}):
            figures[key] = runs[run][field]
    ratios = {
        "rest_redis_to_echo": ("rest_redis_per_sec", "echo_per_sec"),
        "rest_redis_to_rest": ("rest_redis_per_sec", "rest_per_sec"),
        "rest_to_echo": ("rest_per_sec", "echo_per_sec"),
        "ws_to_engine": ("ws_per_sec", "engine_per_sec"),
        "ws_to_rest_redis": ("ws_per_sec", "rest_redis_per_sec"),
        "batch_to_engine": ("batch_per_sec", "engine_per_sec"),
        "ws_batch_to_engine": ("ws_batch_per_sec", "engine_per_sec"),
    }
    for key, (numerator, denominator) in ratios.items():
        if figures.get(numerator) is not None and figures.get(denominator):
            figures[key] = round(figures[numerator] / figures[denominator], 3)
    targets: dict[str, Any] = {}
    for key, (comparison, bound) in TARGETS.items():
        value = figures.get(key)
        met = None if value is None else (value >= bound if comparison == ">=" else value <= bound)
        if key == "close_to_last_cancel_ms" and "placed_before_disconnect" in figures:
            # Every order must be cancelled, not only some of them quickly.
            all_gone = figures["cancelled_on_disconnect"] == figures["placed_before_disconnect"]
            met = bool(met) and all_gone
        targets[key] = {"value": value, "target": f"{comparison} {bound:g}", "met": met}
    return {"figures": figures, "targets": targets}


def read_dir(directory: Path) -> tuple[dict[str, list[dict[str, float]]], dict[str, Any]]:
    """wrk's rounds by name and the JSON runs by name, as the script leaves them."""
    wrk: dict[str, list[dict[str, float]]] = {}
    for path in sorted(directory.glob("wrk-*-*.txt")):
        name = path.stem.removeprefix("wrk-").rsplit("-", 1)[0]
        wrk.setdefault(name, []).append(wrk_figures(path.read_text(encoding="utf-8")))
    runs = {}
    for path in sorted(directory.glob("*.json")):
        # The last line: a benchmark prints one JSON object, perhaps after other lines.
        lines = path.read_text(encoding="utf-8").strip().splitlines()
        if lines:
            runs[path.stem] = json.loads(lines[-1])
    return wrk, runs


def verdicts(summary: dict[str, Any]) -> list[str]:
    """One line a target: its name, the figure, the bound and the verdict."""
    words = {True: "met", False: "NOT met", None: "no figure"}
    return [
        f"{name:<26} {target['value']!s:>10}  {target['target']:<8} {words[target['met']]}"
        for name, target in summary["targets"].items()
    ]


def main() -> None:
    """Print the targets' verdicts to stderr, then the summary as one JSON object."""
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m trading_engine.benchmarks.order_entry DIR")
    summary = summarize(*read_dir(Path(sys.argv[1])))
    print("\n".join(verdicts(summary)), file=sys.stderr)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
