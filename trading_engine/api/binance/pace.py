"""Book streams paced as Binance paces them: what one interval brought, sent at its end.

``<symbol>@depth`` and the partial books ``@depth5/10/20`` go out every 1000 ms,
their ``@100ms`` forms every 100 ms, at the boundaries of the server's clock
(multiples of the interval). Between two, a connection holds (``Held``):

- for a diff stream, the book deltas merged (``Diff``): each level's last
  quantity, ``U`` of the first delta and ``u`` of the last, so consecutive
  diffs still chain (``U`` = previous ``u`` + 1) and Binance's book-sync recipe
  works unchanged; an interval with no delta sends nothing;
- for a partial book, only that the book changed: at the boundary it sends the
  top levels of the connection's mirror as they are then.

Everything else (trades, tickers, klines, ``bookTicker``) goes out as it comes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

__all__ = ["TICK_SECONDS", "Diff", "Held"]

TICK_SECONDS = 0.1
"""The finest pace (``@100ms``); the 1000 ms one is every tenth tick."""
TICKS_A_SECOND = 10


class Diff:
    """Book deltas of one symbol merged over an interval, as one delta of our own shape
    (``prev_seq``, ``seq``, ``bids``, ``asks``), which ``payloads.depth_update`` reads."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.prev_seq: int = message["prev_seq"]
        self.seq: int = message["seq"]
        self.ts: str | None = message.get("ts")
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.add(message)

    def add(self, message: dict[str, Any]) -> None:
        """The next delta (its ``prev_seq`` is this one's ``seq``)."""
        self.seq = message["seq"]
        self.ts = message.get("ts", self.ts)
        for side, levels in (("bids", self.bids), ("asks", self.asks)):
            for price, quantity in message[side]:
                levels[price] = quantity  # the last quantity of a price is the level's

    def message(self) -> dict[str, Any]:
        merged: dict[str, Any] = {
            "type": "delta",
            "prev_seq": self.prev_seq,
            "seq": self.seq,
            "bids": [[p, q] for p, q in self.bids.items()],
            "asks": [[p, q] for p, q in self.asks.items()],
        }
        if self.ts is not None:
            merged["ts"] = self.ts
        return merged


class Held:
    """One connection's paced streams and what each holds until its boundary.

    ``flush(name, diff)`` turns a held stream into the texts to send (``diff`` is
    None for a partial book); ``send`` queues them on the connection.
    """

    def __init__(
        self,
        flush: Callable[[str, Diff | None], list[str]],
        send: Callable[[list[str]], None],
    ) -> None:
        self._flush = flush
        self._send = send
        self._held: dict[str, tuple[int, Diff | None]] = {}
        self._waiting = trio.Event()

    def hold(self, name: str, pace_ms: int, message: dict[str, Any]) -> None:
        """Hold what ``message`` brings to stream ``name`` (a diff stream's delta, or any
        book message for a partial book, whose mirror it already changed)."""
        held = self._held.get(name)
        if message.get("type") == "delta" and name.endswith(("@depth", "@depth@100ms")):
            if held is None or held[1] is None:
                self._held[name] = (pace_ms, Diff(message))
            else:
                held[1].add(message)
        elif not name.endswith(("@depth", "@depth@100ms")):
            self._held[name] = (pace_ms, None)
        self._waiting.set()

    def drop(self, name: str) -> None:
        self._held.pop(name, None)

    async def run(self) -> None:
        """Send what is held at each boundary, for as long as the connection lasts."""
        while True:
            await self._waiting.wait()
            now = trio.current_time()
            tick = int(now / TICK_SECONDS) + 1
            await trio.sleep_until(tick * TICK_SECONDS)
            texts: list[str] = []
            second = tick % TICKS_A_SECOND == 0
            for name, (pace_ms, diff) in list(self._held.items()):
                if pace_ms <= TICK_SECONDS * 1000 or second:
                    del self._held[name]
                    texts.extend(self._flush(name, diff))
            if not self._held:
                self._waiting = trio.Event()
            if texts:
                self._send(texts)
