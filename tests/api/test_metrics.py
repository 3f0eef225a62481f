"""``/metrics`` over real HTTP: label values clients cannot multiply, and its optional token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from tests.api.conftest import ADMIN, Server, serve
from trading_engine.api.app import OPENAPI_PATH, create_app
from trading_engine.config import EngineConfig
from trading_engine.errors import InvalidInput

TOKEN = "metrics-token-0123456789_abcdef"
_SERIES = re.compile(r"^te_http_request_seconds_count\{(.*)\} (\S+)$", re.MULTILINE)


def latency_series(text: str) -> dict[tuple[str, str, str], float]:
    """The latency histogram's series in a scrape: (method, route, status) to its count."""
    series = {}
    for labels, count in _SERIES.findall(text):
        named = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        series[named["method"], named["route"], named["status"]] = float(count)
    return series


async def test_odd_methods_and_unmatched_paths_collapse_into_a_bounded_set_of_series(
    server: Server,
) -> None:
    async def send(client: httpx.AsyncClient, numbers: range) -> None:
        for n in numbers:
            odd = await client.request(f"X{n}Y", "/api/v1/trading/symbols")  # a route's path
            assert odd.status_code == 405
            odd = await client.request(f"M{n}", f"/nothing/{n}")
            assert odd.status_code == 404
            unmatched = await client.get(f"/api/v1/trading/nothing-{n}")
            assert unmatched.status_code == 404

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        await client.get("/metrics")  # its own series, before the first count
        await send(client, range(3))
        first = latency_series((await client.get("/metrics")).text)
        await send(client, range(3, 300))
        last = latency_series((await client.get("/metrics")).text)
    assert last.keys() == first.keys()
    assert {("other", "unmatched", "405"), ("other", "unmatched", "404")} <= last.keys()
    assert {key for key in last if key[0] == "other"} == {
        ("other", "unmatched", "405"),
        ("other", "unmatched", "404"),
    }
    assert last["other", "unmatched", "405"] == 300
    assert last["other", "unmatched", "404"] == 300
    assert last["GET", "unmatched", "404"] == 300
    assert last["GET", "/metrics", "200"] == 2


@pytest.fixture
async def guarded(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with ``/metrics`` behind ``TOKEN``."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await serve(nursery, create_app(server.engine, ADMIN, metrics_token=TOKEN), stop)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client
        stop.set()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"X-API-Key": ADMIN},
        {"Authorization": f"Bearer {ADMIN}"},
    ],
    ids=["none", "wrong", "no-scheme", "basic", "scheme-only", "admin-key", "admin-key-as-bearer"],
)
async def test_with_a_token_metrics_answers_401_to_anything_but_the_token(
    guarded: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await guarded.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["error"]["code"] == "unauthenticated"
    assert TOKEN not in response.text


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_with_a_token_metrics_answers_the_bearer_of_the_token(
    guarded: httpx.AsyncClient, scheme: str
) -> None:
    response = await guarded.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert response.status_code == 200
    assert "te_journal_writes_total" in response.text


def test_the_metrics_token_comes_from_the_environment_and_stays_out_of_the_repr() -> None:
    config = EngineConfig.from_env({"METRICS_TOKEN": "Ab0-._~+/=="})
    assert config.metrics_token == "Ab0-._~+/=="
    assert "Ab0" not in repr(config)
    assert EngineConfig.from_env({"METRICS_TOKEN": ""}).metrics_token is None
    assert EngineConfig.from_env({}).metrics_token is None
    with pytest.raises(InvalidInput) as refused:
        EngineConfig.from_env({"METRICS_TOKEN": "two words"})
    assert refused.value.field == "METRICS_TOKEN"
    assert "two words" not in str(refused.value)


async def test_the_openapi_document_shows_metrics_open_or_behind_its_bearer_token(
    server: Server,
) -> None:
    async with server.client() as anonymous:
        document = (await anonymous.get(server.url + OPENAPI_PATH)).json()
    metrics = document["paths"]["/metrics"]["get"]
    assert metrics["security"] == [{}, {"MetricsToken": []}]
    assert document["components"]["securitySchemes"]["MetricsToken"]["scheme"] == "bearer"
    error = metrics["responses"]["401"]["content"]["application/json"]["schema"]
    assert error["title"] == "ErrorResponse"
    assert list(metrics["responses"]["200"]["content"]) == ["text/plain"]
