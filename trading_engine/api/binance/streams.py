"""Binance's market streams: ``/ws/<stream>``, ``/stream?streams=a/b/c`` and live
``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` / ``SET_PROPERTY`` /
``GET_PROPERTY`` frames with an ``id``.

Stream names, symbols in lower case as Binance's (``btcait`` for ``BTC_AIT``):
``<symbol>@depth`` and ``<symbol>@depth@100ms`` (diffs), ``<symbol>@depth5``,
``@depth10``, ``@depth20`` (each optionally ``@100ms``; partial books),
``<symbol>@trade``, ``<symbol>@aggTrade``, ``<symbol>@kline_<interval>`` (Binance's
intervals, 1s to 1M), ``<symbol>@ticker``, ``<symbol>@miniTicker``,
``<symbol>@bookTicker``, ``!ticker@arr`` and ``!miniTicker@arr`` (every listed
symbol, those listed later too).

Each stream follows one or more of our channels through the engine's
market-data subscriptions (``Engine.subscribe``), as the feed at
``/api/v1/trading/ws`` does: a channel is subscribed once per connection,
however many streams read it, and what it publishes (after commit) is
translated by ``payloads``. Diff and partial depths are paced as Binance's,
every 1000 ms or, with ``@100ms``, 100 ms (``pace``); the other streams send
updates as they are committed, and a kline stream sends its candle's last update
again, closed (``"x": true``), when the candle's interval ends (``klines``). A raw
connection (``/ws``) sends payloads as they are; a combined one wraps each as
``{"stream": name, "data": payload}``.

A path that names no stream (``/ws/0``, as ccxt.pro connects) opens a
connection that waits for ``SUBSCRIBE``; one that looks like a listen key is
the user data stream (``user_stream``). A bad frame is answered
``{"error": {"code": N, "msg": ...}, "id": ...}`` with Binance's codes (2 a bad
request, 3 bad JSON) and the connection stays open.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs
import trio
from quart import Blueprint, Response, current_app, websocket

from trading_engine.actors.facade import Engine
from trading_engine.actors.messages import Refused
from trading_engine.api.binance import payloads
from trading_engine.api.binance.connection import (
    TOO_MANY,
    Inbox,
    Link,
    dump,
    refusal,
    refuse,
    refuse_upgrade,
)
from trading_engine.api.binance.klines import Open
from trading_engine.api.binance.pace import Diff, Held
from trading_engine.api.binance.symbols import joined
from trading_engine.api.binance.user_stream import api_connection, listen_key_connection
from trading_engine.api.context import ctx
from trading_engine.api.ws_guard import guarded
from trading_engine.api.ws_limits import MessageLimits
from trading_engine.core.book_mirror import BookMirror, Level
from trading_engine.core.candles import INTERVALS
from trading_engine.core.ids import Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.storage.limits import Limiter

__all__ = ["LISTING_CHECK_SECONDS", "MAX_STREAMS", "Stream", "blueprint", "parse_stream"]

MAX_STREAMS = 1024
"""Streams one connection may hold, as Binance's limit."""
LISTING_CHECK_SECONDS = 1.0
"""How often a connection with an all-market stream looks for symbols listed since."""
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
_MAX_ID = (1 << 63) - 1
_KLINE_CLOSE = "kline_close"
"""The ``type`` of the message a connection queues itself to close a kline (``klines``)."""
_LISTEN_KEY = re.compile(r"[A-Za-z0-9_-]{32,128}")
"""What a listen key looks like (``listen_keys`` makes 60 such characters), as against
a stream name or the placeholder ccxt.pro connects with (``/ws/0``)."""

blueprint = Blueprint("binance_streams", __name__)


class _Translated:
    """What was parsed and translated lately, shared by every connection of this process.

    The market-data actor sends the same text to every subscriber, so a
    message followed by many connections is parsed once, and translated once
    per stream that reads it, not once per connection. The parsed messages
    are only read. Past ``SIZE`` entries both are emptied and fill again.
    """

    SIZE = 10_000

    def __init__(self) -> None:
        self._parsed: dict[str, dict[str, Any]] = {}
        self.outputs: dict[tuple[str, str, bool], list[str]] = {}

    def parsed(self, text: str) -> dict[str, Any]:
        message = self._parsed.get(text)
        if message is None:
            if len(self._parsed) >= self.SIZE:
                self._parsed.clear()
            message = self._parsed[text] = json.loads(text)
        return message

    def keep(self, key: tuple[str, str, bool], texts: list[str]) -> list[str]:
        if len(self.outputs) >= self.SIZE:
            self.outputs.clear()
        self.outputs[key] = texts
        return texts


