"""Closing a connection's klines as Binance closes them: the last update of a candle comes
again with ``x`` true once its interval ends.

Our ``candles.S.I`` channel sends a candle when a trade changes it, and nothing when
its interval ends. Binance's ``<symbol>@kline_<interval>`` marks the candle's last
update closed (``"x": true``), which bots wait for before they act on a candle. A
connection keeps (``Open``), for each kline stream, the newest candle it sent that
is not closed yet. At the candle's close time (``run``) it asks for the close
(``ask``: a message queued behind what the connection has still to translate), and
sends the candle once more with ``x`` true when that message's turn comes
(``closing``), unless a candle of a later interval came first, which closes it at
once (``sent``): either way the closed candle goes before the next one.

The close goes by the wall clock, and a trade is published once committed: a trade
stamped just before the interval's end can change the candle after it went closed.
Such an update (``final``) is sent closed again, with the late trade in it, never
open: a candle sent closed stays closed.
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

    def __init__(self, render: Render, ask: Callable[[str, int], None]) -> None:
        """``ask(name, start)`` queues the close of stream ``name``'s candle of ``start``."""
        self._render = render
        self._ask = ask
        self._open: dict[str, dict[str, Any]] = {}
        self._due: dict[str, int] = {}
        """The close time of each open candle whose close is not asked for yet."""
        self._closed: dict[str, int] = {}
        """The start of each stream's newest candle sent closed."""
        self._changed = trio.Event()

    def sent(self, name: str, candle: dict[str, Any], close_ms: int) -> list[str]:
        """Note that stream ``name`` sends ``candle`` open (until ``close_ms``), which is
        not ``final``; answer what goes before it: the stream's previous candle closed,
        if ``candle`` is a later interval's."""
        before: list[str] = []
        held = self._open.get(name)
        if held is not None and held["start"] < candle["start"]:
            before = self._render(name, held, True)
            self._closed[name] = held["start"]
        self._open[name] = candle
        self._due[name] = close_ms
        self._changed.set()
        return before

    def closing(self, name: str, start: int) -> list[str]:
        """The close ``run`` asked for, in its turn: the candle closed, if still open."""
        held = self._open.get(name)
        if held is None or held["start"] != start:
            return []
        del self._open[name]
        self._due.pop(name, None)  # a late update of it, sent after the ask
        self._closed[name] = start
        return self._render(name, held, True)

    def closed(self, name: str, start: int) -> None:
        """Note that stream ``name`` sent its candle of ``start`` closed (its interval had
        ended when the stream began)."""
        self._closed[name] = max(start, self._closed.get(name, start))

    def final(self, name: str, start: int) -> bool:
        """Whether an update of stream ``name``'s candle of ``start`` goes out closed: that
        candle was sent closed, or a later one is open (a late trade's update)."""
        held = self._open.get(name)
        if held is not None and start < held["start"]:
            return True
        return start <= self._closed.get(name, start - 1)

    def drop(self, name: str) -> None:
        self._open.pop(name, None)
        self._due.pop(name, None)
        self._closed.pop(name, None)

    async def run(self) -> None:
        """Ask for each open candle's close when its interval ends, as long as the
        connection lasts."""
        while True:
            if self._due:
                due = min(self._due.values())
                with trio.move_on_after(max(0, due + 1 - now_ms()) / 1000):
                    await self._changed.wait()
            else:
                await self._changed.wait()
            self._changed = trio.Event()
            now = now_ms()
            for name, close in list(self._due.items()):
                if close < now:
                    del self._due[name]
                    self._ask(name, self._open[name]["start"])
