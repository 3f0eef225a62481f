"""The engine process's own limits: a graceful stop, and a bound on the calls it runs."""

from __future__ import annotations

import signal
from typing import Any

import httpx
import trio

from tests.gateway.processes import ALICE, Cluster, client, limit_order, ready_client, until_ready


def _order(n: int, prefix: str) -> dict[str, Any]:
    return limit_order(f"100.0{n % 10}", f"{prefix}-{n}")


async def _place(http: httpx.AsyncClient, body: dict[str, Any], out: list[Any]) -> None:
    response = await http.post("/orders", json=body)
    code = response.json().get("error", {}).get("code")
    out.append((body, response.status_code, code))


async def _resend_places_anew(http: httpx.AsyncClient, body: dict[str, Any]) -> bool:
    """Whether a resend of ``body`` placed a new order (201), not found one (200)."""
    response = await http.post("/orders", json=body)
    assert response.status_code in (200, 201), response.text
    return response.status_code == 201


async def test_a_sigterm_answers_the_calls_under_way_and_refuses_the_rest(cluster: Cluster) -> None:
    """Orders flow from eight clients when the engine gets SIGTERM: each is answered
    201 (and is in the journal) or 503 ``engine_unavailable`` (and was never placed),
    none ``outcome_unknown``; the engine exits cleanly."""
    answers: list[Any] = []
    async with cluster.gateway(RATE_LIMIT_PER_SEC="0") as url, client(url, ALICE) as alice:
        async with cluster.engine() as engine:
            await until_ready(alice)

            stopped = trio.Event()

            async def keep_placing(worker: int) -> None:
                for n in range(worker, 100_000, 8):
                    if stopped.is_set():
                        return  # once the request under way is answered
                    await _place(alice, _order(n, "t"), answers)

            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    for worker in range(8):
                        nursery.start_soon(keep_placing, worker)
                    await trio.sleep(1.0)
                    engine.send_signal(signal.SIGTERM)
                    assert await engine.wait() == 0
                    await trio.sleep(0.2)
                    stopped.set()
        codes = {(status, code) for _, status, code in answers}
        assert (201, None) in codes
        assert (503, "engine_unavailable") in codes
        assert codes <= {(201, None), (503, "engine_unavailable")}, codes
        async with cluster.engine(demo=False):
            await until_ready(alice)
            for body, status, _ in answers[-40:]:
                assert await _resend_places_anew(alice, body) == (status == 503), body


async def test_calls_past_max_inflight_are_answered_busy_and_never_run(cluster: Cluster) -> None:
    answers: list[Any] = []
    async with (
        cluster.engine(MAX_INFLIGHT="2"),
        cluster.gateway(RATE_LIMIT_PER_SEC="0") as url,
        ready_client(url, ALICE) as alice,
    ):
        async with trio.open_nursery() as nursery:
            for n in range(40):
                nursery.start_soon(_place, alice, _order(n, "c"), answers)
        codes = [(status, code) for _, status, code in answers]
        assert (503, "busy") in codes, codes
        assert set(codes) <= {(201, None), (503, "busy")}, codes
        for body, status, _ in answers:
            assert await _resend_places_anew(alice, body) == (status == 503), body
