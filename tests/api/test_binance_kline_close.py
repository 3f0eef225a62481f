"""A kline stream's closed candle goes out before the next candle, however its close and
the next candle's first trade meet, and is never sent open again, however late its last
trade is published (``api/binance/klines.py``)."""

from __future__ import annotations

import json
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.api.binance_client import call, client, limit_order
from tests.api.conftest import Server
from tests.api.test_orders import held, journal_writes_held
from trading_engine.api.binance.klines import Open
from trading_engine.api.binance.payloads import now_ms


class _Connection:
    """What ``Open`` is given: texts naming the candle and whether it is closed, and the
    closes asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []
        self.open = Open(self.render, lambda name, start: self.asked.append((name, start)))

    def render(self, name: str, candle: dict[str, Any], final: bool) -> list[str]:
        return [f"{name} {candle['start']} {candle['v']}{' closed' if final else ''}"]

    async def asked_once_due(self) -> None:
        """Run ``Open`` until it asks for a close (the candles below closed long ago)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.open.run)
            while not self.asked:
                await trio.sleep(0.001)
            nursery.cancel_scope.cancel()


async def test_a_close_asked_for_and_taken_in_turn_goes_before_the_next_candle() -> None:
    connection = _Connection()
    assert connection.open.sent("k", {"start": 1, "v": 1}, close_ms=1) == []
    await connection.asked_once_due()
    assert connection.asked == [("k", 1)]
    # The close's turn comes first: the next candle then goes out alone.
    assert connection.open.closing("k", 1) == ["k 1 1 closed"]
    assert connection.open.sent("k", {"start": 2, "v": 5}, close_ms=2) == []


async def test_a_next_candle_ahead_of_the_asked_close_closes_it_first_and_once() -> None:
    connection = _Connection()
    connection.open.sent("k", {"start": 1, "v": 1}, close_ms=1)
    await connection.asked_once_due()
    # The next candle's first trade was queued before the close: it closes the candle.
    assert connection.open.sent("k", {"start": 2, "v": 5}, close_ms=2) == ["k 1 1 closed"]
    assert connection.open.closing("k", 1) == []


async def test_a_late_update_of_a_candle_whose_close_is_asked_for_is_closed_with_it() -> None:
    connection = _Connection()
    connection.open.sent("k", {"start": 1, "v": 1}, close_ms=1)
    await connection.asked_once_due()
    connection.open.sent("k", {"start": 1, "v": 2}, close_ms=1)  # a trade stamped in time
    assert connection.open.closing("k", 1) == ["k 1 2 closed"]
    with trio.move_on_after(0.05):
        await connection.open.run()
    assert connection.asked == [("k", 1)]  # closed once


async def test_a_candle_closed_or_followed_by_a_later_one_is_final_for_late_updates() -> None:
    connection = _Connection()
    connection.open.sent("k", {"start": 1, "v": 1}, close_ms=1)
    assert not connection.open.final("k", 1)
    await connection.asked_once_due()
    connection.open.closing("k", 1)
    assert connection.open.final("k", 1)
    connection.open.sent("k", {"start": 2, "v": 5}, close_ms=2)
    assert (connection.open.final("k", 1), connection.open.final("k", 2)) == (True, False)
    # Closed by the next candle, not by its close's turn: final all the same.
    assert connection.open.sent("k", {"start": 3, "v": 7}, close_ms=3) == ["k 2 5 closed"]
    assert (connection.open.final("k", 2), connection.open.final("k", 3)) == (True, False)
    connection.open.drop("k")
    assert not connection.open.final("k", 2)


async def _kline(ws: WebSocketConnection) -> dict[str, Any]:
    k: dict[str, Any] = json.loads(await ws.get_message())["k"]
    return k


async def test_a_trade_published_after_its_candle_closed_comes_closed_again_with_it(
    server: Server, database_url: str
) -> None:
    """The close goes by the clock; a trade stamped before it is published once written.
    The journal is held so that the second trade of a second is written after the
    second ends: its candle comes closed again, with both trades, as GET klines has it,
    and never open."""
    await limit_order(server, "demo_alice", "sell", "100.5", "1")
    url = server.url.replace("http://", "ws://") + "/ws/btcait@kline_1s"
    with trio.fail_after(30):
        async with open_websocket_url(url) as ws, server.client(server.keys["demo_bob"]) as bob:
            while True:  # until both trades fall in one second (a loaded machine may miss)
                await trio.sleep((1000 - now_ms() % 1000) / 1000)  # as a second starts
                second = now_ms() // 1000
                await limit_order(server, "demo_bob", "buy", "100.5", "0.1")
                while (first := await _kline(ws))["t"] // 1000 < second:
                    pass  # the closes of an earlier try
                before = await held(bob, "demo_bob", "AIT")
                async with trio.open_nursery() as nursery, journal_writes_held(database_url):
                    nursery.start_soon(limit_order, server, "demo_bob", "buy", "100.5", "0.1")
                    while await held(bob, "demo_bob", "AIT") == before:  # taken, not written
                        await trio.sleep(0.01)
                    closed = await _kline(ws)  # the clock's close, with the first trade only
                late = await _kline(ws)
                if late["t"] == first["t"]:
                    break
            more: list[dict[str, Any]] = []
            with trio.move_on_after(0.5):
                more.append(await _kline(ws))
        rest = await call(
            client(server, None).public_get_klines, {"symbol": "BTCAIT", "interval": "1s"}
        )
    assert (first["x"], first["v"]) == (False, "0.10000000")
    assert closed == {**first, "x": True}
    assert (late["x"], late["v"], late["n"]) == (True, "0.20000000", first["n"] + 1)
    assert next(row[5] for row in rest if row[0] == late["t"]) == late["v"]
    assert more == []
