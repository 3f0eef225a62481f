"""Klines of every Binance interval, over real HTTP and WebSocket, against candles
recomputed here from the trades themselves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

from tests.api.binance_client import call, client, limit_order
from tests.api.conftest import Server

INTERVALS = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
             "3d", "1w", "1M"]  # fmt: skip
_LENGTHS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _period(interval: str, ms: int) -> tuple[int, int]:
    """The open and close time (ms) of the period of ``interval`` holding ``ms``, by the
    calendar: weeks from Monday, months from the first, UTC."""
    day = datetime.fromtimestamp(ms // 1000, UTC)
    if interval == "1M":
        first = day.replace(day=1, hour=0, minute=0, second=0)
        after = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
        return int(first.timestamp()) * 1000, int(after.timestamp()) * 1000 - 1
    if interval == "1w":
        monday = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(day.weekday())
        return int(monday.timestamp()) * 1000, int(monday.timestamp()) * 1000 + 7 * 86_400_000 - 1
    length = int(interval[:-1]) * _LENGTHS[interval[-1]] * 1000
    start = ms - ms % length
    return start, start + length - 1


def _recomputed(interval: str, trades: list[dict[str, Any]]) -> list[list[Any]]:
    """Klines (open time, OHLC, volume, close time, count) from ``trades``, oldest first."""
    out: dict[int, list[Any]] = {}
    for trade in trades:
        start, end = _period(interval, trade["time"])
        price, quantity = Decimal(trade["price"]), Decimal(trade["qty"])
        if start not in out:
            out[start] = [start, price, price, price, price, Decimal(0), end, 0]
        row = out[start]
        row[2], row[3], row[4] = max(row[2], price), min(row[3], price), price
        row[5] += quantity
        row[7] += 1
    return [out[start] for start in sorted(out)]


def _kline(row: list[Any]) -> list[Any]:
    return [row[0], *(Decimal(v) for v in row[1:6]), row[6], row[8]]


async def test_every_interval_matches_the_candles_recomputed_from_the_trades(
    server: Server,
) -> None:
    with trio.fail_after(60):
        for number, (price, quantity) in enumerate(
            [("100", "0.5"), ("101.5", "0.2"), ("99", "0.3"), ("100.25", "0.1"), ("98", "1")]
        ):
            await limit_order(server, "demo_alice", "sell", price, quantity)
            await limit_order(server, "demo_bob", "buy", price, quantity)
            if number == 2:
                await trio.sleep(1.1)  # trades in two seconds at least
        async with httpx.AsyncClient(base_url=server.url + "/api/v3", timeout=10) as http:
            trades = (await http.get("/trades?symbol=BTCAIT")).json()
            answers = {
                interval: (await http.get(f"/klines?symbol=BTCAIT&interval={interval}")).json()
                for interval in INTERVALS
            }
            ui = (await http.get("/uiKlines?symbol=BTCAIT&interval=1w")).json()
            bad = await http.get("/klines?symbol=BTCAIT&interval=2d")
            newest = (await http.get("/klines?symbol=BTCAIT&interval=1s&limit=1")).json()
            seconds = answers["1s"]
            since = f"/klines?symbol=BTCAIT&interval=1s&startTime={seconds[1][0]}"
            from_second = (await http.get(since)).json()
            first_only = (await http.get(f"{since}&limit=1")).json()
            until = f"/klines?symbol=BTCAIT&interval=1s&endTime={seconds[0][0]}"
            up_to_first = (await http.get(until)).json()
        ohlcv = await call(client(server, None).fetch_ohlcv, "BTC/AIT", "1M")
    assert len(trades) == 5
    for interval in INTERVALS:
        assert [_kline(k) for k in answers[interval]] == _recomputed(interval, trades), interval
    assert len(answers["1s"]) >= 2
    assert ui == answers["1w"]
    assert (bad.status_code, bad.json()["code"]) == (400, -1120)
    assert newest == answers["1s"][-1:]
    assert from_second == answers["1s"][1:]
    assert first_only == answers["1s"][1:2]
    assert up_to_first == answers["1s"][:1]
    month = _recomputed("1M", trades)[0]
    assert ohlcv == [[month[0], 100.0, 101.5, 98.0, 98.0, 2.1]]


async def test_a_kline_stream_of_a_wider_interval_carries_its_period(server: Server) -> None:
    url = server.url.replace("http://", "ws://") + "/stream?streams=btcait@kline_1M/btcait@kline_1s"
    with trio.fail_after(30):
        async with open_websocket_url(url) as ws:
            await limit_order(server, "demo_alice", "sell", "100", "0.5")
            await limit_order(server, "demo_bob", "buy", "100", "0.5")
            seen: dict[str, Any] = {}
            while len(seen) < 2:
                message = json.loads(await ws.get_message())
                seen[message["stream"]] = message["data"]["k"]
        async with httpx.AsyncClient(base_url=server.url + "/api/v3", timeout=10) as http:
            trades = (await http.get("/trades?symbol=BTCAIT")).json()
    month, second = seen["btcait@kline_1M"], seen["btcait@kline_1s"]
    assert (month["t"], month["T"]) == _period("1M", trades[0]["time"])
    assert (second["t"], second["T"]) == _period("1s", trades[0]["time"])
    assert (month["i"], month["o"], month["v"], month["n"]) == ("1M", "100.00000000",
                                                                "0.50000000", 1)  # fmt: skip
