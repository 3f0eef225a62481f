"""The local server: loopback only, keeps its data across restarts, says clearly what is wrong."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import run_sql
from trading_engine.storage.local_pg import LocalPostgres, LocalPostgresError


def test_the_server_listens_on_loopback_only_and_keeps_its_data_across_a_restart(
    own_server: LocalPostgres,
) -> None:
    dsn = own_server.dsn
    assert dsn.startswith("postgresql://postgres@127.0.0.1:")
    assert dsn.endswith("/trading_engine")
    settings = run_sql(
        dsn,
        "SELECT current_setting('listen_addresses') AS listen,"
        " current_setting('unix_socket_directories') AS sockets",
    )
    assert (settings[0]["listen"], settings[0]["sockets"]) == ("127.0.0.1", "")
    run_sql(dsn, "CREATE TABLE kept (n int)", "INSERT INTO kept VALUES (42)")

    own_server.stop()
    assert not own_server.running()
    started = time.perf_counter()
    assert own_server.start() == dsn, "a restart keeps the port, so handed-out DSNs stay valid"
    assert time.perf_counter() - started < 5
    assert [row["n"] for row in run_sql(dsn, "SELECT n FROM kept")] == [42]

    # Another handle on the same directory (a new process after a crash) adopts the server.
    other = LocalPostgres(own_server.data_dir, durable=False)
    assert other.start() == dsn
    assert other.running()


def test_a_directory_with_other_files_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    with pytest.raises(LocalPostgresError, match="not empty but holds no cluster"):
        LocalPostgres(data).start()


def test_a_cluster_of_another_major_version_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("9\n")
    with pytest.raises(LocalPostgresError, match="holds a PostgreSQL 9 cluster"):
        LocalPostgres(data).start()


def test_a_database_name_that_needs_quoting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalPostgresError, match="database name"):
        LocalPostgres(tmp_path, database="x'; DROP")
