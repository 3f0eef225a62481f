"""The market-data actor: L2 books, trade tapes, candles and tickers, fanned out to subscribers.

It builds everything from durable events only. A subscriber registers an
outbox (``Outbox``: a bounded ``trio`` channel of JSON text will do) for channels:

- ``book.SYMBOL``: a ``snapshot`` (``seq``, ``bids``, ``asks``), then ``delta``s
  with the changed levels (quantity ``"0"`` removes a level). Every book
  message carries the symbol's ``seq``; a delta also carries ``prev_seq``, the
  ``seq`` of the previous book message of that symbol, so a client that sees
  ``prev_seq`` differ from the last ``seq`` it holds knows it missed one and
  resubscribes.
- ``trades.SYMBOL``: a ``snapshot`` of recent trades, then each ``trade``.
- ``ticker.SYMBOL``: a ``snapshot`` of the current ticker (prices null before
  the first trade or quote), then each changed ``ticker``.
- ``candles.SYMBOL.INTERVAL`` (``1m``, ``5m``, ``1h``, ``1d``): a ``snapshot``,
  then each updated ``candle``.
- ``orders`` (the subscriber's user): ``order`` updates for each event of its orders,
  each with its symbol's ``seq``. Its snapshot, the user's open orders, is the
  risk actor's to give (``api/ws.py`` asks for it once subscribed).

Fields look as the REST API shows them, so that one parser reads both: ids
(``order_id``, ``trade_id``) are strings, times (``ts``) are seconds since the
epoch as decimal strings, a candle's ``start`` is whole seconds; ``seq`` and
``prev_seq`` are integers.

Each message is encoded once and the same text goes to every subscriber. A
subscriber whose outbox is full is dropped at once: its outbox is closed,
which tells its connection to close with ``slow_consumer``. The engine never
waits on a subscriber.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, assert_never

import attrs
import trio

from trading_engine.actors.answers import Ticker
from trading_engine.actors.mailbox import Reply, receive_batch
from trading_engine.actors.messages import (
    CommittedBatch,
    Query,
    Refused,
    SymbolStatus,
    TickerUpdate,
)
from trading_engine.core.candles import INTERVALS, Candle, CandleBook
from trading_engine.core.enums import Side
from trading_engine.core.events import (
    BookLevel,
    Journaled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.l2 import L2Book
from trading_engine.core.numbers import format_seconds, format_units

__all__ = ["MarketDataActor", "MarketDataMessage", "Outbox", "Subscribe", "Unsubscribe"]

_TAPE = 1000
_SNAPSHOT_TRADES = 50
_SNAPSHOT_CANDLES = 100


class Outbox(Protocol):
    """Where the actor puts a subscriber's messages (JSON text), never waiting.

    ``send_nowait`` raises ``trio.WouldBlock`` when the subscriber is too far
    behind, and ``trio.ClosedResourceError`` or ``trio.BrokenResourceError``
    once it is gone; the actor then drops it and calls ``close``.
    """

    def send_nowait(self, value: str, /) -> None: ...

    def close(self) -> None: ...


@attrs.frozen
class Subscribe:
    """Add ``outbox`` to ``channel``; answered with None, or ``Refused`` for an unknown channel."""

    channel: str
    outbox: Outbox
    user_id: UserId | None
    reply: Reply[Refused | None]


@attrs.frozen
class Unsubscribe:
    channel: str
    outbox: Outbox
    reply: Reply[None] | None = None


MarketDataMessage = (
    CommittedBatch | TickerUpdate | Subscribe | Unsubscribe | SymbolStatus | Query[Any]
)
"""What the market-data actor's inbox carries (the other actors' are in ``messages.py``)."""


class _Symbol:
    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.book = L2Book()
        self.tape: deque[Trade] = deque(maxlen=_TAPE)
        self.candles = CandleBook()
        self.ticker: Ticker | None = None
        self.seq = 0


class MarketDataActor:
    NOT_IN_SNAPSHOT = frozenset(
        {
            "_inbox",
            "_redis",
            "subscribers",
            "_users",
            "_of_outbox",
            "dropped",
            "sent",
            "redis_dropped",
        }
    )
    """Channels, subscribers and counters of this process; the books, tapes, candles
    and tickers are in engine snapshots."""

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[MarketDataMessage],
        redis: trio.MemorySendChannel[tuple[str, str]] | None = None,
    ) -> None:
        self._inbox = inbox
        self._redis = redis
        """With Redis, every message is rendered and offered to the fan-out actor too."""
        self.redis_dropped = 0
        self.symbols: dict[Symbol, _Symbol] = {}
        self.subscribers: dict[str, dict[int, Outbox]] = {}
        self._users: dict[int, UserId] = {}
        self._of_outbox: dict[int, set[str]] = {}
        self.dropped = 0
        self.sent = 0

    async def run(self) -> None:
        while (batch := await receive_batch(self._inbox)) is not None:
            for message in batch:
                self.handle(message)

    def handle(self, message: MarketDataMessage) -> None:
        match message:
            case CommittedBatch(commits=commits):
                for commit in commits:
                    state = self.symbols.get(Symbol(commit.stream))
                    if state is not None:
                        self._apply(state, commit.events)
            case TickerUpdate(symbol=symbol, seq=seq, ticker=ticker):
                state = self.symbols.get(symbol)
                if state is not None and ticker is not None:
                    state.ticker = ticker
                    self._publish(f"ticker.{symbol}", self._ticker_message(state, seq))
            case Subscribe():
                message.reply.send(self._subscribe(message))
            case Unsubscribe(channel=channel, outbox=outbox, reply=reply):
                self._remove(channel, outbox)
                if reply is not None:
                    reply.send(None)
            case SymbolStatus(instrument=instrument):
                if instrument.symbol not in self.symbols:
                    self.symbols[instrument.symbol] = _Symbol(instrument)
            case Query(read=read, reply=reply):
                reply.send(read(self))
            case _:
                assert_never(message)

    # ------------------------------------------------------------ events

    def _apply(self, state: _Symbol, events: Sequence[Journaled]) -> None:
        symbol = state.instrument.symbol
        book_channel = f"book.{symbol}"
        trades_channel = f"trades.{symbol}"
        everything = self._redis is not None
        render = everything or book_channel in self.subscribers
        bids: list[list[str]] = []
        asks: list[list[str]] = []
        last_level = 0
        last_ts = 0
        instrument = state.instrument
        for event in events:
            if isinstance(event, BookLevel):
                state.book.set(event.side, event.price, event.quantity, event.seq)
                last_level = event.seq
                last_ts = event.ts
                if render:
                    price = instrument.price_str(event.price)
                    level = [price, instrument.quantity_str(event.quantity)]
                    (bids if event.side is Side.BUY else asks).append(level)
            elif isinstance(event, Trade):
                state.tape.append(event)
                if everything or trades_channel in self.subscribers:
                    self._publish(trades_channel, _dump(self._trade_message(state, event)))
                for candle in state.candles.on_trade(event.price, event.quantity, event.ts):
                    channel = f"candles.{symbol}.{candle.interval}"
                    if everything or channel in self.subscribers:
                        self._publish(
                            channel, _dump(self._candle_message(state, candle, event.seq))
                        )
        if everything or self.subscribers.get("orders"):
            for event in events:
                self._order_update(state, event)
        if last_level:
            prev = state.seq
            state.seq = last_level
            if render:
                message = {"channel": book_channel, "type": "delta", "seq": last_level,
                           "prev_seq": prev, "ts": format_seconds(last_ts),
                           "bids": bids, "asks": asks}  # fmt: skip
                self._publish(book_channel, _dump(message))

    def _order_update(self, state: _Symbol, event: Journaled) -> None:
        kind = type(event).__name__
        if isinstance(event, OrderAccepted | OrderRejected):
            user_id = event.spec.user_id
            body: dict[str, Any] = {"order_id": str(event.spec.order_id),
                                    "client_order_id": event.spec.client_order_id}  # fmt: skip
            if isinstance(event, OrderRejected):
                body["reason"] = str(event.reason)
        elif isinstance(
            event, OrderFilled | OrderCancelled | OrderExpired | OrderAmended | StopTriggered
        ):
            user_id = event.user_id
            body = {"order_id": str(event.order_id)}
            if isinstance(event, OrderFilled):
                body.update(
                    trade_id=f"{event.symbol}:{event.trade_id}",
                    price=state.instrument.price_str(event.price),
                    quantity=state.instrument.quantity_str(event.quantity),
                    filled_quantity=state.instrument.quantity_str(event.filled),
                    remaining_quantity=state.instrument.quantity_str(event.remaining),
                    liquidity=str(event.liquidity),
                    status=str(event.status),
                )
            elif isinstance(event, OrderCancelled):
                body.update(reason=str(event.reason), status="cancelled")
            elif isinstance(event, OrderExpired):
                body.update(status="expired")
        else:
            return
        message = {"channel": "orders", "type": "order", "event": kind, "symbol": event.symbol,
                   "seq": event.seq, "ts": format_seconds(event.ts), **body}  # fmt: skip
        text = _dump(message)
        self._offer_redis(f"orders.{user_id}", text)
        for key, outbox in list(self.subscribers.get("orders", {}).items()):
            if self._users.get(key) == user_id:
                self._send("orders", key, outbox, text)

    # ------------------------------------------------------------ subscribers

    def _subscribe(self, message: Subscribe) -> Refused | None:
        channel = message.channel
        snapshot = self._snapshot(channel, message.user_id)
        if isinstance(snapshot, Refused):
            return snapshot
        key = id(message.outbox)
        self.subscribers.setdefault(channel, {})[key] = message.outbox
        self._of_outbox.setdefault(key, set()).add(channel)
        if message.user_id is not None:
            self._users[key] = message.user_id
        if snapshot is not None:
            self._send(channel, key, message.outbox, snapshot)
        return None

    def _snapshot(self, channel: str, user_id: UserId | None) -> str | Refused | None:
        if channel == "orders":
            if user_id is None:
                return Refused("unauthenticated", "authenticate before subscribing to orders")
            return None
        kind, _, rest = channel.partition(".")
        symbol, _, interval = rest.partition(".")
        state = self.symbols.get(Symbol(symbol))
        if state is None or kind not in ("book", "trades", "ticker", "candles"):
            return Refused("unknown_channel", f"no channel {channel!r}")
        if (kind == "candles") != bool(interval) or (interval and interval not in INTERVALS):
            return Refused("unknown_channel", f"no channel {channel!r}")
        if kind == "book":
            bids, asks = state.book.depth()
            bid_levels, ask_levels = self._levels(state, bids), self._levels(state, asks)
            return _dump({"channel": channel, "type": "snapshot", "seq": state.seq,
                          "bids": bid_levels, "asks": ask_levels})  # fmt: skip
        if kind == "trades":
            recent = list(state.tape)[-_SNAPSHOT_TRADES:]
            return _dump({"channel": channel, "type": "snapshot", "seq": state.seq,
                          "trades": [self._trade_body(state, t) for t in recent]})  # fmt: skip
        if kind == "ticker":
            return self._ticker_message(state, state.seq, "snapshot")
        candles = [render_candle(state.instrument, c)
                   for c in state.candles.candles(interval, _SNAPSHOT_CANDLES)]  # fmt: skip
        return _dump({"channel": channel, "type": "snapshot", "seq": state.seq,
                      "candles": candles})  # fmt: skip

    def _offer_redis(self, channel: str, text: str) -> None:
        if self._redis is not None:
            try:
                self._redis.send_nowait((channel, text))
            except trio.WouldBlock:
                self.redis_dropped += 1

    def _publish(self, channel: str, text: str) -> None:
        self._offer_redis(channel, text)
        subscribers = self.subscribers.get(channel)
        if not subscribers:
            return
        for key, outbox in list(subscribers.items()):
            self._send(channel, key, outbox, text)

    def _send(self, channel: str, key: int, outbox: Outbox, text: str) -> None:
        try:
            outbox.send_nowait(text)
            self.sent += 1
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._drop(key, outbox)

    def _drop(self, key: int, outbox: Outbox) -> None:
        """A subscriber that can't keep up (or went away) loses every subscription at once."""
        self.dropped += 1
        for channel in self._of_outbox.pop(key, set()):
            self.subscribers.get(channel, {}).pop(key, None)
        self._users.pop(key, None)
        outbox.close()

    def _remove(self, channel: str, outbox: Outbox) -> None:
        key = id(outbox)
        self.subscribers.get(channel, {}).pop(key, None)
        channels = self._of_outbox.get(key)
        if channels is not None:
            channels.discard(channel)
            if not channels:
                del self._of_outbox[key]
                self._users.pop(key, None)

    # ------------------------------------------------------------ rendering

    def _levels(self, state: _Symbol, levels: list[tuple[int, int]]) -> list[list[str]]:
        instrument = state.instrument
        return [[instrument.price_str(p), instrument.quantity_str(q)] for p, q in levels]

    def _trade_body(self, state: _Symbol, trade: Trade) -> dict[str, Any]:
        instrument = state.instrument
        # The public trade as GET /trades shows it (api/schemas.py, render_public_trade),
        # with the symbol's seq.
        return {
            "trade_id": f"{trade.symbol}:{trade.trade_id}",
            "symbol": trade.symbol,
            "price": instrument.price_str(trade.price),
            "quantity": instrument.quantity_str(trade.quantity),
            "side": str(trade.aggressor),
            "time": format_seconds(trade.ts),
            "seq": trade.seq,
        }

    def _trade_message(self, state: _Symbol, trade: Trade) -> dict[str, Any]:
        return {
            "channel": f"trades.{trade.symbol}",
            "type": "trade",
            **self._trade_body(state, trade),
        }

    def _candle_message(self, state: _Symbol, candle: Candle, seq: int) -> dict[str, Any]:
        channel = f"candles.{state.instrument.symbol}.{candle.interval}"
        return {
            "channel": channel,
            "type": "candle",
            "seq": seq,
            **render_candle(state.instrument, candle),
        }

    def _ticker_message(self, state: _Symbol, seq: int, kind: str = "ticker") -> str:
        return _dump(
            {"channel": f"ticker.{state.instrument.symbol}", "type": kind, "seq": seq,
             **render_ticker(state.instrument, state.ticker)}
        )  # fmt: skip

    # ------------------------------------------------------------ queries

    def query_book(
        self, symbol: Symbol, depth: int | None
    ) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]] | None:
        state = self.symbols.get(symbol)
        if state is None:
            return None
        bids, asks = state.book.depth(depth)
        return state.seq, bids, asks

    def query_trades(self, symbol: Symbol, limit: int) -> list[Trade] | None:
        state = self.symbols.get(symbol)
        if state is None:
            return None
        return list(reversed(state.tape))[:limit]

    def query_candles(self, symbol: Symbol, interval: str, limit: int) -> list[Candle] | None:
        state = self.symbols.get(symbol)
        if state is None:
            return None
        return state.candles.candles(interval, limit)

    def query_subscribers(self) -> int:
        return len(self._of_outbox)


