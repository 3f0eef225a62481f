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
- ``ticker.SYMBOL``: a ``snapshot`` of the latest ticker pricing sent (prices
  null before the first trade or quote), then each changed ``ticker``; each
  carries the ``seq`` it was computed at, which its prices and quantities describe.
- ``candles.SYMBOL.INTERVAL`` (Binance's intervals, ``1s`` to ``1M``: see
  ``core.candles``): a ``snapshot``,
  then each updated ``candle``.
- ``orders`` (the subscriber's user): ``order`` updates for each event of its orders,
  each with its symbol's ``seq``, and ``algo`` updates for each event of its
  algorithms (started, a slice done, a new status), each with the ``$algos``
  stream's ``seq``. Its snapshot, the user's open orders and lists and running
  algorithms, is the risk actor's and the algorithm supervisor's to give
  (``api/ws.py`` asks for it once subscribed: ``Engine.orders_snapshot``).
- ``balances`` (the subscriber's user): a ``balance`` message for each deposit
  and withdrawal (``event``, ``asset``, the signed ``change`` in the asset's
  minor units, the accounts stream's ``seq``); no snapshot. The Binance
  dialect's user data stream reads it (``balanceUpdate``).

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

from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, assert_never

import attrs
import msgspec
import trio

from trading_engine import wire
from trading_engine.actors.answers import Ticker
from trading_engine.actors.mailbox import Reply, receive_batch
from trading_engine.actors.messages import (
    CommittedBatch,
    Query,
    Refused,
    SymbolStatus,
    TickerUpdate,
)
from trading_engine.core.account_events import ACCOUNTS_STREAM, Deposited, Withdrawn
from trading_engine.core.algos import ALGOS_STREAM, AlgoEvent
from trading_engine.core.candles import INTERVALS, Candle, CandleBook
from trading_engine.core.enums import Side
from trading_engine.core.events import (
    BookLevel,
    Journaled,
    OrderAccepted,
    OrderDeferred,
    OrderRejected,
    Trade,
)
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.l2 import L2Book
from trading_engine.core.numbers import format_seconds

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
                    if commit.stream == ACCOUNTS_STREAM:
                        self._balance_changes(commit.events)
                        continue
                    if commit.stream == ALGOS_STREAM:
                        self._algo_updates(commit.events)  # type: ignore[arg-type]
                        continue
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
                    level = wire.level(instrument, event.price, event.quantity)
                    (bids if event.side is Side.BUY else asks).append(level)
            elif isinstance(event, Trade):
                state.tape.append(event)
                if everything or trades_channel in self.subscribers:
                    self._publish(trades_channel, _dump(self._trade_message(state, event)))
                for interval in state.candles.on_trade(event.price, event.quantity, event.ts):
                    channel = f"candles.{symbol}.{interval}"
                    if everything or channel in self.subscribers:
                        candle = state.candles.changed(interval)
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
        if isinstance(event, wire.LIST_EVENTS):
            user = event.spec.user_id if isinstance(event, OrderDeferred) else event.user_id
            message = {"channel": "orders", "type": "list", "event": type(event).__name__,
                       "symbol": event.symbol, "seq": event.seq, "ts": format_seconds(event.ts),
                       **wire.list_event(event)}  # fmt: skip
            self._to_orders(user, _dump(message))
            return
        if not isinstance(event, wire.ORDER_EVENTS):
            return
        body = wire.order_event(state.instrument, event)
        kind = type(event).__name__
        if isinstance(event, OrderAccepted | OrderRejected):
            user_id = event.spec.user_id
        else:
            user_id = event.user_id
        message = {"channel": "orders", "type": "order", "event": kind, "symbol": event.symbol,
                   "seq": event.seq, "ts": format_seconds(event.ts), **body}  # fmt: skip
        self._to_orders(user_id, _dump(message))

    def _algo_updates(self, events: Sequence[AlgoEvent]) -> None:
        """Algorithms' events, to their owners' ``orders`` channel (``type`` ``algo``)."""
        if self._redis is None and not self.subscribers.get("orders"):
            return
        for event in events:
            state = self.symbols.get(event.symbol)
            if state is None:
                continue
            message = {"channel": "orders", "type": "algo", "event": type(event).__name__,
                       "seq": event.seq, "ts": format_seconds(event.ts),
                       **wire.algo_event(state.instrument, event)}  # fmt: skip
            self._to_orders(event.user_id, _dump(message))

    def _to_orders(self, user_id: UserId, text: str) -> None:
        """``text`` to ``user_id``'s subscribers of ``orders``, and to Redis."""
        self._offer_redis(f"orders.{user_id}", text)
        self._to_user("orders", user_id, text)

    def _to_user(self, channel: str, user_id: UserId, text: str) -> None:
        """Send ``text`` to the subscribers of the per-user ``channel`` who are ``user_id``."""
        for key, outbox in list(self.subscribers.get(channel, {}).items()):
            if self._users.get(key) == user_id:
                self._send(channel, key, outbox, text)

    def _balance_changes(self, events: Sequence[Journaled]) -> None:
        """Deposits and withdrawals, to their user's ``balances`` subscribers."""
        if self._redis is None and not self.subscribers.get("balances"):
            return
        for event in events:
            if not isinstance(event, Deposited | Withdrawn):
                continue
            change = event.amount if isinstance(event, Deposited) else -event.amount
            message = {"channel": "balances", "type": "balance", "event": type(event).__name__,
                       "asset": event.asset, "change": change, "seq": event.seq,
                       "ts": format_seconds(event.ts)}  # fmt: skip
            text = _dump(message)
            self._offer_redis(f"balances.{event.user_id}", text)
            self._to_user("balances", event.user_id, text)

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
        if channel in ("orders", "balances"):
            if user_id is None:
                return Refused("unauthenticated", f"authenticate before subscribing to {channel}")
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
            bid_levels, ask_levels = (
                wire.levels(state.instrument, bids),
                wire.levels(state.instrument, asks),
            )
            return _dump({"channel": channel, "type": "snapshot", "seq": state.seq,
                          "bids": bid_levels, "asks": ask_levels})  # fmt: skip
        if kind == "trades":
            recent = list(state.tape)[-_SNAPSHOT_TRADES:]
            return _dump({"channel": channel, "type": "snapshot", "seq": state.seq,
                          "trades": [self._trade_body(state, t) for t in recent]})  # fmt: skip
        if kind == "ticker":
            # The ticker's own seq: pricing sends tickers at most every ticker_interval,
            # so the one held may be older than the book and tape here.
            seq = state.seq if state.ticker is None else state.ticker["seq"]
            return self._ticker_message(state, seq, "snapshot")
        candles = [wire.candle(state.instrument, c)
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

    def _trade_body(self, state: _Symbol, trade: Trade) -> dict[str, Any]:
        """The public trade as ``GET /trades`` shows it, with the symbol's seq."""
        return {**wire.public_trade(state.instrument, trade), "seq": trade.seq}

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
            **wire.candle(state.instrument, candle),
        }

    def _ticker_message(self, state: _Symbol, seq: int, kind: str = "ticker") -> str:
        return _dump(
            {"channel": f"ticker.{state.instrument.symbol}", "type": kind, "seq": seq,
             **wire.ticker(state.instrument, state.ticker)}
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

    def query_snapshot(self, channel: str) -> str | Refused | None:
        """The snapshot a new subscriber of the public ``channel`` gets (JSON text), or
        ``Refused`` for an unknown channel."""
        return self._snapshot(channel, None)

    def query_subscribers(self) -> int:
        return len(self._of_outbox)


_ENCODER = msgspec.json.Encoder()


def _dump(message: dict[str, Any]) -> str:
    # msgspec writes the same compact JSON as json.dumps(separators=(",", ":")) for these
    # messages (ASCII ids and decimal strings) in a tenth of the time; with REDIS_URL every
    # message is rendered, and json.dumps was the larger part of what Redis cost an order.
    return _ENCODER.encode(message).decode()
