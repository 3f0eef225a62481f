"""SIGKILL the engine under load, restart it, and find every acknowledged order."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import trio

from trading_engine.actors.engine import open_engine
from trading_engine.audit import audit
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderStatus
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId
from trading_engine.storage.postgres import open_postgres_journal

ROOT = Path(__file__).resolve().parents[2]
FINAL = {str(s) for s in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED)}


def _acks(path: Path) -> dict[int, tuple[str, int]]:
    """Per order, the furthest state acknowledged: final statuses win, then the most filled."""
    acked: dict[int, tuple[str, int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue  # the last line may be cut by the kill
        order_id, status, filled = int(parts[0]), parts[1], int(parts[2])
        known = acked.get(order_id)
        if known is None or status in FINAL or filled > known[1]:
            acked[order_id] = (status, max(filled, known[1] if known else 0))
    return acked


async def _check(dsn: str, acks: dict[int, tuple[str, int]]) -> None:
    async with open_postgres_journal(dsn) as journal:
        report = await audit(journal)
        assert report["ok"], report["problems"]
        assert report["hold_mismatches"] == []
        trades = [e for _, e in await journal.read_all() if isinstance(e, Trade)]
        keys = [(t.symbol, t.trade_id) for t in trades]
        assert len(keys) == len(set(keys)), "a trade was written twice"
        async with open_engine(EngineConfig(expire_every=float("inf")), journal) as engine:
            with trio.fail_after(30):
                # Every user's held balance is what their open orders need, as recovered.
                await engine.check_invariants()
                for order_id, (status, filled) in acks.items():
                    view = await engine.order(OrderId(order_id))
                    assert view is not None, f"acknowledged order {order_id} was lost"
                    assert view.filled >= filled, (order_id, view.filled, filled)
                    if status in FINAL:
                        assert str(view.status) == status, (order_id, view.status, status)


def _wait_for_acks(path: Path, count: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(encoding="utf-8").count("\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the engine acknowledged fewer than {count} orders in time")


def test_sigkill_under_load_loses_no_acknowledged_order(database_url: str, tmp_path: Path) -> None:
    ack_log = tmp_path / "acks.log"
    rng = random.Random(20261124)
    seen = 0
    for round_ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.storage.crash_child", database_url, str(ack_log),
             str(round_)],
            cwd=ROOT,
        )  # fmt: skip
        try:
            _wait_for_acks(ack_log, seen + 200, time.monotonic() + 30)
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        acks = _acks(ack_log)
        seen = len(ack_log.read_text(encoding="utf-8").splitlines())
        assert acks, "nothing was acknowledged"
        trio.run(_check, database_url, acks)