def render_candle(instrument: Instrument, candle: Candle) -> dict[str, Any]:
    """A candle as the feed and ``GET /candles`` show it: ``start`` in whole seconds."""
    return {
        "start": candle.start // 1_000_000_000,
        "open": instrument.price_str(candle.open),
        "high": instrument.price_str(candle.high),
        "low": instrument.price_str(candle.low),
        "close": instrument.price_str(candle.close),
        "volume": instrument.quantity_str(candle.volume),
        "trades": candle.trades,
    }


def render_ticker(instrument: Instrument, ticker: Ticker | None) -> dict[str, Any]:
    """A ticker with prices and quantities as decimal strings (None stays None; no ticker
    yet shows every price as None)."""

    def price(value: int | None) -> str | None:
        return instrument.price_str(value) if value else None

    def change(value: int | None) -> str | None:
        if value is None:
            return None
        return ("-" if value < 0 else "") + instrument.price_str(abs(value)) if value else "0"

    if ticker is None:
        volume = quote_volume = trades = 0
        prices: list[int | None] = [None] * 11
        moved = None
    else:
        volume, quote_volume = ticker["volume_24h"], ticker["quote_volume_24h"]
        trades = ticker["trades_24h"]
        prices = [ticker["last"], ticker["best_bid"], ticker["best_ask"], ticker["mid"],
                  ticker["micro_price"], ticker["ewma"], ticker["vwap"], ticker["mark"],
                  ticker["open_24h"], ticker["high_24h"], ticker["low_24h"]]  # fmt: skip
        moved = ticker["change_24h"]
    names = ("last", "best_bid", "best_ask", "mid", "micro_price", "ewma", "vwap", "mark",
             "open_24h", "high_24h", "low_24h")  # fmt: skip
    out: dict[str, Any] = {"symbol": instrument.symbol}
    out.update({name: price(value) for name, value in zip(names, prices, strict=True)})
    out["change_24h"] = change(moved)
    out["volume_24h"] = instrument.quantity_str(volume)
    out["quote_volume_24h"] = format_units(
        quote_volume * instrument.quote_per_tick_lot, instrument.quote_decimals
    )
    out["trades_24h"] = trades
    return out


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
