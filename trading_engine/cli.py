"""The ``trading-engine`` command.

Every option of every subcommand has help text that says its default
(``trading-engine SUBCOMMAND --help``).

- ``bench replay FILE``: the matcher alone on a seeded order stream.
- ``bench engine [--journal memory|postgres]``: the whole engine in-process.
- ``bench journal``: the PostgreSQL journal alone.
- ``bench recovery [--events N]``: time to be ready after N journaled events.
- ``bench switch``: the dead man's switch: re-arms per second, firing latency.
- ``loadtest --url URL``: real HTTP and WebSocket load against a running server.
- ``migrate``: apply pending migrations.
- ``audit``: verify a journal end to end and print the report; exits 1 on any problem
  (a check that cannot be made included), 2 if the database can't be opened.
- ``snapshot``: save a snapshot of the journal's state, so that a start replays only
  what follows it (``serve`` runs it every ``SNAPSHOT_EVERY`` events).

``migrate``, ``audit`` and ``snapshot`` work on ``--database-url`` (default
``$DATABASE_URL``); without one, on the local PostgreSQL of ``--data-dir``,
the one ``serve`` (and so ``make run``) uses: they use the server if it
runs, else start it and stop it again when done.

- ``engine [--demo] [--metrics-host] [--metrics-port] [--data-dir] [--log-format]`` and
  ``gateway [--host] [--port] [--data-dir] [--log-format]``: ``serve`` split in two
  processes over Redis (``REDIS_URL`` required), the engine alone (with
  ``--metrics-port``, a listener for ``/metrics``, ``/health`` and ``/ready``) and any
  number of gateways serving the API and the feed (``docs/scaling.md``).
- ``serve [--demo] [--host] [--port] [--data-dir] [--log-format]``: the engine with its
  REST API and WebSocket feed. It listens on 127.0.0.1 unless told otherwise
  (``--host 0.0.0.0`` on a server). Its log goes to stderr as readable lines when
  stderr is a terminal, as JSON lines when it is not (``--log-format`` or
  ``LOG_FORMAT`` chooses); the banner with the URLs and keys goes to stdout.
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

_LOG_FORMATS = ("auto", "json", "text")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trading-engine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the engine with its REST API and WebSocket feed")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1, this machine only;"
        " 0.0.0.0 listens on every interface, as a server does)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="the port to listen on (default $PORT, else 8000; 0 picks a free one)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="list the demo symbols BTC_AIT and ETH_AIT and fund the demo users"
        " demo_alice and demo_bob, adding only what is missing (default off)",
    )
    _data_dir_option(
        serve, "the local PostgreSQL's data (used without DATABASE_URL) and the generated admin key"
    )
    serve.add_argument(
        "--log-format",
        choices=_LOG_FORMATS,
        default=os.environ.get("LOG_FORMAT", "auto"),
        help="the log on stderr: text (readable lines), json (one object a line) or auto,"
        " text when stderr is a terminal and json otherwise (default $LOG_FORMAT, else auto)",
    )
    _split_commands(commands)
    bench = commands.add_parser("bench", help="run a benchmark and print one JSON object")
    benches = bench.add_subparsers(dest="bench", required=True)
    replay = benches.add_parser(
        "replay", help="feed a seeded order stream (shared/workloads) to one book, no I/O"
    )
    replay.add_argument("file", type=Path, help="an order stream from gen_orders.py")
    replay.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the minimal reference book's run (default: run it)",
    )
    engine = benches.add_parser(
        "engine", help="the whole engine in-process: concurrent submitters, no HTTP"
    )
    engine.add_argument(
        "--orders", type=int, default=100_000, help="orders to submit (default 100000)"
    )
    engine.add_argument(
        "--symbols", type=int, default=4, help="symbols to spread them over (default 4)"
    )
    engine.add_argument(
        "--users", type=int, default=200, help="funded users who send them (default 200)"
    )
    engine.add_argument(
        "--concurrency", type=int, default=400, help="submitters at once (default 400)"
    )
    engine.add_argument("--seed", type=int, default=1, help="the workload's seed (default 1)")
    engine.add_argument(
        "--journal",
        choices=("memory", "postgres"),
        default="memory",
        help="memory (default), or postgres: a fresh database on $DATABASE_URL,"
        " else on a throwaway local server",
    )
    engine.add_argument(
        "--no-relay",
        action="store_true",
        help="skip the channel relay yardstick run first (default: run it)",
    )
    engine.add_argument(
        "--project-every",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="postgres: project the read tables at most this often (default 0.1, as the"
        " engine does); a large value holds them off until the run is over, to time the"
        " journal alone",
    )
    recovery = benches.add_parser("recovery", help="time to be ready after N journaled events")
    recovery.add_argument(
        "--events", type=int, default=1_000_000, help="events to journal first (default 1000000)"
    )
    recovery.add_argument(
        "--journal",
        choices=("memory", "postgres"),
        default="postgres",
        help="postgres (default: $DATABASE_URL, else a throwaway local server) or memory",
    )
    recovery.add_argument(
        "--snapshot-tail",
        type=int,
        default=100_000,
        help="snapshot before the last N events, so a start replays N (default 100000);"
        " -1: no snapshot",
    )
    switch = benches.add_parser(
        "switch", help="the dead man's switch: re-arms per second and firing latency"
    )
    switch.add_argument(
        "--users", type=int, default=100, help="users re-arming, two tasks each (default 100)"
    )
    switch.add_argument(
        "--seconds", type=float, default=5.0, help="how long they re-arm (default 5)"
    )
    switch.add_argument(
        "--rounds", type=int, default=20, help="rounds of ten switches fired (default 20)"
    )
    switch.add_argument(
        "--journal",
        choices=("memory", "postgres"),
        default="postgres",
        help="postgres (default: a fresh database on $DATABASE_URL, else on a throwaway"
        " local server) or memory",
    )
    journal = benches.add_parser("journal", help="PostgreSQL journal append and read times")
    journal.add_argument(
        "--total", type=int, default=100_000, help="events to append (default 100000)"
    )
    load = commands.add_parser("loadtest", help="HTTP and WebSocket load against a running server")
    load.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the server (default http://127.0.0.1:8000)"
    )
    load.add_argument(
        "--admin-key",
        default=os.environ.get("EXCHANGE_API_KEY", ""),
        help="the server's admin key, to create and fund users (default $EXCHANGE_API_KEY)",
    )
    load.add_argument(
        "--mode",
        choices=("http", "ws", "ws-batch", "batch", "cancel-on-disconnect"),
        default="http",
        help="http: single orders over REST, with book subscribers; ws: orders over the"
        " WebSocket, pipelined; ws-batch: the same in orders.place_batch; batch: batches"
        " over REST; cancel-on-disconnect: how soon a"
        " dropped connection's orders are cancelled; users: only create users, their keys to"
        " --keys-file (default http)",
    )
    load.add_argument(
        "--symbol",
        default="BTC_AIT,ETH_AIT",
        help="the symbols to trade, comma-separated; http mode trades the first"
        " (default BTC_AIT,ETH_AIT)",
    )
    load.add_argument("--users", type=int, default=20, help="users to create (default 20)")
    load.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="orders per second, in ws mode requests per second, open loop (default 0: as"
        " fast as possible; in ws mode, the closed loop)",
    )
    load.add_argument("--duration", type=float, default=10.0, help="seconds of load (default 10)")
    load.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="http mode: requests in flight at most (default 64)",
    )
    load.add_argument(
        "--subscribers",
        type=int,
        default=0,
        help="http mode: WebSocket subscribers to the symbol's book, timing delivery (default 0)",
    )
    load.add_argument(
        "--connections",
        type=int,
        default=8,
        help="ws, ws-batch and batch modes: connections, each with its own user while there are"
        " enough (default 8)",
    )
    load.add_argument(
        "--in-flight",
        type=int,
        default=50,
        help="ws and ws-batch modes, closed loop: requests unanswered at most per connection"
        " (default 50)",
    )
    load.add_argument(
        "--batch-size",
        type=int,
        default=100,
        help="batch and ws-batch modes: orders a batch (default 100)",
    )
    load.add_argument(
        "--max-resting",
        type=int,
        default=200,
        help="ws and batch modes: resting orders a connection holds before it cancels"
        " (default 200)",
    )
    load.add_argument(
        "--orders",
        type=int,
        default=100,
        help="cancel-on-disconnect mode: resting orders on the dropped connection (default 100)",
    )
    load.add_argument(
        "--close-frame",
        action="store_true",
        help="cancel-on-disconnect mode: close with a close frame (default: reset the TCP"
        " connection)",
    )
    load.add_argument("--seed", type=int, default=1, help="the orders' seed (default 1)")
    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    audit = commands.add_parser(
        "audit", help="verify the journal: hash chain, replay, books, balances and ledger"
    )
    snapshot = commands.add_parser(
        "snapshot", help="save the state the journal holds, so that a start replays only the rest"
    )
    for command in (migrate, audit, snapshot):
        command.add_argument(
            "--database-url",
            default=os.environ.get("DATABASE_URL"),
            help="the PostgreSQL database (default $DATABASE_URL; without one, the local"
            " server of --data-dir, started for the command if it does not run)",
        )
        _data_dir_option(command, "the local PostgreSQL's data, used without a database URL")
    return parser


def _split_commands(commands: Any) -> None:
    """``engine`` and ``gateway``: ``serve`` split in two, over Redis."""
    engine = commands.add_parser(
        "engine", help="run the engine alone, taking commands from gateways over REDIS_URL"
    )
    engine.add_argument(
        "--demo",
        action="store_true",
        help="set up the demo symbols and users, as serve --demo does (default off)",
    )
    engine.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="the address the metrics listener listens on (default 127.0.0.1; 0.0.0.0 for a"
        " scraper on another machine)",
    )
    engine.add_argument(
        "--metrics-port",
        type=int,
        # A string: argparse converts it as it would the option, so a bad value is an
        # error of this option, and of the engine command only.
        default=os.environ.get("METRICS_PORT") or None,
        help="serve /metrics, /health and /ready on this port (default $METRICS_PORT, else"
        " none: no listener; 0 picks a free one)",
    )
    _data_dir_option(engine, "the local PostgreSQL's data (used without DATABASE_URL) and keys")
    gateway = commands.add_parser(
        "gateway", help="run the REST API and WebSocket feed for an engine over REDIS_URL"
    )
    gateway.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)"
    )
    gateway.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="the port to listen on (default $PORT, else 8000; 0 picks a free one)",
    )
    _data_dir_option(
        gateway, "where the admin and secrets keys are kept when not in the environment"
    )
    for parser in (engine, gateway):
        parser.add_argument(
            "--log-format",
            choices=_LOG_FORMATS,
            default=os.environ.get("LOG_FORMAT", "auto"),
            help="the log on stderr: text, json or auto (default $LOG_FORMAT, else auto)",
        )


def _run_split(args: argparse.Namespace) -> int:
    from trading_engine.gateway.processes import run_engine, run_gateway  # noqa: PLC0415

    _configure_logging(args.log_format)
    if args.command == "engine":
        return _listening(
            f"{args.metrics_host}:{args.metrics_port}",
            run_engine,
            demo=args.demo,
            data_dir=args.data_dir,
            database_url=os.environ.get("DATABASE_URL"),
            metrics_host=args.metrics_host,
            metrics_port=args.metrics_port,
        )
    return _listening(
        f"{args.host}:{args.port}",
        run_gateway,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        database_url=os.environ.get("DATABASE_URL"),
    )


def _listening(address: str, server: Callable[..., Awaitable[object]], **options: Any) -> int:
    """Run ``server(**options)``, which listens on ``address``, under Trio: 0 once it
    stops, or 1 with one line on stderr if the address cannot be bound (in use, or not
    this machine's), rather than the traceback of every task it was starting."""
    import trio  # noqa: PLC0415

    try:
        trio.run(functools.partial(server, **options))
    except (OSError, BaseExceptionGroup) as exc:
        refused = _bind_error(exc)
        if refused is None:
            raise
        print(f"trading-engine: cannot listen on {address}: {refused.strerror}", file=sys.stderr)
        return 1
    return 0


def _bind_error(exc: BaseException) -> OSError | None:
    """The error binding a listening socket gives, wherever it is in ``exc``'s groups."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _bind_error(inner)) is not None:
                return found
        return None
    bind_errors = (errno.EADDRINUSE, errno.EADDRNOTAVAIL)
    return exc if isinstance(exc, OSError) and exc.errno in bind_errors else None


def _data_dir_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("TRADING_ENGINE_DATA", ".data")),
        help=f"{what} (default $TRADING_ENGINE_DATA, else .data)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Imports inside the branches keep each command's start-up light.
    if args.command == "serve":
        from trading_engine.serve import serve  # noqa: PLC0415

        _configure_logging(args.log_format)
        return _listening(
            f"{args.host}:{args.port}",
            serve,
            host=args.host,
            port=args.port,
            demo=args.demo,
            data_dir=args.data_dir,
            database_url=os.environ.get("DATABASE_URL"),
        )
    if args.command in ("engine", "gateway"):
        return _run_split(args)
    if args.command == "bench" and args.bench == "replay":
        from trading_engine.benchmarks.replay import replay  # noqa: PLC0415

        if not args.file.is_file():
            print(f"trading-engine: no such file: {args.file}", file=sys.stderr)
            return 2
        return _print(replay(args.file, baseline=not args.no_baseline))
    if args.command == "bench" and args.bench == "engine":
        from trading_engine.benchmarks.engine import run_engine_bench  # noqa: PLC0415

        return _print(
            run_engine_bench(
                orders=args.orders,
                symbols=args.symbols,
                users=args.users,
                concurrency=args.concurrency,
                seed=args.seed,
                journal=args.journal,
                database_url=os.environ.get("DATABASE_URL"),
                relay=not args.no_relay,
                project_every=args.project_every,
            )
        )
    if args.command == "bench" and args.bench == "recovery":
        from trading_engine.benchmarks.recovery import run_recovery_bench  # noqa: PLC0415

        return _print(
            run_recovery_bench(
                events=args.events,
                journal=args.journal,
                snapshot_tail=args.snapshot_tail,
                database_url=os.environ.get("DATABASE_URL"),
            )
        )
    if args.command == "bench" and args.bench == "switch":
        from trading_engine.benchmarks.switch import run_switch_bench  # noqa: PLC0415

        return _print(
            run_switch_bench(
                users=args.users,
                seconds=args.seconds,
                rounds=args.rounds,
                journal=args.journal,
                database_url=os.environ.get("DATABASE_URL"),
            )
        )
    if args.command == "bench" and args.bench == "journal":
        from trading_engine.benchmarks.journal import run_journal_bench  # noqa: PLC0415

        return _print(run_journal_bench(os.environ.get("DATABASE_URL"), total=args.total))
    if args.command == "loadtest":
        from trading_engine.benchmarks.loadtest import run_loadtest  # noqa: PLC0415

        if not args.admin_key:
            print(
                "trading-engine loadtest: pass --admin-key or set EXCHANGE_API_KEY", file=sys.stderr
            )
            return 2
        symbols = [s for s in args.symbol.split(",") if s]
        if args.mode == "http":
            return _print(
                run_loadtest(
                    url=args.url, admin_key=args.admin_key, symbol=symbols[0],
                    users=args.users, rate=args.rate, duration=args.duration,
                    concurrency=args.concurrency, subscribers=args.subscribers, seed=args.seed,
                )
            )  # fmt: skip
        return _print(
            run_loadtest(
                args.mode, url=args.url, admin_key=args.admin_key, symbols=symbols,
                users=args.users, duration=args.duration, rate=args.rate,
                connections=args.connections, in_flight=args.in_flight,
                batch_size=args.batch_size, max_resting=args.max_resting, orders=args.orders,
                cut=not args.close_frame, seed=args.seed,
            )
        )  # fmt: skip
    if args.command in ("migrate", "audit", "snapshot"):
        return _on_database(args.command, args.database_url, args.data_dir)
    return 2  # pragma: no cover - argparse rejects every other command


def _print(result: dict[str, Any]) -> int:
    print(json.dumps(result))
    return 0


def _configure_logging(choice: str) -> None:
    """Send INFO and above to stderr as text lines or JSON lines (see the module docstring)."""
    import logging  # noqa: PLC0415

    from trading_engine.api.metrics import JsonFormatter  # noqa: PLC0415

    if choice == "auto":
        choice = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if choice == "json" else TextFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # Neither format shows the caller's file and line, thread or process: not looking
    # them up takes a third off each record, one of which every request writes (the
    # logging HOWTO's "Optimization"). Tracebacks come from the exception, not these.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class TextFormatter(logging.Formatter):
    """One readable line a record: local time, level, logger, message, then its fields.

    ``14:02:11.274 INFO    trading_engine.api: POST /api/v1/trading/orders 201 status=201 ...``
    """

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{clock}.{int(record.msecs):03d} {record.levelname:<7} {record.name}: "
        line += record.getMessage()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line += "".join(f" {key}={value}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _on_database(command: str, database_url: str | None, data_dir: Path) -> int:
    """Run ``command`` on ``database_url``, else on the local server of ``data_dir``."""
    run = {"migrate": _migrate, "audit": _audit, "snapshot": _snapshot}[command]
    if database_url:
        return run(database_url)
    from trading_engine.storage.local_pg import LocalPostgresError, local_database  # noqa: PLC0415

    try:
        with local_database(data_dir / "postgres") as dsn:
            print(f"trading-engine {command}: the local PostgreSQL at {dsn}", file=sys.stderr)
            return run(dsn)
    except LocalPostgresError as exc:
        print(f"trading-engine {command}: {exc}", file=sys.stderr)
        return 2


def _migrate(database_url: str) -> int:
    import trio  # noqa: PLC0415

    from trading_engine.storage.journal import StorageUnavailable  # noqa: PLC0415
    from trading_engine.storage.postgres import open_postgres_journal  # noqa: PLC0415

    async def run() -> None:
        async with open_postgres_journal(database_url):  # applies pending migrations
            pass

    try:
        trio.run(run)
    except StorageUnavailable as exc:
        print(f"trading-engine migrate: {exc}", file=sys.stderr)
        return 1
    print("migrations applied")
    return 0


def _audit(database_url: str) -> int:
    import trio  # noqa: PLC0415

    from trading_engine.audit import audit  # noqa: PLC0415
    from trading_engine.errors import TradingEngineError  # noqa: PLC0415
    from trading_engine.storage.postgres import open_postgres_journal  # noqa: PLC0415

    async def run() -> dict[str, Any]:
        # No projection in the background: the audit projects when it reads the read
        # tables, and reports it if that fails rather than logging it as it retries.
        async with open_postgres_journal(database_url, project_every=None) as journal:
            return await audit(journal)

    try:
        report = trio.run(run)
    except TradingEngineError as exc:  # opening: unreachable, or migrated by a newer build
        print(f"trading-engine audit: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def _snapshot(database_url: str) -> int:
    import trio  # noqa: PLC0415

    from trading_engine.config import EngineConfig  # noqa: PLC0415
    from trading_engine.errors import TradingEngineError  # noqa: PLC0415
    from trading_engine.snapshots import take_snapshot  # noqa: PLC0415

    try:
        result = trio.run(take_snapshot, database_url, EngineConfig.from_env())
    except TradingEngineError as exc:
        print(f"trading-engine snapshot: {exc}", file=sys.stderr)
        return 1
    return _print(result)


if __name__ == "__main__":
    sys.exit(main())
