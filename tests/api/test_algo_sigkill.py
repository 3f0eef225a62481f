"""A TWAP over real HTTP survives a SIGKILL of ``serve``: N slices, exactly N children."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.api.test_serve import _listening
from trading_engine.serve import demo_key

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "algo-sigkill-key"
ALICE, BOB = "demo_alice", "demo_bob"
P = "/api/v1/trading"


@asynccontextmanager
async def serving(database_url: str, data_dir: Path) -> AsyncIterator[str]:
    """``trading-engine serve --demo`` as its own process: its URL; SIGKILLed on exit."""
    env = os.environ | {"DATABASE_URL": database_url, "EXCHANGE_API_KEY": ADMIN}
    command = [sys.executable, "-m", "trading_engine.cli", "serve", "--demo", "--host",
               "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)]  # fmt: skip
    with (data_dir / "stderr.log").open("ab") as log_file:
        process = await trio.lowlevel.open_process(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file
        )
    try:
        with trio.fail_after(30):
            yield await _listening(process)
    finally:
        process.kill()  # SIGKILL: no shutdown of any kind
        await process.wait()


async def funded_user(database_url: str, data_dir: Path, user: str, asset: str, amount: str) -> str:
    """Create ``user`` with a deposit of ``amount`` ``asset`` on a ``serving`` engine
    (SIGKILLed after); the user's API key."""
    async with (
        serving(database_url, data_dir) as url,
        httpx.AsyncClient(base_url=url + P, headers={"X-API-Key": ADMIN}, timeout=10) as admin,
    ):
        created = await admin.post("/admin/users", json={"user_id": user})
        assert created.status_code == 201, created.text
        deposit = {"user_id": user, "asset": asset, "amount": amount}
        assert (await admin.post("/admin/deposits", json=deposit)).status_code == 200
    key: str = created.json()["api_key"]
    return key


def client(url: str, user: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url + P, headers={"X-API-Key": demo_key(ADMIN, user)}, timeout=10
    )


async def test_a_twap_of_n_slices_makes_exactly_n_children_across_a_sigkill(
    database_url: str, tmp_path: Path
) -> None:
    body = {"type": "twap", "symbol": "BTC_AIT", "side": "buy", "quantity": "0.0004",
            "duration_s": "8", "slices": 4, "limit_price": "1000"}  # fmt: skip
    async with (
        serving(database_url, tmp_path) as url,
        client(url, BOB) as bob,
        client(url, ALICE) as alice,
    ):
        ask = {"symbol": "BTC_AIT", "side": "sell", "type": "limit", "quantity": "1",
               "price": "1000"}  # fmt: skip
        assert (await bob.post("/orders", json=ask)).status_code == 201
        started = await alice.post("/algos", json=body)
        assert started.status_code == 201, started.text
        algo_id = started.json()["algo_id"]
        with trio.fail_after(10):
            while len((await alice.get(f"/algos/{algo_id}")).json()["children"]) < 2:
                await trio.sleep(0.05)
    async with serving(database_url, tmp_path) as url, client(url, ALICE) as alice:
        with trio.fail_after(30):
            while (algo := (await alice.get(f"/algos/{algo_id}")).json())["status"] in (
                "running",
                "paused",
            ):
                await trio.sleep(0.1)
        assert algo["status"] == "completed"
        assert algo["filled_quantity"] == "0.0004"
        assert len(algo["children"]) == 4
        orders: list[dict[str, Any]] = (
            await alice.get(f"/users/{ALICE}/orders?status=all&limit=1000")
        ).json()["orders"]
        mine = [o for o in orders if o["algo_id"] == algo_id]
        assert sorted(o["order_id"] for o in mine) == sorted(algo["children"])
        assert [o["quantity"] for o in sorted(mine, key=lambda o: int(o["order_id"]))] == [
            "0.0001"
        ] * 4
