"""The ``trading-engine`` command: ``bench replay`` now; serve, migrate and audit to come."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trading-engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("bench", help="run a benchmark and print one JSON object")
    benches = bench.add_subparsers(dest="bench", required=True)
    replay = benches.add_parser(
        "replay", help="feed a seeded order stream (shared/workloads) to one book, no I/O"
    )
    replay.add_argument("file", type=Path, help="an order stream from gen_orders.py")
    replay.add_argument(
        "--no-baseline", action="store_true", help="skip the minimal reference book's run"
    )
    engine = benches.add_parser(
        "engine", help="the whole engine in-process: concurrent submitters, no HTTP"
    )
    engine.add_argument("--orders", type=int, default=100_000)
    engine.add_argument("--symbols", type=int, default=4)
    engine.add_argument("--users", type=int, default=200)
    engine.add_argument("--concurrency", type=int, default=400)
    engine.add_argument("--seed", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "bench" and args.bench == "replay":
        from trading_engine.benchmarks.replay import replay  # noqa: PLC0415 - keep start-up light

        if not args.file.is_file():
            print(f"trading-engine: no such file: {args.file}", file=sys.stderr)
            return 2
        print(json.dumps(replay(args.file, baseline=not args.no_baseline)))
        return 0
    if args.command == "bench" and args.bench == "engine":
        from trading_engine.benchmarks.engine import run_engine_bench  # noqa: PLC0415

        result = run_engine_bench(
            orders=args.orders,
            symbols=args.symbols,
            users=args.users,
            concurrency=args.concurrency,
            seed=args.seed,
        )
        print(json.dumps(result))
        return 0
    return 2  # pragma: no cover - argparse rejects every other command


if __name__ == "__main__":
    sys.exit(main())
