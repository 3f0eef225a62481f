"""The Binance dialect's public routes, through the real ccxt."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import ccxt
import httpx
import pytest
import trio

from tests.api.binance_client import call, client, limit_order
from tests.api.conftest import ADMIN, Server
from trading_engine.core.ids import Symbol, UserId


async def test_load_markets_reads_precision_and_limits_from_the_filters(server: Server) -> None:
    with trio.fail_after(30):
        exchange = client(server, None)
        markets = await call(exchange.load_markets)
    btc = markets["BTC/AIT"]
    assert btc["id"] == "BTCAIT"
    assert btc["spot"] is True
    assert btc["active"] is True
    assert Decimal(str(btc["precision"]["price"])) == Decimal("0.01")
    assert Decimal(str(btc["precision"]["amount"])) == Decimal("0.0001")
    assert Decimal(str(btc["limits"]["amount"]["min"])) == Decimal("0.0001")
    assert set(markets) == {"BTC/AIT", "ETH/AIT"}


async def test_fetch_time_is_the_server_clock_in_milliseconds(server: Server) -> None:
    with trio.fail_after(30):
        now = await call(client(server, None).fetch_time)
    assert abs(now - time.time() * 1000) < 5_000


async def test_order_book_trades_ticker_and_candles_show_the_engine_state(
    server: Server,
) -> None:
    with trio.fail_after(30):
        await limit_order(server, "demo_alice", "sell", "100.50", "0.5")
        await limit_order(server, "demo_alice", "sell", "101", "1")
        await limit_order(server, "demo_bob", "buy", "99", "2")
        await limit_order(server, "demo_bob", "buy", "100.50", "0.2")  # trades 0.2 at 100.50
        exchange = client(server, None)
        await call(exchange.load_markets)
        book = await call(exchange.fetch_order_book, "BTC/AIT")
        snapshot = await server.engine.orderbook(Symbol("BTC_AIT"))
        trades = await call(exchange.fetch_trades, "BTC/AIT")
        ticker = await call(exchange.fetch_ticker, "BTC/AIT")
        tickers = await call(exchange.fetch_tickers)
        since = int(time.time() * 1000) - 120_000
        candles = await call(exchange.fetch_ohlcv, "BTC/AIT", "1m", since)
        raw = await _get(server, "/api/v3/depth?symbol=BTCAIT&limit=5")
    assert book["asks"] == [[100.5, 0.3], [101.0, 1.0]]
    assert book["bids"] == [[99.0, 2.0]]
    assert snapshot is not None
    assert book["nonce"] == snapshot[0]
    assert raw["asks"][0] == ["100.50000000", "0.30000000"]  # padded as Binance pads
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == [(100.5, 0.2, "buy")]
    assert int(trades[0]["id"]) >= 1
    assert ticker["last"] == 100.5
    assert (ticker["bid"], ticker["bidVolume"], ticker["ask"], ticker["askVolume"]) == (
        99, 2, 100.5, 0.3,
    )  # fmt: skip
    assert ticker["info"]["lastQty"] == "0.20000000"
    assert set(tickers) == {"BTC/AIT", "ETH/AIT"}
    assert len(candles) == 1
    assert candles[0][1:] == [100.5, 100.5, 100.5, 100.5, 0.2]
    assert candles[0][0] >= since - 60_000


async def _get(server: Server, path: str) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_other_public_routes_answer_binances_shapes(server: Server) -> None:
    with trio.fail_after(30):
        await limit_order(server, "demo_alice", "sell", "100.50", "0.5")
        await limit_order(server, "demo_bob", "buy", "100.50", "0.2")
        await limit_order(server, "demo_bob", "buy", "99", "1")
        agg = await _get(server, "/api/v3/aggTrades?symbol=BTCAIT")
        average = await _get(server, "/api/v3/avgPrice?symbol=BTCAIT")
        price = await _get(server, "/api/v3/ticker/price?symbol=BTCAIT")
        prices = await _get(server, '/api/v3/ticker/price?symbols=["BTCAIT","ETHAIT"]')
        book = await _get(server, "/api/v3/ticker/bookTicker?symbol=BTCAIT")
        ui = await _get(server, "/api/v3/uiKlines?symbol=BTCAIT&interval=1m&limit=1")
        info = await _get(server, "/api/v3/exchangeInfo?symbol=ETHAIT")
        ping = await _get(server, "/api/v3/ping")
        every_24h = await _get(server, "/api/v3/ticker/24hr")
        every_top = await _get(server, "/api/v3/ticker/bookTicker")
        mini = await _get(server, "/api/v3/ticker/24hr?symbol=BTCAIT&type=MINI")
        await limit_order(server, "demo_bob", "buy", "100.50", "0.1")  # a second trade
        agg_all = await _get(server, "/api/v3/aggTrades?symbol=BTCAIT")
        agg_from = await _get(server, f"/api/v3/aggTrades?symbol=BTCAIT&fromId={agg_all[1]['a']}")
        agg_last = await _get(server, "/api/v3/aggTrades?symbol=BTCAIT&limit=1")
        agg_until = await _get(
            server, f"/api/v3/aggTrades?symbol=BTCAIT&endTime={agg_all[0]['T']}&limit=1"
        )
    assert [(a["p"], a["q"], a["m"]) for a in agg] == [("100.50000000", "0.20000000", False)]
    assert average["price"] == "100.50000000"
    assert average["mins"] == 5
    assert price == {"symbol": "BTCAIT", "price": "100.50000000"}
    assert [p["symbol"] for p in prices] == ["BTCAIT", "ETHAIT"]
    assert prices[1]["price"] == "0.00000000"
    assert (book["bidPrice"], book["askPrice"], book["askQty"]) == (
        "99.00000000", "100.50000000", "0.30000000",
    )  # fmt: skip
    assert ui[0][1] == "100.50000000"
    assert [s["symbol"] for s in info["symbols"]] == ["ETHAIT"]
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert filters["LOT_SIZE"]["stepSize"] == "0.00100000"
    assert filters["PERCENT_PRICE_BY_SIDE"]["bidMultiplierUp"] == "1.1000"
    assert filters["MAX_NUM_ORDERS"]["maxNumOrders"] == 1000
    assert ping == {}
    assert [t["symbol"] for t in every_24h] == ["BTCAIT", "ETHAIT"]
    assert (every_24h[0]["bidQty"], every_24h[0]["askQty"]) == ("1.00000000", "0.30000000")
    assert [t["symbol"] for t in every_top] == ["BTCAIT", "ETHAIT"]
    timeless = set(mini) - {"openTime", "closeTime"}
    assert {k: mini[k] for k in timeless} == {k: every_24h[0][k] for k in timeless}
    assert set(mini) == {
        "symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume",
        "openTime", "closeTime", "firstId", "lastId", "count",
    }  # fmt: skip
    assert len(agg_all) == 2
    assert agg_from == agg_all[1:]
    assert agg_last == agg_all[1:]
    assert agg_until == agg_all[:1]


async def test_a_halted_symbol_is_halt_and_refuses_orders_as_market_closed(
    server: Server,
) -> None:
    async with server.client(ADMIN) as admin:
        halted = await admin.post("/admin/symbols/BTC_AIT/halt", json={"reason": "test"})
    assert halted.status_code == 200
    with trio.fail_after(30):
        alice = client(server)
        markets = await call(alice.load_markets)
        with pytest.raises(ccxt.MarketClosed):
            await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 90)
    assert markets["BTC/AIT"]["active"] is False
    assert await server.engine.user_orders(UserId("demo_alice")) == []


async def test_exchange_info_filters_are_built_from_the_instrument(server: Server) -> None:
    body = {"symbol": "SOL_AIT", "base_asset": "SOL", "quote_asset": "AIT", "tick_size": "0.05",
            "lot_size": "0.5", "min_quantity": "2", "min_notional": "25",
            "price_band_pct": "5"}  # fmt: skip
    async with server.client(ADMIN) as admin:
        listed = await admin.post("/admin/symbols", json=body)
        assert listed.status_code == 201, listed.text
        halted = await admin.post("/admin/symbols/BTC_AIT/halt", json={"reason": "test"})
        assert halted.status_code == 200
    with trio.fail_after(30):
        info = await _get(server, "/api/v3/exchangeInfo?symbol=SOLAIT&showPermissionSets=false")
        markets = await call(client(server, None).load_markets)
        by_status = {
            status: await _get(server, f"/api/v3/exchangeInfo?symbolStatus={status}")
            for status in ("TRADING", "HALT", "BREAK")
        }
        margin = await _get(server, '/api/v3/exchangeInfo?permissions=["MARGIN"]')
        spot = await _get(server, "/api/v3/exchangeInfo?permissions=SPOT")
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            mixed = await http.get("/api/v3/exchangeInfo?symbol=SOLAIT&symbolStatus=TRADING")
    sol = info["symbols"][0]
    assert (sol["symbol"], sol["status"], sol["baseAsset"], sol["quoteAsset"]) == (
        "SOLAIT", "TRADING", "SOL", "AIT",
    )  # fmt: skip
    assert (sol["permissions"], sol["permissionSets"], sol["isSpotTradingAllowed"]) == (
        ["SPOT"], [], True,
    )  # fmt: skip
    filters = {f["filterType"]: f for f in sol["filters"]}
    assert (filters["PRICE_FILTER"]["minPrice"], filters["PRICE_FILTER"]["tickSize"]) == (
        "0.05000000", "0.05000000",
    )  # fmt: skip
    for name in ("LOT_SIZE", "MARKET_LOT_SIZE"):
        assert (filters[name]["minQty"], filters[name]["stepSize"]) == ("2.00000000", "0.50000000")
    assert filters["NOTIONAL"]["minNotional"] == "25.00000000"
    assert filters["PERCENT_PRICE_BY_SIDE"]["askMultiplierUp"] == "1.0500"
    assert filters["PERCENT_PRICE_BY_SIDE"]["bidMultiplierDown"] == "0.9500"
    limit = server.engine.config.risk.max_open_orders
    assert filters["MAX_NUM_ORDERS"]["maxNumOrders"] == limit
    assert filters["MAX_NUM_ALGO_ORDERS"]["maxNumAlgoOrders"] == limit
    assert info["exchangeFilters"] == [
        {"filterType": "EXCHANGE_MAX_NUM_ORDERS", "maxNumOrders": limit},
        {"filterType": "EXCHANGE_MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": limit},
    ]
    market = markets["SOL/AIT"]
    assert (market["limits"]["amount"]["min"], market["limits"]["cost"]["min"]) == (2, 25)
    assert (market["precision"]["price"], market["precision"]["amount"]) == (0.05, 0.5)
    assert [s["symbol"] for s in by_status["HALT"]["symbols"]] == ["BTCAIT"]
    assert [s["symbol"] for s in by_status["TRADING"]["symbols"]] == ["ETHAIT", "SOLAIT"]
    assert by_status["BREAK"]["symbols"] == []
    assert margin["symbols"] == []
    assert len(spot["symbols"]) == 3
    assert (mixed.status_code, mixed.json()["code"]) == (400, -1128)
