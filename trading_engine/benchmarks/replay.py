"""``trading-engine bench replay FILE``: the matcher alone on a seeded order stream.

Feeds every operation through ``Matcher.submit`` and ``Matcher.cancel``, the
same calls the symbol actor makes, with no I/O, self-trade prevention off
(the format has none) and no price band (the format's market orders sweep
until the other side is empty). The stream is parsed into order specs before
the clock starts: parsing belongs to the API edge, not the matcher. The
minimal book in ``baseline.py`` runs the same stream in the same process as
a yardstick, and must agree on the trade digest.
"""

from __future__ import annotations

import gc
import resource
import sys
import time
from pathlib import Path
from typing import Any

from trading_engine.benchmarks.baseline import MinimalBook
from trading_engine.benchmarks.workload import Op, read_ops, trade_digest
from trading_engine.core.enums import OrderType, Side, StpMode, TimeInForce
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.matcher import Matcher
from trading_engine.core.orders import OrderSpec

__all__ = ["replay", "run_matcher"]

_TYPES = {
    "L": (OrderType.LIMIT, TimeInForce.GTC),
    "I": (OrderType.LIMIT, TimeInForce.IOC),
    "M": (OrderType.MARKET, TimeInForce.IOC),
}


def bench_instrument() -> Instrument:
    """Tick = lot = 1 as the format says; no band, no fees."""
    return Instrument.create(
        "BENCH_AIT", "BENCH", "AIT", "1", "1", base_decimals=0, quote_decimals=0
    )


def _commands(ops: list[Op]) -> list[OrderSpec | OrderId]:
    commands: list[OrderSpec | OrderId] = []
    for op in ops:
        if op.kind == "C":
            commands.append(OrderId(op.order_id))
            continue
        kind, tif = _TYPES[op.type]
        side = Side.BUY if op.side == "B" else Side.SELL
        price = op.price if kind is OrderType.LIMIT else 0
        commands.append(
            OrderSpec(
                OrderId(op.order_id), UserId(op.user_id), side, kind, op.quantity, price, 0, tif,
                False, StpMode.NONE,
            )
        )  # fmt: skip
    return commands


def run_matcher(
    commands: list[OrderSpec | OrderId], *, keep_trades: bool
) -> tuple[Matcher, list[Trade], float]:
    """Replay ``commands`` through a fresh matcher; returns it, its trades and the seconds taken.

    With ``keep_trades`` false the events are dropped as they come, as the
    symbol actor drops them once the journal has them; holding a million
    event objects alive would time the garbage collector, not the matcher.
    """
    matcher = Matcher(bench_instrument())
    submit = matcher.submit
    cancel = matcher.cancel
    trades: list[Trade] = []
    # The million parsed commands stand for messages that would arrive one at
    # a time; frozen, the collector stops re-scanning them on every pass.
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    if keep_trades:
        for ts, command in enumerate(commands):
            if isinstance(command, int):
                cancel(command, ts)
            else:
                trades.extend([e for e in submit(command, ts) if type(e) is Trade])
    else:
        for ts, command in enumerate(commands):
            if isinstance(command, int):
                cancel(command, ts)
            else:
                submit(command, ts)
    seconds = time.perf_counter() - started
    gc.unfreeze()
    return matcher, trades, seconds


def replay(path: Path, *, baseline: bool = True) -> dict[str, Any]:
    """Run the benchmark on ``path`` and return the JSON-ready result.

    The timed pass drops events; a second, untimed pass over the same
    commands keeps the trades for the digest and must end in the same state.
    """
    ops = read_ops(path)
    commands = _commands(ops)
    matcher, _, seconds = run_matcher(commands, keep_trades=False)
    timed_state = matcher.state_hash()
    del matcher
    matcher, trades, _ = run_matcher(commands, keep_trades=True)
    resting = sum(
        level.count
        for side in (matcher.book.bids, matcher.book.asks)
        for level in side.levels.values()
    )
    result: dict[str, Any] = {
        "file": str(path),
        "ops": len(ops),
        "seconds": round(seconds, 4),
        "ops_per_sec": round(len(ops) / seconds),
        "trades": len(trades),
        "traded_qty": sum(t.quantity for t in trades),
        "resting_orders": resting,
        "trade_digest": trade_digest(
            (t.maker_order_id, t.taker_order_id, t.price, t.quantity) for t in trades
        ),
        "events": matcher.seq,
        "deterministic": matcher.state_hash() == timed_state,
        "compiled_core": _compiled(),
    }
    del matcher, trades, commands
    if baseline:
        book = MinimalBook()
        gc.collect()
        started = time.perf_counter()
        book.run(ops)
        base_seconds = time.perf_counter() - started
        result["baseline_ops_per_sec"] = round(len(ops) / base_seconds)
        result["ratio_to_baseline"] = round(base_seconds / seconds, 3)
        result["baseline_digest_matches"] = trade_digest(book.trades) == result["trade_digest"]
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["python"] = sys.version.split()[0]
    return result


def _compiled() -> bool:
    import trading_engine.core.matcher as module  # noqa: PLC0415

    return not module.__file__ or not module.__file__.endswith(".py")
