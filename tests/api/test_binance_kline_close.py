"""A kline stream's closed candle goes out once, and before the next candle, however its
close and the next candle's first trade meet (``api/binance/klines.py``)."""

from __future__ import annotations

from typing import Any

import trio

from trading_engine.api.binance.klines import Open


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
