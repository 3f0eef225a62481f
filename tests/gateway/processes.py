"""``trading-engine engine`` and ``trading-engine gateway`` as real processes, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

from trading_engine.serve import demo_key

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "gateway-test-key"
P = "/api/v1/trading"


class Cluster:
    """Where the processes find PostgreSQL and Redis, and their common data directory."""

    def __init__(self, database_url: str, redis_url: str, data_dir: Path) -> None:
        self.env = os.environ | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "EXCHANGE_API_KEY": ADMIN,
            "LOG_FORMAT": "json",
        }
        self.data_dir = data_dir

    async def _start(
        self, args: list[str], name: str, env: dict[str, str] | None = None
    ) -> tuple[trio.Process, str]:
        command = [sys.executable, "-m", "trading_engine.cli", *args,
                   "--data-dir", str(self.data_dir)]  # fmt: skip
        with (self.data_dir.parent / f"{name}.log").open("ab") as log_file:
            process = await trio.lowlevel.open_process(
                command, cwd=ROOT, env=self.env | (env or {}), stdout=subprocess.PIPE,
                stderr=log_file,
            )  # fmt: skip
        with trio.fail_after(30):
            return process, await _first_line(process)

    @asynccontextmanager
    async def engine(self, *, demo: bool = True) -> AsyncIterator[trio.Process]:
        """An engine process, running once it takes commands; SIGKILLed on exit if alive."""
        process, line = await self._start(["engine", *(["--demo"] if demo else [])], "engine")
        assert line.startswith("trading engine running"), line
        try:
            yield process
        finally:
            process.send_signal(signal.SIGCONT)
            process.kill()
            await process.wait()

    @asynccontextmanager
    async def gateway(self, **env: str) -> AsyncIterator[str]:
        """A gateway process on a free port: its URL; SIGKILLed on exit."""
        process, line = await self._start(
            ["gateway", "--host", "127.0.0.1", "--port", "0"], "gateway", env
        )
        assert line.startswith("trading engine listening on "), line
        try:
            yield line.rsplit(" ", 1)[1]
        finally:
            process.kill()
            await process.wait()


async def _first_line(process: trio.Process) -> str:
    assert process.stdout is not None
    seen = b""
    while b"\n" not in seen:
        chunk = await process.stdout.receive_some()
        assert chunk, "the process ended before it was ready"
        seen += chunk
    return seen.split(b"\n", 1)[0].decode()


def client(url: str, user: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url + P, headers={"X-API-Key": demo_key(ADMIN, user)}, timeout=15
    )


async def until_ready(http: httpx.AsyncClient, seconds: float = 20) -> None:
    """Wait until the gateway answers ``/ready`` with 200 (the engine beats)."""
    with trio.fail_after(seconds):
        while True:
            response = await http.get(http.base_url.copy_with(path="/ready"))
            if response.status_code == 200:
                return
            await trio.sleep(0.1)
