"""The gateway tests' processes: an engine and gateways on this test's PostgreSQL and Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.processes import Cluster
from tests.redis_server import RedisServer


@pytest.fixture
def cluster(database_url: str, redis_server: RedisServer, tmp_path: Path) -> Cluster:
    """Engine and gateway processes to start, on this test's database and Redis server."""
    return Cluster(database_url, redis_server.url, tmp_path / "data")
