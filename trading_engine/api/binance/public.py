"""Public routes: ping, time, exchangeInfo and market data, from the engine's views."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from quart import Response, jsonify

from trading_engine.actors.answers import Ticker
from trading_engine.api.binance.errors import BinanceError
from trading_engine.api.binance.params import Params
from trading_engine.api.binance.symbols import (
    Precision,
    fixed,
    instrument_for,
    joined,
    millis,
)
from trading_engine.api.context import ctx
from trading_engine.core.candles import INTERVALS, Candle
from trading_engine.core.events import Trade
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.numbers import MAX_WHOLE_DIGITS, from_units

__all__ = ["ORDER_TYPES", "register"]

ORDER_TYPES = [
    "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]  # fmt: skip
"""Binance's spot order types, all of which the engine has (``trading._new_order``)."""
_MAX_BPS = 9999
"""A trailing stop's largest ``trailingDelta`` (the engine's ``trailing_bps`` is below 100%)."""
_NO_LIMIT = 2**31 - 1
_MAX_TRADES = 1000
_KLINE_LIMIT = 1000


def _instrument(params: Params) -> Instrument:
    return instrument_for(ctx().engine.instruments(), params.need("symbol"))


def _symbols(params: Params) -> list[Instrument] | None:
    """The instruments ``symbol`` or ``symbols`` (a JSON list) name; None for all."""
    instruments = ctx().engine.instruments()
    if params.has("symbol") and params.has("symbols"):
        raise BinanceError(400, -1128, "Combination of optional parameters invalid.")
    if params.has("symbol"):
        return [instrument_for(instruments, params.need("symbol"))]
    names = _name_list(params, "symbols", one_allowed=False)
    if names is None:
        return None
    return [instrument_for(instruments, name) for name in names]


def _name_list(params: Params, name: str, *, one_allowed: bool) -> list[str] | None:
    """The parameter ``name``: a JSON list of names (``["A","B"]``) or, if ``one_allowed``,
    one name as is; None if not sent; raises -1100."""
    raw = params.text(name, max_length=8192)
    if raw is None:
        return None
    names: Any = [raw] if one_allowed and not raw.startswith("[") else None
    if names is None:
        try:
            names = json.loads(raw)
        except ValueError:
            names = None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return names


async def ping() -> Response:
    await Params.of_request(())
    return jsonify({})


