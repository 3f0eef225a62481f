"""/ready over HTTP against a PostgreSQL of the test's own, which it stops and starts."""

from __future__ import annotations

import pytest
import trio

from tests.api.conftest import Server
from trading_engine.storage.local_pg import LocalPostgres


@pytest.fixture
def database_url(own_server: LocalPostgres) -> str:
    """The server's journal on ``own_server``, which the test may stop."""
    return own_server.dsn


async def test_ready_is_503_while_postgres_is_down_and_200_once_it_is_back(
    server: Server, own_server: LocalPostgres
) -> None:
    async with server.client() as anonymous:
        assert (await anonymous.get(f"{server.url}/ready")).status_code == 200
        await trio.to_thread.run_sync(lambda: own_server.stop(mode="fast"))
        with trio.fail_after(10):
            down = await anonymous.get(f"{server.url}/ready")
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "storage_unavailable"
        assert (await anonymous.get(f"{server.url}/health")).status_code == 200  # alive
        await trio.to_thread.run_sync(own_server.start)
        with trio.fail_after(20):
            while (await anonymous.get(f"{server.url}/ready")).status_code != 200:
                await trio.sleep(0.1)
