"""``trading-engine engine`` and ``trading-engine gateway`` as real processes, for tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from tests.api.rawws import RawClient, raw_client
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
        self.processes: dict[str, trio.Process] = {}
        """Each running gateway's process, by its URL."""
        self.engine_banner = ""
        """What the last engine started printed once it took commands."""
        self.engine_url: str | None = None
        """The engine's own listener (``engine(metrics=True)``), while it runs."""

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
            return process, await _banner(process)

    @asynccontextmanager
    async def engine(
        self, *, demo: bool = True, metrics: bool = False, **env: str
    ) -> AsyncIterator[trio.Process]:
        """An engine process, running once it takes commands; SIGKILLed on exit if alive.
        With ``metrics``, its listener on a free port, at ``engine_url``."""
        args = [
            "engine",
            *(["--demo"] if demo else []),
            *(["--metrics-port", "0"] if metrics else []),
        ]
        process, banner = await self._start(args, "engine", env)
        assert banner.startswith("trading engine running"), banner
        self.engine_banner = banner
        line = banner.split("\n", 1)[0]
        listening = re.search(r"listening on (http://\S+)", line)
        assert (listening is not None) == metrics, line
        self.engine_url = listening.group(1) if listening else None
        try:
            yield process
        finally:
            self.engine_url = None
            process.send_signal(signal.SIGCONT)
            process.kill()
            await process.wait()

    @asynccontextmanager
    async def gateway(self, **env: str) -> AsyncIterator[str]:
        """A gateway process on a free port: its URL; SIGKILLed on exit."""
        process, banner = await self._start(
            ["gateway", "--host", "127.0.0.1", "--port", "0"], "gateway", env
        )
        assert banner.startswith("trading engine listening on "), banner
        url = banner.split("\n", 1)[0].rsplit(" ", 1)[1]
        self.processes[url] = process
        try:
            yield url
        finally:
            del self.processes[url]
            process.send_signal(signal.SIGCONT)
            process.kill()
            await process.wait()


async def _banner(process: trio.Process) -> str:
    """What the process printed once it was ready: its first line, and the rest of the
    banner printed with it (one write)."""
    assert process.stdout is not None
    seen = b""
    while b"\n" not in seen:
        chunk = await process.stdout.receive_some()
        assert chunk, "the process ended before it was ready"
        seen += chunk
    return seen.rsplit(b"\n", 1)[0].decode()


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


async def scrape(url: str, token: str | None = None) -> dict[str, float]:
    """``GET url/metrics`` (with ``token`` as the bearer): each sample by its name and
    labels as written, ``te_engine_calls_total{outcome="busy"}``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url + "/metrics", headers=headers)
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def ws_url(url: str) -> str:
    return url.replace("http", "ws", 1) + P + "/ws"


class Closed(Exception):
    """The server ended the WebSocket connection (a close frame, or the TCP connection
    ended or was reset)."""


class BookWatcher:
    """A WebSocket subscriber of ``book.SYMBOL`` that checks the ``seq`` chain of what it
    reads (a snapshot, then deltas whose ``prev_seq`` is the last ``seq``) and keeps the
    book it builds and when each message came."""

    def __init__(self, ws: RawClient, symbol: str = "BTC_AIT") -> None:
        self.ws = ws
        ws.answers_close = False  # the connection ends either way; the server cuts it
        self.channel = f"book.{symbol}"
        self.seq: int | None = None
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.deltas = 0
        self.snapshots = 0
        self.arrivals: list[float] = []

    async def subscribe(self) -> None:
        """Subscribe and read up to the snapshot."""
        await self.ws.send_text(json.dumps({"op": "subscribe", "channels": [self.channel]}))
        with trio.fail_after(10):
            while self.snapshots == 0:
                await self.read_one()

    async def read_one(self) -> dict[str, Any]:
        """Read one message and apply it; raises ``Closed`` once the server ended the
        connection, ``AssertionError`` at a gap."""
        message: dict[str, Any] = json.loads(await self._text())
        self.arrivals.append(trio.current_time())
        if message.get("channel") != self.channel:
            return message
        if message["type"] == "snapshot":
            self.snapshots += 1
            self.bids = dict(map(tuple, message["bids"]))
            self.asks = dict(map(tuple, message["asks"]))
            self.seq = message["seq"]
        elif message["type"] == "delta":
            assert self.seq is not None, "a delta before any snapshot"
            assert message["prev_seq"] == self.seq, f"gap: {message} after seq {self.seq}"
            for side, levels in ((self.bids, message["bids"]), (self.asks, message["asks"])):
                for price, qty in levels:
                    if Decimal(qty) == 0:
                        side.pop(price, None)
                    else:
                        side[price] = qty
            self.seq = message["seq"]
            self.deltas += 1
        return message

    async def _text(self) -> str:
        while True:
            try:
                event = await self.ws.event()
            except OSError as exc:  # reset
                raise Closed(str(exc)) from exc
            if isinstance(event, CloseConnection):
                raise Closed(f"closed: {event.code} {event.reason}")
            if isinstance(event, TextMessage):
                return str(event.data)
            assert isinstance(event, Ping | Pong), event

    async def read_until(self, done: Callable[[BookWatcher], bool], seconds: float = 10) -> None:
        with trio.fail_after(seconds):
            while not done(self):
                await self.read_one()

    async def until_closed(self) -> None:
        """Read until the server ends the connection."""
        try:
            await self.read_forever()
        except Closed:
            return

    async def read_forever(self) -> None:
        """Read until the connection ends (``Closed``) or the task is cancelled."""
        while True:
            await self.read_one()


@asynccontextmanager
async def watching(url: str, symbol: str = "BTC_AIT") -> AsyncIterator[BookWatcher]:
    """A ``BookWatcher`` on the gateway at ``url``, subscribed (its snapshot read)."""
    async with raw_client(ws_url(url)) as ws:
        watcher = BookWatcher(ws, symbol)
        await watcher.subscribe()
        yield watcher
