"""``/metrics`` over real HTTP: label values clients cannot multiply."""

from __future__ import annotations

import re

import httpx

from tests.api.conftest import Server

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
