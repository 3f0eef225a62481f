"""Closing a connection's klines as Binance closes them: the last update of a candle comes
again with ``x`` true once its interval ends.

Our ``candles.S.I`` channel sends a candle when a trade changes it, and nothing when
its interval ends. Binance's ``<symbol>@kline_<interval>`` marks the candle's last
update closed (``"x": true``), which bots wait for before they act on a candle. A
connection keeps (``Open``), for each kline stream, the newest candle it sent that
is not closed yet; it sends that candle once more with ``x`` true at the candle's
close time (``run``), or at once if a candle of a later interval comes first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from trading_engine.api.binance.payloads import now_ms

__all__ = ["Open"]

Render = Callable[[str, dict[str, Any], bool], list[str]]
"""A kline stream's name, a candle of its channel and whether it is closed, to the texts
to send."""


class Open:
    """One connection's open candles, a kline stream's each, and when each closes (ms)."""

    def __init__(self, render: Render, send: Callable[[list[str]], None]) -> None:
        self._render = render
        self._send = send
        self._open: dict[str, tuple[int, dict[str, Any]]] = {}
        self._changed = trio.Event()

    def sent(self, name: str, candle: dict[str, Any], close_ms: int) -> list[str]:
        """Note that stream ``name`` sends ``candle`` (open until ``close_ms``); answer
        what goes before it: the stream's previous candle closed, if ``candle`` is a
        later interval's."""
        before: list[str] = []
        held = self._open.get(name)
        if held is not None and held[1]["start"] > candle["start"]:
            return before  # a late trade's earlier candle: the open one stays open
        if held is not None and held[1]["start"] < candle["start"]:
            before = self._render(name, held[1], True)
        self._open[name] = (close_ms, candle)
        self._changed.set()
        return before

    def drop(self, name: str) -> None:
        self._open.pop(name, None)

    async def run(self) -> None:
        """Send each open candle closed when its interval ends, as long as the
        connection lasts."""
        while True:
            if self._open:
                due = min(close for close, _ in self._open.values())
                with trio.move_on_after(max(0, due + 1 - now_ms()) / 1000):
                    await self._changed.wait()
            else:
                await self._changed.wait()
            self._changed = trio.Event()
            now = now_ms()
            texts: list[str] = []
            for name, (close, candle) in list(self._open.items()):
                if close < now:
                    del self._open[name]
                    texts.extend(self._render(name, candle, True))
            if texts:
                self._send(texts)
