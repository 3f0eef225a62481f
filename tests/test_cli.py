"""The ``trading-engine`` command as a newcomer meets it: its help, its log, its database."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import trio

from tests.subprocesses import first_line
from trading_engine.cli import _parser
from trading_engine.storage.local_pg import LocalPostgres

ROOT = Path(__file__).resolve().parents[1]


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, nested in _subcommands(sub):
                    yield f"{name} {inner}", nested


def test_every_option_of_every_subcommand_has_help_that_states_its_default() -> None:
    missing: list[str] = []
    without_default: list[str] = []
    commands = list(_subcommands(_parser()))
    assert {"serve", "migrate", "audit", "snapshot", "loadtest", "bench engine"} <= {
        name for name, _ in commands
    }
    for name, command in commands:
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                missing.append(label)
            elif action.option_strings and "default" not in action.help:
                without_default.append(label)
    assert missing == []
    assert without_default == []


def test_serve_listens_on_loopback_unless_told_and_its_port_help_names_port_variable() -> None:
    parser = _parser()
    assert parser.parse_args(["serve"]).host == "127.0.0.1"
    assert parser.parse_args(["serve", "--host", "0.0.0.0"]).host == "0.0.0.0"
    serve = dict(_subcommands(parser))["serve"]
    port = next(action for action in serve._actions if "--port" in action.option_strings)
    assert port.help is not None
    assert "$PORT" in port.help
    assert "8000" in port.help


_LOG_ONE_REQUEST = """
import logging, sys
from trading_engine.cli import _configure_logging
_configure_logging(sys.argv[1])
logging.getLogger("trading_engine.api").info(
    "POST /orders 201", extra={"fields": {"request_id": "r1", "status": 201}}
)
"""


def _stderr_of_logging(choice: str, *, on_a_terminal: bool) -> str:
    """What a process that logs one request line writes to its stderr."""
    command = [sys.executable, "-c", _LOG_ONE_REQUEST, choice]
    if not on_a_terminal:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        return done.stderr
    controller, terminal = os.openpty()
    try:
        subprocess.run(command, cwd=ROOT, stderr=terminal, check=True)
        return os.read(controller, 65536).decode()
    finally:
        os.close(controller)
        os.close(terminal)


def test_log_lines_are_readable_on_a_terminal_and_json_otherwise() -> None:
    on_terminal = _stderr_of_logging("auto", on_a_terminal=True).strip()
    assert not on_terminal.startswith("{"), on_terminal
    assert "INFO" in on_terminal
    assert "trading_engine.api: POST /orders 201 request_id=r1 status=201" in on_terminal

    piped = json.loads(_stderr_of_logging("auto", on_a_terminal=False))
    assert piped["msg"] == "POST /orders 201"
    assert (piped["level"], piped["request_id"], piped["status"]) == ("info", "r1", 201)


def test_log_format_flag_overrides_what_the_terminal_suggests() -> None:
    assert json.loads(_stderr_of_logging("json", on_a_terminal=True))["request_id"] == "r1"
    assert "status=201" in _stderr_of_logging("text", on_a_terminal=False)


def _env_without_database() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "EXCHANGE_API_KEY"):
        env.pop(name, None)
    return env


async def _run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "trading_engine.cli", *args, "--data-dir", str(data_dir)]
    return await trio.run_process(
        command, cwd=ROOT, env=_env_without_database(), capture_stdout=True,
        capture_stderr=True, check=False,
    )  # fmt: skip


async def test_audit_and_snapshot_find_the_local_database_of_serve_running_or_stopped(
    tmp_path: Path,
) -> None:
    """No DATABASE_URL and no port to dig out of a log: the commands read the data directory."""
    command = [sys.executable, "-m", "trading_engine.cli", "serve", "--demo", "--port", "0",
               "--data-dir", str(tmp_path)]  # fmt: skip
    with (tmp_path.parent / "serve.log").open("wb") as log_file:
        process = await trio.lowlevel.open_process(
            command, cwd=ROOT, env=_env_without_database(), stdout=subprocess.PIPE,
            stderr=log_file,
        )  # fmt: skip
    try:
        with trio.fail_after(60):
            first = await first_line(process)
        assert first.startswith("trading engine listening on http://127.0.0.1:"), first

        with trio.fail_after(60):
            running = await _run("audit", data_dir=tmp_path)
        assert running.returncode == 0, running.stderr.decode()
        report = json.loads(running.stdout)
        assert report["ok"] is True
        assert LocalPostgres(tmp_path / "postgres").running(), "serve's server is left running"

        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await process.wait() == 0
        assert not LocalPostgres(tmp_path / "postgres").running()

        with trio.fail_after(60):
            stopped = await _run("audit", data_dir=tmp_path)
            snapshot = await _run("snapshot", data_dir=tmp_path)
        assert stopped.returncode == 0, stopped.stderr.decode()
        again = json.loads(stopped.stdout)
        assert again["ok"] is True
        assert again.keys() == report.keys()
        assert {key: again[key] for key in again if key != "seconds"} == {
            key: report[key] for key in report if key != "seconds"
        }, "the same journal, audited again"
        assert snapshot.returncode == 0, snapshot.stderr.decode()
        assert json.loads(snapshot.stdout)["events"] > 0
        assert not LocalPostgres(tmp_path / "postgres").running(), "started for it, then stopped"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        LocalPostgres(tmp_path / "postgres").stop(mode="immediate")


async def test_commands_without_a_database_say_how_to_get_one(tmp_path: Path) -> None:
    with trio.fail_after(30):
        done = await _run("migrate", data_dir=tmp_path)
    assert done.returncode == 2
    message = done.stderr.decode()
    assert "no local database in" in message
    assert "trading-engine serve" in message
    assert "DATABASE_URL" in message
    assert not (tmp_path / "postgres").exists(), "no cluster is created by asking"
