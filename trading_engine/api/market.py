"""Public market data, health and settlement queries."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request

from trading_engine import wire
from trading_engine.api.auth import authenticate
from trading_engine.api.context import ctx
from trading_engine.api.errors import ApiError
from trading_engine.api.models import (
    Candles,
    CandlesQuery,
    DepthQuery,
    Health,
    OrderBook,
    PublicTradeList,
    Ready,
    SettleBody,
    Settlement,
    SettleResult,
    Symbols,
    Ticker,
    TradesQuery,
    documented,
    validate_body,
)
from trading_engine.api.orders import _limit
from trading_engine.api.schemas import instrument_of as listed
from trading_engine.api.schemas import render_instrument
from trading_engine.core.candles import INTERVALS
from trading_engine.core.instruments import Instrument
from trading_engine.core.numbers import format_seconds
from trading_engine.errors import InvalidInput

__all__ = ["blueprint"]

P = "/api/v1/trading"


SETTLE_ACCESS = (
    "Needs a key (role user): a user's key settles only the trades the user is party to, "
    "the admin key (role admin) any trade."
)


blueprint = Blueprint("market", __name__)


def _instrument_of(symbol: str) -> Instrument:
    return listed(ctx().engine.instruments(), symbol)


@blueprint.get("/health")
@blueprint.get(f"{P}/health")
@documented(Health, public=True)
async def health() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/ready")
@blueprint.get(f"{P}/ready")
@documented(Ready, public=True)
async def ready() -> Response:
    await ctx().engine.check_ready()  # the risk actor answers, the database too
    return jsonify({"status": "ready", "symbols": len(ctx().engine.instruments())})


@blueprint.get(f"{P}/symbols")
@documented(Symbols, public=True)
async def symbols() -> Response:
    halted = ctx().engine.halted()
    return jsonify(
        {
            "symbols": [
                render_instrument(i, halted.get(s)) for s, i in ctx().engine.instruments().items()
            ]
        }
    )


@blueprint.get(f"{P}/orderbook/<symbol>")
@documented(OrderBook, 404, public=True, query=DepthQuery)
async def orderbook(symbol: str) -> Response:
    instrument = _instrument_of(symbol)
    depth = _limit(request.args.get("depth"), 50, 1000, field="depth")
    book = await ctx().engine.orderbook(instrument.symbol, depth)
    assert book is not None
    seq, bids, asks = book
    return jsonify(
        {
            "symbol": instrument.symbol,
            "seq": seq,
            "bids": wire.levels(instrument, bids),
            "asks": wire.levels(instrument, asks),
        }
    )


@blueprint.get(f"{P}/ticker/<symbol>")
@documented(Ticker, 404, public=True)
async def ticker(symbol: str) -> Response:
    instrument = _instrument_of(symbol)
    ticker = await ctx().engine.ticker(instrument.symbol)
    seq = 0 if ticker is None else ticker["seq"]
    return jsonify({**wire.ticker(instrument, ticker), "seq": seq})


@blueprint.get(f"{P}/trades")
@documented(PublicTradeList, 404, public=True, query=TradesQuery)
async def trades() -> Response:
    symbol = request.args.get("symbol")
    if not symbol:
        raise InvalidInput("symbol", "is required")
    instrument = listed(ctx().engine.instruments(), symbol, field="symbol")
    limit = _limit(request.args.get("limit"), 100, 1000)
    tape = await ctx().engine.trades(instrument.symbol, limit) or []
    return jsonify({"trades": [wire.public_trade(instrument, t) for t in tape]})


@blueprint.get(f"{P}/candles/<symbol>")
@documented(Candles, 404, public=True, query=CandlesQuery)
async def candles(symbol: str) -> Response:
    instrument = _instrument_of(symbol)
    interval = request.args.get("interval", "1m")
    if interval not in INTERVALS:
        raise InvalidInput("interval", f"must be one of {', '.join(INTERVALS)}")
    limit = _limit(request.args.get("limit"), 100, 1000)
    series = await ctx().engine.candles(instrument.symbol, interval, limit) or []
    candles = [wire.candle(instrument, c) for c in series]
    return jsonify({"symbol": instrument.symbol, "interval": interval, "candles": candles})


@blueprint.get(f"{P}/settlement/<trade_id>")
@documented(Settlement, 404)
async def settlement(trade_id: str) -> Response:
    principal = await authenticate(ctx().engine, ctx().admin_key)
    status = await ctx().engine.settlement(trade_id)
    tables = ctx().tables
    if status is not None and "price" not in status and tables is not None:
        # Settled so long ago that the engine keeps only its status: the rest (its
        # parties among it) from the read tables.
        row = await tables.trade(status["symbol"], int(trade_id.rpartition(":")[2]))
        if row is not None:
            status["price"], status["quantity"], status["ts"] = (
                row["price"], row["quantity"], row["ts"],
            )  # fmt: skip
            status["buyer"], status["seller"] = row["buyer"], row["seller"]
    # Only the trade's buyer and seller (and admin) may read it; to anyone else it
    # does not exist, so that sequential ids do not tell who traded with whom.
    if status is None or not (
        principal.admin or principal.user_id in (status.get("buyer"), status.get("seller"))
    ):
        raise ApiError(404, "unknown_trade", f"no trade {trade_id}")
    instrument = _instrument_of(status["symbol"])
    rendered: dict[str, Any] = dict(status)
    if "price" in status and "quantity" in status and "ts" in status:
        rendered["price"] = instrument.price_str(status["price"])
        rendered["quantity"] = instrument.quantity_str(status["quantity"])
        rendered["ts"] = format_seconds(status["ts"])
    else:  # settled long ago, and no read tables to tell the rest
        rendered.update(price=None, quantity=None)
    return jsonify(rendered)


@blueprint.post(f"{P}/settlement/trigger")
@documented(SettleResult, body=SettleBody, access=SETTLE_ACCESS)
async def settlement_trigger() -> Response:
    principal = await authenticate(ctx().engine, ctx().admin_key)
    body = validate_body(await request.get_data(), SettleBody)
    ids = body.get("trade_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 1000:
        raise InvalidInput("trade_ids", "must be a list of at most 1000 trade ids")
    # A user settles only their own trades; another's is unknown to them, as in GET.
    return jsonify(await ctx().engine.settle(ids, None if principal.admin else principal.user_id))
