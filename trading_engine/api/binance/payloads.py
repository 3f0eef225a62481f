"""Our channel messages (``actors/marketdata.py``) as Binance's stream payloads.

Each function takes one decoded channel message and the instrument, and
answers the payload of one Binance stream, numbers padded as the REST routes
pad them (``symbols.Precision``), times in integer milliseconds. Nothing here
is a float: decimal strings are read as ``Decimal`` and written back fixed.

- ``book.S`` deltas are ``depthUpdate``s whose ``U`` is the previous book
  message's ``seq`` plus one and ``u`` its own ``seq``: consecutive updates
  chain (``U`` = previous ``u`` + 1) and the REST depth's ``lastUpdateId`` is
  the same ``seq``, so Binance's book-sync recipe works as documented.
- partial depths and ``bookTicker`` are rendered from the connection's
  ``BookMirror`` of the book (``core/book_mirror.py``).
- ``trades.S`` trades are ``trade`` and ``aggTrade`` (each trade its own
  aggregate, as ``GET aggTrades``); ``candles.S.I`` candles are ``kline``s;
  ``ticker.S`` tickers are ``24hrTicker`` and ``24hrMiniTicker``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from trading_engine.api.binance.symbols import Precision, fixed, joined
from trading_engine.core.book_mirror import BookMirror
from trading_engine.core.candles import period_end
from trading_engine.core.instruments import Instrument

__all__ = [
    "book_ticker",
    "depth_update",
    "kline",
    "kline_close",
    "mini_ticker",
    "partial_depth",
    "ticker",
    "trade",
]

_ZERO = Decimal(0)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def seconds_ms(seconds: str) -> int:
    """A time in seconds as our messages write it (a decimal string) in milliseconds."""
    return int(Decimal(seconds) * 1000)


def _levels(numbers: Precision, levels: Sequence[Sequence[str]]) -> list[list[str]]:
    return [
        [fixed(Decimal(p), numbers.price_places), fixed(Decimal(q), numbers.quantity_places)]
        for p, q in levels
    ]


def depth_update(instrument: Instrument, message: dict[str, Any]) -> dict[str, Any]:
    """A ``book.S`` delta as a diff-depth event."""
    numbers = Precision(instrument)
    return {
        "e": "depthUpdate",
        "E": seconds_ms(message["ts"]) if "ts" in message else now_ms(),
        "s": joined(instrument.symbol),
        "U": message["prev_seq"] + 1,
        "u": message["seq"],
        "b": _levels(numbers, message["bids"]),
        "a": _levels(numbers, message["asks"]),
    }


def partial_depth(instrument: Instrument, mirror: BookMirror, levels: int) -> dict[str, Any]:
    """The top ``levels`` of each side, as ``<symbol>@depth<levels>`` sends them."""
    numbers = Precision(instrument)
    bids, asks = mirror.levels(levels)
    return {
        "lastUpdateId": mirror.seq,
        "bids": _levels(numbers, bids),
        "asks": _levels(numbers, asks),
    }


def book_ticker(instrument: Instrument, mirror: BookMirror) -> dict[str, Any]:
    """The best bid and ask (zeros for an empty side), as ``<symbol>@bookTicker``."""
    numbers = Precision(instrument)
    bids, asks = mirror.levels(1)
    [(bid, bid_quantity)] = bids or [("0", "0")]
    [(ask, ask_quantity)] = asks or [("0", "0")]
    return {
        "u": mirror.seq,
        "s": joined(instrument.symbol),
        "b": fixed(Decimal(bid), numbers.price_places),
        "B": fixed(Decimal(bid_quantity), numbers.quantity_places),
        "a": fixed(Decimal(ask), numbers.price_places),
        "A": fixed(Decimal(ask_quantity), numbers.quantity_places),
    }


def trade_id(message: dict[str, Any]) -> int:
    """The integer trade id (per symbol, as Binance's) of our ``SYMBOL:N``."""
    return int(str(message["trade_id"]).rpartition(":")[2])


def trade(instrument: Instrument, message: dict[str, Any], aggregate: bool) -> dict[str, Any]:
    """A ``trades.S`` trade as a ``trade`` or an ``aggTrade`` event."""
    numbers = Precision(instrument)
    number = trade_id(message)
    body: dict[str, Any] = {
        "e": "aggTrade" if aggregate else "trade",
        "E": now_ms(),
        "s": joined(instrument.symbol),
    }
    if aggregate:
        body["a"] = number
    else:
        body["t"] = number
    body["p"] = fixed(Decimal(message["price"]), numbers.price_places)
    body["q"] = fixed(Decimal(message["quantity"]), numbers.quantity_places)
    if aggregate:
        body["f"] = body["l"] = number
    body["T"] = seconds_ms(message["time"])
    body["m"] = message["side"] == "sell"  # the buyer made the price when a seller took it
    body["M"] = True
    return body


def kline_close(interval: str, candle: dict[str, Any]) -> int:
    """The close time (ms, the last millisecond of its interval) of a ``candles.S.I``
    candle."""
    return period_end(interval, int(candle["start"]) * 1_000_000_000) // 1_000_000 - 1


def kline(
    instrument: Instrument, message: dict[str, Any], interval: str, final: bool = False
) -> dict[str, Any]:
    """A candle of ``candles.S.I`` (an update, or the last of a snapshot) as a ``kline``,
    closed (``x``) if ``final``.

    The candle does not carry its first and last trade ids or the taker-buy
    volumes: ``f``/``L`` are -1 and those volumes 0, as ``GET klines`` shows them.
    """
    numbers = Precision(instrument)
    start = int(message["start"]) * 1000
    name = joined(instrument.symbol)

    def price(key: str) -> str:
        return fixed(Decimal(message[key]), numbers.price_places)

    return {
        "e": "kline",
        "E": now_ms(),
        "s": name,
        "k": {
            "t": start,
            "T": kline_close(interval, message),
            "s": name,
            "i": interval,
            "f": -1,
            "L": -1,
            "o": price("open"),
            "c": price("close"),
            "h": price("high"),
            "l": price("low"),
            "v": fixed(Decimal(message["volume"]), numbers.quantity_places),
            "n": message["trades"],
            "x": final,
            "q": fixed(Decimal(message["quote_volume"]), numbers.quote_places),
            "V": numbers.quantity(0),
            "Q": numbers.quote(0),
            "B": "0",
        },
    }


def _price(numbers: Precision, value: str | None) -> str:
    return fixed(Decimal(value) if value else _ZERO, numbers.price_places)


def mini_ticker(instrument: Instrument, message: dict[str, Any]) -> dict[str, Any]:
    """A ``ticker.S`` ticker as a ``24hrMiniTicker``."""
    numbers = Precision(instrument)
    return {
        "e": "24hrMiniTicker",
        "E": now_ms(),
        "s": joined(instrument.symbol),
        "c": _price(numbers, message["last"]),
        "o": _price(numbers, message["open_24h"]),
        "h": _price(numbers, message["high_24h"]),
        "l": _price(numbers, message["low_24h"]),
        "v": fixed(Decimal(message["volume_24h"]), numbers.quantity_places),
        "q": fixed(Decimal(message["quote_volume_24h"]), numbers.quote_places),
    }


def ticker(instrument: Instrument, message: dict[str, Any]) -> dict[str, Any]:
    """A ``ticker.S`` ticker as a ``24hrTicker``, with the numbers ``GET ticker/24hr``
    shows: the statistics, the best prices and their quantities and the last trade's
    quantity, all the ticker's own (as they stood at its ``seq``)."""
    numbers = Precision(instrument)

    def quantity(name: str) -> str:
        return fixed(Decimal(message[name]), numbers.quantity_places)

    change = Decimal(message["change_24h"] or 0)
    open_ = Decimal(message["open_24h"] or 0)
    volume = Decimal(message["volume_24h"])
    quote_volume = Decimal(message["quote_volume_24h"])
    percent = (change * 100 / open_).quantize(Decimal("0.001")) if open_ else Decimal("0.000")
    weighted = _ZERO
    if volume:
        weighted = (quote_volume / volume).quantize(Decimal(1).scaleb(-numbers.price_places))
    now = now_ms()
    return {
        "e": "24hrTicker",
        "E": now,
        "s": joined(instrument.symbol),
        "p": fixed(change, numbers.price_places),
        "P": fixed(percent, 3),
        "w": fixed(weighted, numbers.price_places),
        "x": _price(numbers, message["open_24h"]),
        "c": _price(numbers, message["last"]),
        "Q": quantity("last_quantity"),
        "b": _price(numbers, message["best_bid"]),
        "B": quantity("bid_quantity"),
        "a": _price(numbers, message["best_ask"]),
        "A": quantity("ask_quantity"),
        "o": _price(numbers, message["open_24h"]),
        "h": _price(numbers, message["high_24h"]),
        "l": _price(numbers, message["low_24h"]),
        "v": fixed(volume, numbers.quantity_places),
        "q": fixed(quote_volume, numbers.quote_places),
        "O": now - 86_400_000,
        "C": now,
        "F": -1,
        "L": -1,
        "n": message["trades_24h"],
    }