_TRANSLATED = _Translated()


@attrs.frozen
class Stream:
    """One Binance stream: its name, what it sends, and the channels it reads."""

    name: str
    kind: str
    """``depth``, ``partial``, ``trade``, ``aggTrade``, ``kline``, ``ticker``,
    ``miniTicker``, ``bookTicker``, ``!ticker`` or ``!miniTicker``."""
    channels: tuple[str, ...]
    symbols: tuple[Symbol, ...]
    levels: int = 0
    interval: str = ""
    pace: int = 0
    """Milliseconds between two messages (``pace.Held``); 0 for each as it comes."""


def parse_stream(name: str, instruments: Mapping[Symbol, Instrument]) -> Stream | None:
    """The stream ``name`` names, or None if it names none of a listed symbol."""
    if name in ("!ticker@arr", "!miniTicker@arr"):
        listed = tuple(instruments)
        kind = name.partition("@")[0]
        return Stream(name, kind, tuple(f"ticker.{s}" for s in listed), listed)
    lower, _, rest = name.partition("@")
    symbol = next((s for s in instruments if joined(s).lower() == lower), None)
    if symbol is None:
        return None
    book, trades, ticker = (f"book.{symbol}",), (f"trades.{symbol}",), (f"ticker.{symbol}",)
    if rest in ("depth", "depth@100ms"):
        return Stream(name, "depth", book, (symbol,), pace=100 if rest.endswith("ms") else 1000)
    simple = {
        "trade": ("trade", trades),
        "aggTrade": ("aggTrade", trades),
        "ticker": ("ticker", ticker),
        "miniTicker": ("miniTicker", ticker),
        "bookTicker": ("bookTicker", book),
    }
    if rest in simple:
        kind, channels = simple[rest]
        return Stream(name, kind, channels, (symbol,))
    partial = re.fullmatch(r"depth(5|10|20)(@100ms)?", rest)
    if partial:
        pace = 100 if partial.group(2) else 1000
        return Stream(name, "partial", book, (symbol,), levels=int(partial.group(1)), pace=pace)
    interval = rest.removeprefix("kline_")
    if rest.startswith("kline_") and interval in INTERVALS:
        channel = f"candles.{symbol}.{interval}"
        return Stream(name, "kline", (channel,), (symbol,), interval=interval)
    return None


