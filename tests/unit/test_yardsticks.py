"""The benchmarks' yardsticks: the channel relay and the bare HTTP echo do what they claim."""

from __future__ import annotations

import httpx
import trio

from tests.api.conftest import serve
from trading_engine.benchmarks.echo import create_echo_app
from trading_engine.benchmarks.engine import run_engine_bench
from trading_engine.benchmarks.relay import relay_per_second


async def test_relay_relays_every_message_and_reports_a_rate() -> None:
    # 1,000 messages from 7 submitters: each gets its own answers back, none hangs.
    with trio.fail_after(30):
        rate = await relay_per_second(1_000, 7)
    assert rate > 0


def test_engine_bench_reports_the_relay_and_the_ratio() -> None:
    result = run_engine_bench(orders=400, symbols=2, users=10, concurrency=20)
    assert result["orders"] == result["accepted"] == 400
    assert result["relay_per_sec"] > 0
    assert result["ratio_to_relay"] == round(result["orders_per_sec"] / result["relay_per_sec"], 3)
    without = run_engine_bench(orders=400, symbols=2, users=10, concurrency=20, relay=False)
    assert "relay_per_sec" not in without


async def test_echo_answers_with_the_body_over_real_http() -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await serve(nursery, create_echo_app(), stop)
        async with httpx.AsyncClient(base_url=url) as client:
            body = {"symbol": "BTC_AIT", "quantity": "0.001", "price": "30000"}
            answer = await client.post("/echo", json=body)
        stop.set()
    assert answer.status_code == 201
    assert answer.json() == body
