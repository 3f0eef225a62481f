"""What each split process shows an operator: the engine's own listener (``/metrics``,
``/health``, ``/ready``), and a gateway's ``/metrics`` with its link to the engine."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.gateway.processes import Cluster, client, scrape, until_ready

ALICE, BOB = "demo_alice", "demo_bob"
TOKEN = "engine-metrics-token"
EXECUTED = 'te_engine_calls_total{outcome="executed"}'
STOPPED = 'te_gateway_calls_unanswered_total{kind="command",reason="engine_stopped"}'


def _order(side: str, price: str = "100") -> dict[str, Any]:
    return {"symbol": "BTC_AIT", "side": side, "type": "limit", "quantity": "0.01",
            "price": price}  # fmt: skip


async def test_the_engine_serves_its_figures_health_and_readiness_on_its_own_port(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Orders placed through a gateway move the engine's journal, command and market-data
    figures; ``/metrics`` needs the token; ``/ready`` is 200 while the engine takes calls
    and 503 once a SIGTERM stops it."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine(metrics=True, METRICS_TOKEN=TOKEN) as engine,
        cluster.gateway() as url,
        client(url, ALICE) as alice,
        client(url, BOB) as bob,
        httpx.AsyncClient(base_url=cluster.engine_url or "", timeout=10) as probe,
    ):
        await until_ready(alice)
        assert (await probe.get("/health")).json() == {"status": "ok"}
        ready = await probe.get("/ready")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready", "symbols": 2})
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            refused = await probe.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "unauthenticated"
            assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        before = await scrape(cluster.engine_url or "", TOKEN)
        for n in range(5):
            placed = await alice.post("/orders", json=_order("buy", f"10{n}"))
            assert placed.status_code == 201, placed.text
        sold = await bob.post("/orders", json=_order("sell", "100") | {"quantity": "0.05"})
        assert sold.status_code == 201, sold.text
        assert len(sold.json()["trades"]) == 5
        after = await scrape(cluster.engine_url or "", TOKEN)
        assert after[EXECUTED] >= before[EXECUTED] + 6
        assert after["te_journal_commits_total"] >= before["te_journal_commits_total"] + 6
        assert after["te_journal_events_total"] > before["te_journal_events_total"]
        assert after["te_journal_writes_total"] > before["te_journal_writes_total"]
        assert after["te_engine_calls_running"] == 0
        assert after['te_engine_calls_total{outcome="busy"}'] == 0
        assert after["te_marketdata_published_total"] > before["te_marketdata_published_total"]
        assert after['te_marketdata_publish_dropped_total{reason="outbox_full"}'] == 0
        assert "te_read_tables_lag_seconds" in after
        assert after["te_websocket_subscribers"] == 0
        # The engine process's own CPU, memory and files, as each process's scrape has.
        assert after["process_cpu_seconds_total"] >= before["process_cpu_seconds_total"] > 0
        assert after["process_resident_memory_bytes"] > 2**20
        assert after["process_open_fds"] > 0
        assert not [name for name in after if name.startswith(("te_gateway_", "te_http_"))]

        engine.send_signal(signal.SIGTERM)
        with trio.fail_after(5):
            while (stopping := await probe.get("/ready")).status_code == 200:
                await trio.sleep(0.05)
        assert stopping.status_code == 503
        assert stopping.json()["error"]["code"] == "engine_unavailable"
        assert await engine.wait() == 0


async def test_a_gateway_shows_its_link_to_the_engine_and_not_the_engines_journal(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """A gateway's ``/metrics`` counts its calls to the engine and sees the engine frozen
    (SIGSTOP): the order under way is in flight until the heartbeat lapses, then counted
    unanswered (503 ``outcome_unknown``), the next refused at once, until the engine is
    back. It has no ``te_journal_`` series: those are the engine's."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with (
        cluster.engine() as engine,
        cluster.gateway() as url,
        client(url, ALICE) as alice,
    ):
        await until_ready(alice)
        assert (await alice.post("/orders", json=_order("buy"))).status_code == 201
        figures = await scrape(url)
        assert not [name for name in figures if name.startswith("te_journal_")]
        assert figures["te_gateway_engine_alive"] == 1
        assert figures["te_gateway_calls_total"] >= 2  # the key, the order
        assert figures["te_gateway_calls_in_flight"] == 0
        assert figures[STOPPED] == 0
        assert "te_gateway_feed_malformed_total" in figures

        answers: list[httpx.Response] = []

        async def place() -> None:
            answers.append(await alice.post("/orders", json=_order("buy", "99")))

        engine.send_signal(signal.SIGSTOP)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(place)
                with trio.fail_after(5):
                    while (await scrape(url))["te_gateway_calls_in_flight"] != 1:
                        await trio.sleep(0.05)
                    while (figures := await scrape(url))["te_gateway_engine_alive"] != 0:
                        await trio.sleep(0.1)
            assert figures["te_gateway_calls_in_flight"] == 0
            assert figures[STOPPED] == 1
            assert answers[0].status_code == 503
            assert answers[0].json()["error"]["code"] == "outcome_unknown"
            refused = await alice.post("/orders", json=_order("buy", "98"))
            assert refused.json()["error"]["code"] == "engine_unavailable"
            figures = await scrape(url)
            assert figures["te_gateway_calls_refused_total"] == 1
        finally:
            engine.send_signal(signal.SIGCONT)
        await until_ready(alice)
        assert (await scrape(url))["te_gateway_engine_alive"] == 1