async def server_time() -> Response:
    await Params.of_request(())
    return jsonify({"serverTime": time.time_ns() // 1_000_000})


_STATUSES = ("TRADING", "HALT", "BREAK")


async def exchange_info() -> Response:
    """Every symbol, or those ``symbol``/``symbols`` name, or those of a ``symbolStatus``
    or of any of the ``permissions`` (each symbol here is SPOT only); the last two do
    not combine with the first two (-1128), as Binance's."""
    params = await Params.of_request(
        ("symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus")
    )
    show_sets = params.choice("showPermissionSets", ("true", "false")) != "false"
    status = params.choice("symbolStatus", _STATUSES)
    permissions = _name_list(params, "permissions", one_allowed=True)
    if (status or permissions) and (params.has("symbol") or params.has("symbols")):
        raise BinanceError(400, -1128, "Combination of optional parameters invalid.")
    chosen = _symbols(params)
    instruments = list(ctx().engine.instruments().values()) if chosen is None else chosen
    if permissions is not None and "SPOT" not in permissions:
        instruments = []
    halted = ctx().engine.halted()
    risk = ctx().engine.config.risk
    symbols = [
        _symbol_info(i, i.symbol in halted, risk.max_open_orders, risk.max_order_size)
        for i in instruments
    ]
    for symbol in symbols if not show_sets else ():
        symbol["permissionSets"] = []
    return jsonify(
        {
            "timezone": "UTC",
            "serverTime": time.time_ns() // 1_000_000,
            "rateLimits": [],
            # The open-order limit counts a user's orders in every symbol together.
            "exchangeFilters": [
                {"filterType": "EXCHANGE_MAX_NUM_ORDERS", "maxNumOrders": risk.max_open_orders},
                {
                    "filterType": "EXCHANGE_MAX_NUM_ALGO_ORDERS",
                    "maxNumAlgoOrders": risk.max_open_orders,
                },
            ],
            "symbols": [s for s in symbols if status is None or s["status"] == status],
        }
    )


def _largest(step: Decimal) -> Decimal:
    """The largest number on the grid of ``step`` that the engine reads (``MAX_WHOLE_DIGITS``
    before the point): where the engine sets no maximum. Binance's filters have none of 0
    (a client such as freqtrade reads a maximum of 0 as nothing allowed)."""
    return (Decimal(10) ** MAX_WHOLE_DIGITS - step).quantize(step)


def _symbol_info(
    instrument: Instrument, halted: bool, max_orders: int, max_size: Decimal | None
) -> dict[str, Any]:
    numbers = Precision(instrument)
    band = Decimal(instrument.price_band_bps) / 10_000
    max_qty = fixed(max_size or _largest(instrument.lot_size), numbers.quantity_places)
    lot = {
        "minQty": numbers.quantity(instrument.min_quantity),
        "maxQty": max_qty,
        "stepSize": fixed(instrument.lot_size, numbers.quantity_places),
    }
    filters: list[dict[str, Any]] = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": fixed(instrument.tick_size, numbers.price_places),
            "maxPrice": fixed(_largest(instrument.tick_size), numbers.price_places),
            "tickSize": fixed(instrument.tick_size, numbers.price_places),
        },
        {"filterType": "LOT_SIZE", **lot},
        {"filterType": "MARKET_LOT_SIZE", **lot},
        {
            "filterType": "NOTIONAL",
            "minNotional": numbers.quote(instrument.min_notional),
            "applyMinToMarket": True,
            "maxNotional": fixed(
                _largest(Decimal(1).scaleb(-numbers.quote_places)), numbers.quote_places
            ),
            "applyMaxToMarket": False,
            "avgPriceMins": 0,
        },
    ]
    if band:
        up, down = fixed(1 + band, 4), fixed(1 - band, 4)
        filters.append(
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": up,
                "bidMultiplierDown": down,
                "askMultiplierUp": up,
                "askMultiplierDown": down,
                "avgPriceMins": 0,
            }
        )
    filters.append(
        {
            "filterType": "ICEBERG_PARTS",
            # Any number of slices: at most one a lot, so a maximum size bounds them.
            "limit": int(max_size / instrument.lot_size) if max_size else _NO_LIMIT,
        }
    )
    filters.append(
        {
            "filterType": "TRAILING_DELTA",
            "minTrailingAboveDelta": 1,
            "maxTrailingAboveDelta": _MAX_BPS,
            "minTrailingBelowDelta": 1,
            "maxTrailingBelowDelta": _MAX_BPS,
        }
    )
    filters.append({"filterType": "MAX_NUM_ORDERS", "maxNumOrders": max_orders})
    filters.append({"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": max_orders})
    return {
        "symbol": joined(instrument.symbol),
        "status": "HALT" if halted else "TRADING",
        "baseAsset": instrument.base_asset,
        "baseAssetPrecision": numbers.quantity_places,
        "quoteAsset": instrument.quote_asset,
        "quotePrecision": numbers.price_places,
        "quoteAssetPrecision": numbers.quote_places,
        "baseCommissionPrecision": instrument.base_decimals,
        "quoteCommissionPrecision": instrument.quote_decimals,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": True,
        "ocoAllowed": instrument.mode is Mode.SPOT,
        "otoAllowed": instrument.mode is Mode.SPOT,
        "quoteOrderQtyMarketAllowed": instrument.mode is Mode.SPOT,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": filters,
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_TAKER",
        "allowedSelfTradePreventionModes": [
            "NONE",
            "EXPIRE_TAKER",
            "EXPIRE_MAKER",
            "EXPIRE_BOTH",
            "DECREMENT",
        ],
    }


async def depth() -> Response:
    params = await Params.of_request(("symbol", "limit"))
    instrument = _instrument(params)
    limit = params.limit(100, 5000)
    book = await ctx().engine.orderbook(instrument.symbol, limit)
    assert book is not None
    seq, bids, asks = book
    numbers = Precision(instrument)
    return jsonify(
        {
            "lastUpdateId": seq,
            "bids": [[numbers.price(p), numbers.quantity(q)] for p, q in bids],
            "asks": [[numbers.price(p), numbers.quantity(q)] for p, q in asks],
        }
    )


async def _tape(instrument: Instrument, limit: int) -> list[Trade]:
    """The symbol's newest ``limit`` trades, oldest first."""
    tape = await ctx().engine.trades(instrument.symbol, limit) or []
    return list(reversed(tape))


async def trades() -> Response:
    params = await Params.of_request(("symbol", "limit"))
    instrument = _instrument(params)
    numbers = Precision(instrument)
    tape = await _tape(instrument, params.limit(500, _MAX_TRADES))
    return jsonify(
        [
            {
                "id": t.trade_id,
                "price": numbers.price(t.price),
                "qty": numbers.quantity(t.quantity),
                "quoteQty": numbers.notional(t.price * t.quantity),
                "time": millis(t.ts),
                "isBuyerMaker": str(t.aggressor) == "sell",
                "isBestMatch": True,
            }
            for t in tape
        ]
    )


