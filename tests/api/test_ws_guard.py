"""Who may open a WebSocket connection (``api/ws_guard.py``), over real connections to a
real server: an upgrade takes a rate-limit token from its address's bucket, an address
holds at most ``max_ws_per_address`` connections at once, every endpoint of both
dialects is guarded, and behind trusted proxies the address is the one they forward."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.api.conftest import ADMIN, Server, serve
from tests.api.rawws import Refusal, raw_client, refused_handshake
from trading_engine.api.app import create_app
from trading_engine.api.metrics import Metrics
from trading_engine.api.ws_guard import GUARDED, WsConnections
from trading_engine.config import EngineConfig
from trading_engine.errors import InvalidInput
from trading_engine.storage.limits import Limiter, Limits, LocalLimiter

OURS = "/api/v1/trading/ws"
PATHS = [OURS, "/ws/0", "/ws/btcait@trade", "/stream?streams=btcait@trade", "/ws-api/v3"]
"""Our feed, and the Binance dialect's market streams (raw and combined) and WebSocket API."""
LOCAL = "127.0.0.1"


@attrs.frozen
class Guarded:
    """A server of ``server``'s engine with the settings under test."""

    url: str
    connections: WsConnections
    metrics: Metrics

    def refused(self) -> dict[str, float]:
        """``te_websocket_refused_total`` by reason, as ``/metrics`` counts it."""
        (family,) = self.metrics.ws_refused.collect()
        return {
            sample.labels["reason"]: sample.value
            for sample in family.samples
            if sample.name.endswith("_total")
        }

    def ws(self, path: str) -> str:
        return self.url.replace("http", "ws", 1) + path

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url + "/api/v1/trading", timeout=10)

    async def closed(self, address: str, held: int) -> None:
        """Wait until the server's handlers of ``address`` have ended but ``held``."""
        with trio.fail_after(5):
            while self.connections.held(address) != held:
                await trio.sleep(0.01)


@asynccontextmanager
async def guarded_server(
    server: Server, *, limiter: Limiter | None = None, cap: int = 50, hops: int = 0
) -> AsyncIterator[Guarded]:
    stop = trio.Event()
    app = create_app(server.engine, ADMIN, limiter, max_ws_per_address=cap, trusted_proxy_hops=hops)
    async with trio.open_nursery() as nursery:
        url = await serve(nursery, app, stop)
        yield Guarded(url, app.config[WsConnections.CONFIG_KEY], app.config["METRICS"])
        stop.set()


def _tight() -> LocalLimiter:
    """Buckets of ``burst`` 2 that do not refill within a test."""
    return LocalLimiter(Limits(rate=0.001, burst=2))


async def _refused(url: str, forwarded: str | None = None) -> Refusal:
    return await refused_handshake(url, [("X-Forwarded-For", forwarded)] if forwarded else [])


def _forwarded(address: str) -> list[tuple[bytes, bytes]]:
    return [(b"X-Forwarded-For", address.encode())]


def _error(refusal: Refusal, path: str) -> tuple[int, Any]:
    """The refusal's status and its error code: ours, or the Binance dialect's."""
    body = refusal.json()
    assert refusal.headers["content-type"] == "application/json"
    if path == OURS:
        return refusal.status, body["error"]["code"]
    return refusal.status, body["code"]


@pytest.mark.parametrize("path", [OURS, "/ws/0", "/ws-api/v3"])
async def test_an_upgrade_finding_its_address_bucket_empty_is_refused_429_unupgraded(
    server: Server, path: str
) -> None:
    """The upgrade takes from the bucket HTTP requests take from: a request and an upgrade
    empty it, then the next upgrade is a 429 with ``Retry-After``, and so is a request."""
    async with guarded_server(server, limiter=_tight()) as guarded, guarded.http() as http:
        assert (await http.get("/symbols")).status_code == 200
        async with open_websocket_url(guarded.ws(path)):
            pass
        refusal = await _refused(guarded.ws(path))
        assert (await http.get("/symbols")).status_code == 429
        held = guarded.connections.held(LOCAL)
        refused = guarded.refused()
    assert int(refusal.headers["retry-after"]) >= 1
    assert refused == {"rate_limited": 1}
    assert _error(refusal, path) == (429, "rate_limited" if path == OURS else -1003)
    assert held == 0


@pytest.mark.parametrize("path", PATHS)
async def test_an_address_at_the_cap_is_refused_until_one_of_its_connections_closes(
    server: Server, path: str
) -> None:
    """The cap counts the address's connections of both dialects together."""
    async with guarded_server(server, cap=2) as guarded, open_websocket_url(guarded.ws(OURS)):
        async with open_websocket_url(guarded.ws(path)):
            refusal = await _refused(guarded.ws(path))
            assert guarded.connections.held(LOCAL) == 2
        await guarded.closed(LOCAL, 1)
        async with open_websocket_url(guarded.ws(path)):
            assert guarded.connections.held(LOCAL) == 2
        assert guarded.refused() == {"too_many_connections": 1}
    expected = "too_many_connections" if path == OURS else -1003
    assert _error(refusal, path) == (429, expected)
    assert "retry-after" not in refusal.headers
    body = refusal.json()
    if path == OURS:
        message = "at most 2 WebSocket connections at once from one address"
        assert body["error"]["message"] == message


