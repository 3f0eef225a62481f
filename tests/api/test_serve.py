"""``trading-engine serve`` as its own process, stopped with SIGTERM as an operator would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import trio
from trio_websocket import open_websocket_url
from wsproto.events import CloseConnection

from tests.api.rawws import raw_client, refused_handshake
from tests.api.test_http_server import parse, read_until_closed
from tests.subprocesses import first_line
from trading_engine.api.http_server import MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parents[2]


async def _listening(process: trio.Process) -> str:
    """The address ``serve`` announces on its first line."""
    first = await first_line(process)
    assert first.startswith("trading engine listening on "), first
    return first.rsplit(" ", 1)[1]


async def test_sigterm_closes_feeds_with_1001_and_exits_at_once_with_idle_clients(
    database_url: str, tmp_path: Path
) -> None:
    """A subscriber and an idle keep-alive connection do not hold the stop for Hypercorn's
    graceful timeout (10 s): the feed is closed as going away, not cut. Every line the
    server logged on the way is one JSON object, Hypercorn's own lines included."""
    env = os.environ | {"DATABASE_URL": database_url, "EXCHANGE_API_KEY": "serve-test-key"}
    command = [sys.executable, "-m", "trading_engine.cli", "serve", "--demo", "--host",
               "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path)]  # fmt: skip
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as log_file:
        process = await trio.lowlevel.open_process(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file
        )
    try:
        with trio.fail_after(30):
            url = await _listening(process)
        ws_url = url.replace("http", "ws", 1) + "/api/v1/trading/ws"
        async with httpx.AsyncClient(base_url=url) as client, raw_client(ws_url) as ws:
            assert (await client.get("/health")).status_code == 200  # then idle, kept alive
            await ws.send_text(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
            with trio.fail_after(5):
                assert json.loads(await ws.text())["type"] == "subscribed"
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(5):
                while not isinstance(event := await ws.event(), CloseConnection):
                    pass
                await ws.end_of_stream()
                assert await process.wait() == 0
        assert (event.code, event.reason) == (1001, "the server is shutting down")
        lines = log_path.read_text().splitlines()
        records = [json.loads(line) for line in lines]  # a traceback or a plain line fails
        assert all(isinstance(record, dict) for record in records)
        assert any(record.get("logger") == "hypercorn.error" for record in records), lines
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serve_answers_in_the_error_shape_at_the_http_edge_and_guards_metrics(
    database_url: str, tmp_path: Path
) -> None:
    """``serve`` wires what the in-process tests check: Hypercorn's own refusals in the
    error shape, a 413 that closes its connection, ``METRICS_TOKEN``, and the cap on an
    address's WebSocket connections, that address read behind a trusted proxy."""
    env = os.environ | {"DATABASE_URL": database_url, "EXCHANGE_API_KEY": "serve-test-key",
                        "METRICS_TOKEN": "serve-metrics-token", "MAX_WS_PER_ADDRESS": "1",
                        "TRUSTED_PROXY_HOPS": "1"}  # fmt: skip
    command = [sys.executable, "-m", "trading_engine.cli", "serve", "--host", "127.0.0.1",
               "--port", "0", "--data-dir", str(tmp_path)]  # fmt: skip
    process = await trio.lowlevel.open_process(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        with trio.fail_after(30):
            url = await _listening(process)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with trio.fail_after(10):
            async with await trio.open_tcp_stream(host, int(port)) as stream:
                await stream.send_all(b"NOT AN HTTP REQUEST LINE\r\n\r\n")
                refused = await read_until_closed(stream)
            async with httpx.AsyncClient(base_url=url) as client:
                metrics = [
                    await client.get("/metrics", headers=headers)
                    for headers in ({}, {"Authorization": "Bearer serve-metrics-token"})
                ]
                too_large = await client.post(
                    "/api/v1/trading/orders",
                    content=b"x" * (MAX_BODY_BYTES + 1),
                    headers={"X-API-Key": "serve-test-key"},
                )
                after = await client.get("/health")
            ws_url = url.replace("http", "ws", 1) + "/api/v1/trading/ws"
            async with (
                open_websocket_url(ws_url, extra_headers=[(b"X-Forwarded-For", b"10.0.0.1")]),
                open_websocket_url(ws_url, extra_headers=[(b"X-Forwarded-For", b"10.0.0.2")]),
            ):
                over_cap = await refused_handshake(ws_url, [("X-Forwarded-For", "10.0.0.1")])
        answer, _ = parse(refused)
        assert (answer.status, answer.error()["code"]) == (400, "bad_request")
        assert [response.status_code for response in metrics] == [401, 200]
        assert metrics[0].json()["error"]["code"] == "unauthenticated"
        assert (too_large.status_code, too_large.headers["connection"]) == (413, "close")
        assert after.status_code == 200
        assert (over_cap.status, over_cap.json()["error"]["code"]) == (429, "too_many_connections")
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_port_in_use_is_said_in_one_line_and_the_exit_code_is_1(
    database_url: str, tmp_path: Path
) -> None:
    """``serve`` (and ``engine``/``gateway``, by the same code) on a port another server
    holds: one line on stderr naming the address, not a traceback, and exit code 1."""
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = os.environ | {"DATABASE_URL": database_url, "EXCHANGE_API_KEY": "serve-test-key"}
        command = [sys.executable, "-m", "trading_engine.cli", "serve", "--host", "127.0.0.1",
                   "--port", str(port), "--data-dir", str(tmp_path)]  # fmt: skip
        with trio.fail_after(30):
            done = await trio.run_process(command, cwd=ROOT, env=env, capture_stdout=True,
                                          capture_stderr=True, check=False)  # fmt: skip
    assert done.returncode == 1
    said = [line for line in done.stderr.decode().splitlines() if not line.startswith("{")]
    assert said == [f"trading-engine: cannot listen on 127.0.0.1:{port}: Address already in use"]