def _error(code: int, msg: str, request_id: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": request_id}


class _Market:
    """One connection's market streams and the channels they read."""

    def __init__(self, engine: Engine, inbox: Inbox, combined: bool) -> None:
        self.engine = engine
        self.inbox = inbox
        self.combined = combined
        self.streams: dict[str, Stream] = {}
        self.channels: dict[str, int] = {}
        """Each channel subscribed, and how many streams read it."""
        self.mirrors: dict[Symbol, BookMirror] = {}
        self.tops: dict[str, tuple[list[Level], list[Level]]] = {}
        """Each ``bookTicker`` stream's best bid and ask as last sent."""
        self.held = Held(self._flush, inbox.say_texts)
        self.klines = Open(self._closed, self._ask_close)
        self.all_market = trio.Event()
        """Set once an all-market stream is subscribed: then listings are followed."""
        self.lock = trio.Lock()
        """Held by ``subscribe``, ``unsubscribe`` and ``follow_listings``, each of which
        counts and subscribes channels across awaits: one must not see another's
        half done (a stream stored with a channel not yet counted)."""

    async def subscribe(self, stream: Stream) -> Refused | None:
        async with self.lock:
            if stream.name in self.streams:
                return None
            if stream.kind.startswith("!"):
                self.all_market.set()
            refused = await self._take(stream, stream.channels, None)
            if refused is not None:
                return refused
            if stream.kind in ("partial", "bookTicker") and stream.symbols[0] in self.mirrors:
                # The channel's snapshot went by already: start from the mirror.
                snapshot = {"type": "snapshot"}
                if stream.kind == "bookTicker":
                    self.inbox.say_texts(self._book_ticker(stream, snapshot))
                else:
                    self.inbox.say_texts(self._outputs(stream, snapshot))
            return None

    async def follow_listings(self) -> None:
        """Add each symbol listed later to the all-market streams (``!ticker@arr``), which
        read every listed symbol's ticker, for as long as the connection lasts; a refused
        subscription leaves the stream as it was, to try again at the next check."""
        await self.all_market.wait()
        while True:
            await trio.sleep(LISTING_CHECK_SECONDS)
            listed = tuple(self.engine.instruments())
            async with self.lock:
                for stream in list(self.streams.values()):
                    if not stream.kind.startswith("!") or len(stream.symbols) == len(listed):
                        continue
                    new = tuple(s for s in listed if s not in stream.symbols)
                    channels = tuple(f"ticker.{s}" for s in new)
                    grown = attrs.evolve(
                        stream, channels=stream.channels + channels, symbols=stream.symbols + new
                    )
                    await self._take(grown, channels, stream)

    async def unsubscribe(self, name: str) -> None:
        async with self.lock:
            self.held.drop(name)
            self.klines.drop(name)
            self.tops.pop(name, None)
            stream = self.streams.pop(name, None)
            if stream is not None:
                for channel in stream.channels:
                    await self._release(channel)

    async def _take(
        self, stream: Stream, channels: tuple[str, ...], before: Stream | None
    ) -> Refused | None:
        """Store ``stream``, which reads ``channels`` besides what ``before`` (the stream of
        its name as it was, or None) reads, and subscribe to those no other stream reads.

        Each channel is counted before the stream is stored, so that ``_release``
        finds every channel of a stored stream counted, and the stream is stored before
        the channels' snapshots come, which it reads. Refused: ``before`` is back in
        place and nothing taken stays. The caller holds ``lock``.
        """
        for channel in channels:
            self.channels[channel] = self.channels.get(channel, 0) + 1
        self.streams[stream.name] = stream
        for channel in channels:
            if self.channels[channel] != 1:
                continue
            result = await self.engine.subscribe(channel, self.inbox, None)
            if isinstance(result, Refused):
                if before is None:
                    del self.streams[stream.name]
                else:
                    self.streams[stream.name] = before
                # Unsubscribing from a channel not subscribed to yet changes nothing.
                for taken in channels:
                    await self._release(taken)
                return result
        return None

    async def _release(self, channel: str) -> None:
        """One stream fewer reads ``channel``; the last one unsubscribes from it. The
        caller holds ``lock``."""
        self.channels[channel] -= 1
        if not self.channels[channel]:
            del self.channels[channel]
            await self.engine.unsubscribe(channel, self.inbox)
            if channel.startswith("book."):
                self.mirrors.pop(Symbol(channel.removeprefix("book.")), None)

    def shutdown(self, event: dict[str, Any]) -> dict[str, Any]:
        """``serverShutdown`` as this connection sends events (combined: ``!serverShutdown``)."""
        return {"stream": "!serverShutdown", "data": event} if self.combined else event

    async def close(self) -> None:
        for channel in self.channels:
            await self.engine.unsubscribe(channel, self.inbox)
        self.channels.clear()

    async def translate(self, text: str) -> list[str]:
        message = _TRANSLATED.parsed(text)
        channel = message.get("channel", "")
        if channel.startswith("book."):
            symbol = Symbol(channel.removeprefix("book."))
            self.mirrors.setdefault(symbol, BookMirror()).apply(message)
        out: list[str] = []
        for stream in list(self.streams.values()):
            if channel not in stream.channels:
                continue
            if stream.pace:  # sent at its boundary (pace.Held)
                self.held.hold(stream.name, stream.pace, message)
                continue
            if stream.kind == "bookTicker":
                out.extend(self._book_ticker(stream, message))
                continue
            if stream.kind == "kline" and message.get("type") == "snapshot":
                out.extend(self._kline_snapshot(stream, message))
                continue
            if stream.kind == "kline" and message.get("type") == _KLINE_CLOSE:
                if message["stream"] == stream.name:
                    out.extend(self.klines.closing(stream.name, message["start"]))
                continue
            if (
                stream.kind == "kline"
                and message.get("type") == "candle"
                and self.klines.final(stream.name, message["start"])
            ):
                # A late trade's update of a candle sent closed: closed again, with it.
                out.extend(self._outputs(stream, message, final=True))
                continue
            key = (text, stream.name, self.combined)
            texts = _TRANSLATED.outputs.get(key)
            if texts is None:
                texts = _TRANSLATED.keep(key, self._outputs(stream, message))
            if stream.kind == "kline" and texts:
                close = payloads.kline_close(stream.interval, message)
                out.extend(self.klines.sent(stream.name, message, close))
            out.extend(texts)
        return out

    def _book_ticker(self, stream: Stream, message: dict[str, Any]) -> list[str]:
        """``bookTicker`` from this connection's mirror, when the best bid or ask (price
        or quantity) changed, as Binance's."""
        mirror = self.mirrors.get(stream.symbols[0])
        if mirror is None:
            return []
        top = mirror.levels(1)
        if self.tops.get(stream.name) == top:
            return []
        self.tops[stream.name] = top
        return self._outputs(stream, message)

    def _kline_snapshot(self, stream: Stream, message: dict[str, Any]) -> list[str]:
        """A kline stream's first message: the newest candle, closed if its interval
        has ended."""
        if not message.get("candles"):
            return []
        candle = {"type": "candle", **message["candles"][-1]}
        close = payloads.kline_close(stream.interval, candle)
        if close < payloads.now_ms():
            self.klines.closed(stream.name, candle["start"])
            return self._outputs(stream, candle, final=True)
        return self.klines.sent(stream.name, candle, close) + self._outputs(stream, candle)

    def _ask_close(self, name: str, start: int) -> None:
        """Queue the close of kline stream ``name``'s candle of ``start`` behind the channel
        messages that wait, so that it is sent in order with them (``klines.Open``)."""
        stream = self.streams.get(name)
        if stream is None:
            return
        close = {"channel": stream.channels[0], "type": _KLINE_CLOSE, "stream": name,
                 "start": start}  # fmt: skip
        # Too far behind, the connection is dropped, or about to be: no close then.
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self.inbox.send_nowait(dump(close))

    def _closed(self, name: str, candle: dict[str, Any], final: bool) -> list[str]:
        stream = self.streams.get(name)
        return [] if stream is None else self._outputs(stream, candle, final)

    def _flush(self, name: str, diff: Diff | None) -> list[str]:
        """A paced stream's message at its boundary: the merged diff, or the partial book."""
        stream = self.streams.get(name)
        if stream is None:
            return []
        return self._outputs(stream, diff.message() if diff is not None else {"type": "snapshot"})

    def _outputs(
        self,
        stream: Stream,
        message: dict[str, Any],
        final: bool = False,
    ) -> list[str]:
        """What ``stream`` sends for ``message`` of one of its channels (``final``: a
        kline's candle is closed)."""
        kind = message.get("type")
        instruments = self.engine.instruments()
        symbol = Symbol(message["symbol"]) if "symbol" in message else stream.symbols[0]
        if stream.kind.startswith("!"):
            symbol = Symbol(message["channel"].removeprefix("ticker."))
        instrument = instruments.get(symbol)
        if instrument is None:
            return []
        data: Any = None
        match stream.kind:
            case "depth" if kind == "delta":
                data = payloads.depth_update(instrument, message)
            case "partial" if symbol in self.mirrors:
                data = payloads.partial_depth(instrument, self.mirrors[symbol], stream.levels)
            case "bookTicker" if symbol in self.mirrors:
                data = payloads.book_ticker(instrument, self.mirrors[symbol])
            case "trade" | "aggTrade" if kind == "trade":
                data = payloads.trade(instrument, message, stream.kind == "aggTrade")
            case "kline" if kind == "candle":
                data = payloads.kline(instrument, message, stream.interval, final)
            case "ticker" | "!ticker" if kind in ("ticker", "snapshot"):
                data = payloads.ticker(instrument, message)
            case "miniTicker" | "!miniTicker" if kind in ("ticker", "snapshot"):
                data = payloads.mini_ticker(instrument, message)
        if data is None:
            return []
        if stream.kind.startswith("!"):
            data = [data]
        return [dump({"stream": stream.name, "data": data} if self.combined else data)]

    async def handle(self, raw: str | bytes, limits: MessageLimits) -> None:
        """Answer one frame of the client's: a method with an ``id``."""
        if await limits.take() > 0:
            refusal(self.inbox, limits, _error(-1003, TOO_MANY))
            return
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            self.inbox.say(_error(3, f"Invalid JSON: {exc}"))
            return
        if not isinstance(frame, dict):
            self.inbox.say(_error(2, "Invalid request: a request must be a JSON object"))
            return
        request_id = frame.get("id")
        if "id" not in frame or not _valid_id(request_id):  # null is one, none is not
            self.inbox.say(_error(2, "Invalid request: request ID must be an unsigned integer"))
            return
        method = frame.get("method")
        if method is None:
            self.inbox.say(_error(2, "Invalid request: missing field `method`", request_id))
            return
        if method not in _METHODS:
            expected = ", ".join(f"`{m}`" for m in _METHODS)
            msg = f"Invalid request: unknown variant `{method}`, expected one of {expected}"
            self.inbox.say(_error(2, msg, request_id))
            return
        params = frame.get("params", [])
        if not isinstance(params, list):
            self.inbox.say(_error(2, "Invalid request: params must be a list", request_id))
            return
        if method == "LIST_SUBSCRIPTIONS":
            self.inbox.say({"result": list(self.streams), "id": request_id})
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            self._property(method, params, request_id)
        else:
            await self._subscriptions(method, params, request_id)

    def _property(self, method: str, params: list[Any], request_id: Any) -> None:
        if not params or not isinstance(params[0], str):
            self.inbox.say(_error(2, "Invalid request: property name must be a string", request_id))
        elif params[0] != "combined":
            self.inbox.say(_error(0, "Unknown property", request_id))
        elif method == "GET_PROPERTY":
            self.inbox.say({"result": self.combined, "id": request_id})
        elif len(params) != 2 or not isinstance(params[1], bool):
            self.inbox.say(_error(1, "Invalid value type: expected Boolean", request_id))
        else:
            self.combined = params[1]
            self.inbox.say({"result": None, "id": request_id})

    async def _subscriptions(self, method: str, names: list[Any], request_id: Any) -> None:
        instruments = self.engine.instruments()
        streams = [parse_stream(n, instruments) if isinstance(n, str) else None for n in names]
        if not names or any(s is None for s in streams):
            self.inbox.say(_error(2, "Invalid request: invalid stream", request_id))
            return
        if method == "UNSUBSCRIBE":
            for name in names:
                await self.unsubscribe(name)
            self.inbox.say({"result": None, "id": request_id})
            return
        new = {s.name for s in streams if s is not None} - set(self.streams)
        if len(self.streams) + len(new) > MAX_STREAMS:
            msg = f"Invalid request: at most {MAX_STREAMS} streams a connection"
            self.inbox.say(_error(2, msg, request_id))
            return
        # The answer goes before the streams' first messages, as Binance's does.
        self.inbox.say({"result": None, "id": request_id})
        for stream in streams:
            assert stream is not None
            refused = await self.subscribe(stream)
            if refused is not None:
                self.inbox.say(_error(2, f"Invalid request: {refused.message}", request_id))


def _valid_id(request_id: object) -> bool:
    if request_id is None:
        return True
    if isinstance(request_id, bool):
        return False
    if isinstance(request_id, int):
        return -_MAX_ID - 1 <= request_id <= _MAX_ID
    return isinstance(request_id, str) and _ID.fullmatch(request_id) is not None


async def market_connection(names: list[str], combined: bool) -> Response | None:
    """Serve a market-stream connection that starts with ``names``; refuse the handshake
    (400, Binance's error) if one names no stream."""
    engine = ctx().engine
    instruments = engine.instruments()
    streams = [parse_stream(n, instruments) for n in names]
    if any(s is None for s in streams) or len(streams) > MAX_STREAMS:
        return refuse(400, -1121, "Invalid stream name.")
    await websocket.accept()
    inbox = Inbox()
    market = _Market(engine, inbox, combined)
    limiter: Limiter | None = current_app.config.get("LIMITER")
    limits = MessageLimits(limiter, websocket.remote_addr)
    try:
        for stream in streams:
            assert stream is not None
            await market.subscribe(stream)
        link = Link(inbox, market.translate, shutdown=market.shutdown)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(market.held.run)
            nursery.start_soon(market.klines.run)
            nursery.start_soon(market.follow_listings)
            await link.run(lambda raw: market.handle(raw, limits))
            nursery.cancel_scope.cancel()
    finally:
        inbox.close()
        with trio.CancelScope(shield=True):
            await market.close()
    return None


@blueprint.websocket("/ws")
@blueprint.websocket("/ws/<path:names>")
@guarded(refuse_upgrade)
async def raw_streams(names: str = "") -> Response | None:
    """Raw streams (``/ws/a/b``), a listen key's user data stream, or none yet (``/ws/0``)."""
    parts = [n for n in names.split("/") if n]
    if len(parts) == 1 and _LISTEN_KEY.fullmatch(parts[0]):
        return await listen_key_connection(parts[0])
    named = [n for n in parts if "@" in n or n.startswith("!")]
    if len(named) != len(parts) and len(parts) > 1:
        return refuse(400, -1121, "Invalid stream name.")
    return await market_connection(named, combined=False)


@blueprint.websocket("/stream")
@guarded(refuse_upgrade)
async def combined_streams() -> Response | None:
    """Combined streams: ``/stream?streams=a/b/c``, each payload as ``{"stream", "data"}``."""
    names = [n for n in websocket.args.get("streams", "").split("/") if n]
    return await market_connection(names, combined=True)


@blueprint.websocket("/ws-api/v3")
@guarded(refuse_upgrade)
async def websocket_api() -> None:
    await api_connection()