@pytest.mark.parametrize("path", [OURS, "/ws/0"])
async def test_a_client_that_drops_the_tcp_connection_gives_its_place_back(
    server: Server, path: str
) -> None:
    """A reset with no close frame ends the server's handler, and the count with it."""
    async with guarded_server(server, cap=1) as guarded:
        async with raw_client(guarded.ws(path)) as dropping:
            refusal = await _refused(guarded.ws(path))
            dropping.cut()
            await guarded.closed(LOCAL, 0)
        async with raw_client(guarded.ws(path)):
            assert guarded.connections.held(LOCAL) == 1
    assert refusal.status == 429


async def test_an_upgrade_its_endpoint_refuses_gives_its_place_back(server: Server) -> None:
    """A handshake the Binance streams refuse (no such stream) after it was admitted."""
    async with guarded_server(server, cap=1) as guarded:
        answers = [await _refused(guarded.ws("/ws/nosuch@trade")) for _ in range(3)]
        assert guarded.connections.held(LOCAL) == 0
    assert [_error(a, "/ws/nosuch@trade") for a in answers] == [(400, -1121)] * 3


async def test_every_websocket_endpoint_is_guarded(server: Server) -> None:
    app = create_app(server.engine, ADMIN)
    rules = [rule for rule in app.url_map.iter_rules() if rule.websocket]
    paths = {OURS, "/ws", "/ws/<path:names>", "/stream", "/ws-api/v3"}
    assert {rule.rule for rule in rules} >= paths
    unguarded = [r.rule for r in rules if not getattr(app.view_functions[r.endpoint], GUARDED, 0)]
    assert unguarded == []


async def test_behind_one_trusted_proxy_each_forwarded_address_has_its_own_bucket_and_cap(
    server: Server,
) -> None:
    """The proxy appends the address it saw: the last ``X-Forwarded-For`` entry is the
    client's, whatever the client put before it."""
    async with guarded_server(server, limiter=_tight(), cap=1, hops=1) as guarded:
        first, second = "10.0.0.1", "10.0.0.2"
        async with (
            open_websocket_url(guarded.ws(OURS), extra_headers=_forwarded(first)),
            open_websocket_url(guarded.ws(OURS), extra_headers=_forwarded(second)),
        ):
            held = {a: guarded.connections.held(a) for a in (first, second, LOCAL)}
            over_cap = await _refused(guarded.ws(OURS), f"{second}, {first}")
            over_rate = await _refused(guarded.ws(OURS), first)
        async with guarded.http() as http:
            statuses = [
                (await http.get("/symbols", headers={"X-Forwarded-For": a})).status_code
                for a in (second, "10.0.0.3", "10.0.0.3", "10.0.0.3")
            ]
    assert held == {first: 1, second: 1, LOCAL: 0}
    assert _error(over_cap, OURS) == (429, "too_many_connections")
    assert _error(over_rate, OURS) == (429, "rate_limited")
    assert statuses == [200, 200, 200, 429]


async def test_without_a_trusted_proxy_the_forwarded_header_is_ignored(server: Server) -> None:
    async with guarded_server(server, limiter=_tight(), cap=1) as guarded:
        async with open_websocket_url(guarded.ws(OURS), extra_headers=_forwarded("10.0.0.1")):
            over_cap = await _refused(guarded.ws(OURS), "10.0.0.2")
            held = guarded.connections.held(LOCAL)
        async with guarded.http() as http:
            status = await http.get("/symbols", headers={"X-Forwarded-For": "10.0.0.3"})
    assert held == 1
    assert _error(over_cap, OURS) == (429, "too_many_connections")
    assert status.status_code == 429  # the upgrades took the peer's two tokens


def test_the_settings_come_from_the_environment() -> None:
    """``MAX_WS_PER_ADDRESS`` 0 lifts the cap; neither setting may be negative."""
    config = EngineConfig.from_env({"MAX_WS_PER_ADDRESS": "0", "TRUSTED_PROXY_HOPS": "2"})
    default = EngineConfig.from_env({})
    assert (config.max_ws_per_address, config.trusted_proxy_hops) == (0, 2)
    assert (default.max_ws_per_address, default.trusted_proxy_hops) == (50, 0)
    uncapped = WsConnections(config.max_ws_per_address)
    assert all(uncapped.open(LOCAL) for _ in range(1000))
    for name in ("MAX_WS_PER_ADDRESS", "TRUSTED_PROXY_HOPS"):
        with pytest.raises(InvalidInput) as bad:
            EngineConfig.from_env({name: "-1"})
        assert bad.value.field == name
