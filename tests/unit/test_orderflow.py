"""The order-entry load generators' pure parts: orders, resting orders, the clock, figures."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from trading_engine.benchmarks.orderflow import (
    Market,
    OrderFlow,
    Resting,
    Schedule,
    latency_ms,
    percentile_ms,
)

MARKETS = [Market("BTC_AIT", 30_000, "0.001"), Market("ETH_AIT", 2_000, "0.01")]


def test_flow_trades_every_market_on_both_sides_and_about_a_third_cross() -> None:
    orders = OrderFlow.seeded(MARKETS, 7).batch(6_000)
    assert Counter(o["symbol"] for o in orders).keys() == {"BTC_AIT", "ETH_AIT"}
    assert Counter(o["side"] for o in orders).keys() == {"buy", "sell"}
    mids = {m.symbol: m.mid for m in MARKETS}
    # A buy above the mid or a sell below it crosses a book resting around the mid.
    crossing = sum(
        (int(o["price"]) > mids[o["symbol"]]) == (o["side"] == "buy")
        and int(o["price"]) != mids[o["symbol"]]
        for o in orders
    )
    assert 0.25 < crossing / len(orders) < 0.4
    assert {o["quantity"] for o in orders if o["symbol"] == "ETH_AIT"} == {"0.01"}
    assert all(o["type"] == "limit" for o in orders)


def test_flow_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    assert OrderFlow.seeded(MARKETS, 3).batch(50) == OrderFlow.seeded(MARKETS, 3).batch(50)
    assert OrderFlow.seeded(MARKETS, 3).batch(50) != OrderFlow.seeded(MARKETS, 4).batch(50)


def test_flow_needs_a_market() -> None:
    with pytest.raises(ValueError, match="market"):
        OrderFlow.seeded([], 1)


def test_resting_keeps_only_orders_on_the_book_and_gives_the_oldest_first() -> None:
    resting = Resting(cap=2)
    for order_id, status in [("1", "open"), ("2", "filled"), ("3", "partially_filled"),
                             ("4", "cancelled"), ("5", "open")]:  # fmt: skip
        resting.record(order_id, status)
    assert resting.over()
    assert resting.oldest() == ["1"]
    assert not resting.over()
    assert resting.oldest(5) == ["3", "5"]
    assert resting.oldest() == []


def test_schedule_spreads_the_rate_evenly_over_the_clients() -> None:
    schedule = Schedule(start=100.0, rate=2_000, clients=8)
    times = sorted(schedule.at(c, n) for c in range(8) for n in range(schedule.count(c, 1.0)))
    assert len(times) == 2_000
    assert times[0] == 100.0
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
    assert gaps == {0.0005}
    # Each client sends every clients / rate seconds, its first at client / rate.
    assert schedule.at(3, 0) == pytest.approx(100.0015)
    assert schedule.at(3, 1) - schedule.at(3, 0) == pytest.approx(0.004)


def test_schedule_counts_add_up_when_the_rate_does_not_divide_evenly() -> None:
    schedule = Schedule(start=0.0, rate=1_001, clients=3)
    assert sum(schedule.count(c, 2.0) for c in range(3)) == 2_002
    assert Schedule(0.0, 10, 4).count(3, 0.2) == 0  # two orders: clients 0 and 1


def test_schedule_refuses_no_rate_or_no_client() -> None:
    with pytest.raises(ValueError, match="rate"):
        Schedule(0.0, 0)
    with pytest.raises(ValueError, match="client"):
        Schedule(0.0, 10, 0)


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    seconds = [n / 1000 for n in range(1, 1001)]  # 1..1000 ms
    assert percentile_ms(seconds, 0.5) == 501.0
    assert percentile_ms(seconds, 0.99) == 991.0
    assert percentile_ms([], 0.99) == 0.0
    assert latency_ms(reversed(seconds), "x_") == {
        "x_p50_ms": 501.0, "x_p99_ms": 991.0, "x_p999_ms": 1000.0, "x_max_ms": 1000.0,
    }  # fmt: skip
    assert latency_ms([]) == {"p50_ms": 0.0, "p99_ms": 0.0, "p999_ms": 0.0, "max_ms": 0.0}