async def agg_trades() -> Response:
    """Each trade is its own aggregate: ``a``, ``f`` and ``l`` are its trade id."""
    params = await Params.of_request(("symbol", "limit", "fromId", "startTime", "endTime"))
    instrument = _instrument(params)
    numbers = Precision(instrument)
    from_id = params.integer("fromId")
    start, end = params.integer("startTime"), params.integer("endTime")
    limit = params.limit(500, _MAX_TRADES)
    tape = await _tape(instrument, _MAX_TRADES if from_id or start or end else limit)
    chosen = [
        t for t in tape
        if (from_id is None or t.trade_id >= from_id)
        and (start is None or millis(t.ts) >= start)
        and (end is None or millis(t.ts) <= end)
    ]  # fmt: skip
    chosen = chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]
    return jsonify(
        [
            {
                "a": t.trade_id,
                "p": numbers.price(t.price),
                "q": numbers.quantity(t.quantity),
                "f": t.trade_id,
                "l": t.trade_id,
                "T": millis(t.ts),
                "m": str(t.aggressor) == "sell",
                "M": True,
            }
            for t in chosen
        ]
    )


async def klines() -> Response:
    """Candles of Binance's intervals, which the engine keeps (``core.candles``): the
    newest 1000 of each; another interval is -1120."""
    params = await Params.of_request(("symbol", "interval", "startTime", "endTime", "limit",
                                      "timeZone"))  # fmt: skip
    instrument = _instrument(params)
    interval = params.need("interval")
    if interval not in INTERVALS:
        raise BinanceError(400, -1120, "Invalid interval.")
    if params.text("timeZone") not in (None, "0", "+00:00"):
        raise BinanceError(400, -1130, "Data sent for parameter 'timeZone' is not valid.")
    start, end = params.integer("startTime"), params.integer("endTime")
    limit = params.limit(500, _KLINE_LIMIT)
    series = await ctx().engine.candles(instrument.symbol, interval, _KLINE_LIMIT) or []
    chosen = [
        c for c in series
        if (start is None or millis(c.start) >= start)
        and (end is None or millis(c.start) <= end)
    ]  # fmt: skip
    chosen = chosen[:limit] if start is not None else chosen[-limit:]
    numbers = Precision(instrument)
    return jsonify([_kline(c, numbers) for c in chosen])


def _kline(candle: Candle, numbers: Precision) -> list[Any]:
    return [
        millis(candle.start),
        numbers.price(candle.open),
        numbers.price(candle.high),
        numbers.price(candle.low),
        numbers.price(candle.close),
        numbers.quantity(candle.volume),
        millis(candle.end) - 1,
        numbers.notional(candle.quote_volume),
        candle.trades,
        "0",  # taker buy volumes: the candles do not keep them
        "0",
        "0",
    ]


async def avg_price() -> Response:
    """The VWAP of the last 5 minutes of trades, as Binance's ``avgPrice``."""
    params = await Params.of_request(("symbol",))
    instrument = _instrument(params)
    numbers = Precision(instrument)
    tape = await _tape(instrument, _MAX_TRADES)
    now = time.time_ns()
    recent = [t for t in tape if now - t.ts <= 5 * 60 * 1_000_000_000]
    volume = sum(t.quantity for t in recent)
    price = "0"
    if volume:
        vwap = from_units(sum(t.price * t.quantity for t in recent), instrument.tick_size)
        price = fixed((vwap / volume).quantize(Decimal(1).scaleb(-numbers.price_places)),
                      numbers.price_places)  # fmt: skip
    return jsonify(
        {
            "mins": 5,
            "price": price,
            "closeTime": millis(recent[-1].ts) if recent else 0,
        }
    )


async def _tickers(params: Params) -> list[tuple[Instrument, Ticker | None]]:
    chosen = _symbols(params)
    instruments = list(ctx().engine.instruments().values()) if chosen is None else chosen
    return [(i, await ctx().engine.ticker(i.symbol)) for i in instruments]


def _one_or_all(params: Params, rows: list[dict[str, Any]]) -> Response:
    return jsonify(rows[0] if params.has("symbol") else rows)


async def ticker_24hr() -> Response:
    params = await Params.of_request(("symbol", "symbols", "type"))
    mini = params.choice("type", ("FULL", "MINI"), code=-1130) == "MINI"
    rows = []
    for instrument, ticker in await _tickers(params):
        row = _ticker(instrument, ticker)
        if mini:
            rows.append({name: row[name] for name in _MINI})
            continue
        row.update(_ticker_top(instrument, ticker))
        rows.append(row)
    return _one_or_all(params, rows)


