"""The WebSocket load generator's accounting of what the server never answered."""

from __future__ import annotations

from typing import cast

import trio
from trio_websocket import WebSocketConnection

from trading_engine.benchmarks.orderflow import Market, OrderFlow, Resting
from trading_engine.benchmarks.ws_orders import _Connection, _Tally


async def test_requests_never_answered_count_with_the_time_they_waited() -> None:
    tally = _Tally()
    flow = OrderFlow.seeded([Market("BTC_AIT", 30_000, "0.001")], 1)
    conn = _Connection(cast(WebSocketConnection, None), flow, Resting(10), tally, None)
    now = trio.current_time()
    conn.pending = {1: ("order.place", now - 2.0), 2: ("order.cancel", now - 1.0)}
    conn.give_up()
    assert tally.unanswered == 2
    assert conn.pending == {}
    assert tally.places[0] >= 2.0
    assert 1.0 <= tally.cancels[0] < 2.0