_MINI = (
    "symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume",
    "openTime", "closeTime", "firstId", "lastId", "count",
)  # fmt: skip
"""The fields of ``ticker/24hr`` with ``type=MINI``, as Binance's."""


async def _top(instrument: Instrument) -> dict[str, str]:
    """The best bid and ask with their quantities, from the book (0 for an empty side)."""
    numbers = Precision(instrument)
    book = await ctx().engine.orderbook(instrument.symbol, 1)
    assert book is not None
    _, bids, asks = book
    bid, ask = bids[0] if bids else (0, 0), asks[0] if asks else (0, 0)
    return {
        "bidPrice": numbers.price(bid[0]),
        "bidQty": numbers.quantity(bid[1]),
        "askPrice": numbers.price(ask[0]),
        "askQty": numbers.quantity(ask[1]),
    }


def _ticker_top(instrument: Instrument, ticker: Ticker | None) -> dict[str, str]:
    """The best bid and ask with their quantities (0 for an empty side) and the last
    trade's quantity of ``ticker/24hr``: the ticker's own, as they stood at its ``seq``."""
    numbers = Precision(instrument)
    if ticker is None:
        bid = ask = (0, 0)
        last = 0
    else:
        bid = (ticker["best_bid"] or 0, ticker["bid_quantity"])
        ask = (ticker["best_ask"] or 0, ticker["ask_quantity"])
        last = ticker["last_quantity"]
    return {
        "lastQty": numbers.quantity(last),
        "bidPrice": numbers.price(bid[0]),
        "bidQty": numbers.quantity(bid[1]),
        "askPrice": numbers.price(ask[0]),
        "askQty": numbers.quantity(ask[1]),
    }


def _ticker(instrument: Instrument, ticker: Ticker | None) -> dict[str, Any]:
    """The 24-hour statistics of ``ticker/24hr`` (the caller adds the top, ``_ticker_top``)."""
    numbers = Precision(instrument)
    now = time.time_ns() // 1_000_000

    def price(value: int | None) -> str:
        return numbers.price(value) if value else numbers.price(0)

    t: dict[str, Any] = dict(ticker) if ticker is not None else {}
    change = t.get("change_24h") or 0
    open_ = t.get("open_24h")
    percent = "0.000"
    if open_:
        percent = fixed((Decimal(change) * 100 / open_).quantize(Decimal("0.001")), 3)
    moved = ("-" if change < 0 else "") + numbers.price(abs(change))
    volume = t.get("volume_24h", 0)
    quote_volume = t.get("quote_volume_24h", 0)
    weighted = numbers.price(0)
    if volume:
        exact = from_units(quote_volume, instrument.tick_size) / volume
        weighted = fixed(exact.quantize(Decimal(1).scaleb(-numbers.price_places)),
                         numbers.price_places)  # fmt: skip
    return {
        "symbol": joined(instrument.symbol),
        "priceChange": moved,
        "priceChangePercent": percent,
        "weightedAvgPrice": weighted,
        "prevClosePrice": price(open_),
        "lastPrice": price(t.get("last")),
        "openPrice": price(open_),
        "highPrice": price(t.get("high_24h")),
        "lowPrice": price(t.get("low_24h")),
        "volume": numbers.quantity(volume),
        "quoteVolume": numbers.notional(quote_volume),
        "openTime": now - 86_400_000,
        "closeTime": now,
        "firstId": -1,
        "lastId": -1,
        "count": t.get("trades_24h", 0),
    }


async def ticker_price() -> Response:
    params = await Params.of_request(("symbol", "symbols"))
    rows = [
        {
            "symbol": joined(i.symbol),
            "price": Precision(i).price(t["last"] if t and t["last"] else 0),
        }
        for i, t in await _tickers(params)
    ]
    return _one_or_all(params, rows)


async def book_ticker() -> Response:
    params = await Params.of_request(("symbol", "symbols"))
    rows = [{"symbol": joined(i.symbol), **await _top(i)} for i, _ in await _tickers(params)]
    return _one_or_all(params, rows)


def register(add: Any) -> None:
    """Register the public routes with ``add(method, path, handler)``."""
    add("GET", "ping", ping)
    add("GET", "time", server_time)
    add("GET", "exchangeInfo", exchange_info)
    add("GET", "depth", depth)
    add("GET", "trades", trades)
    add("GET", "aggTrades", agg_trades)
    add("GET", "klines", klines)
    add("GET", "uiKlines", klines)
    add("GET", "avgPrice", avg_price)
    add("GET", "ticker/24hr", ticker_24hr)
    add("GET", "ticker/price", ticker_price)
    add("GET", "ticker/bookTicker", book_ticker)
