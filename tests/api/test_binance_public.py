"""The Binance dialect's public routes, through the real ccxt."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import trio

from tests.api.binance_client import call, client
from tests.api.conftest import Server
from trading_engine.core.ids import Symbol


async def _order(server: Server, user: str, side: str, price: str, quantity: str) -> None:
    async with server.client(server.keys[user]) as http:
        body = {"symbol": "BTC_AIT", "side": side, "type": "limit", "price": price,
                "quantity": quantity}  # fmt: skip
        response = await http.post("/orders", json=body)
        assert response.status_code == 201, response.text


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
        await _order(server, "demo_alice", "sell", "100.50", "0.5")
        await _order(server, "demo_alice", "sell", "101", "1")
        await _order(server, "demo_bob", "buy", "99", "2")
        await _order(server, "demo_bob", "buy", "100.50", "0.2")  # trades 0.2 at 100.50
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
    assert set(tickers) == {"BTC/AIT", "ETH/AIT"}
    assert len(candles) == 1
    assert candles[0][1:] == [100.5, 100.5, 100.5, 100.5, 0.2]
    assert candles[0][0] >= since - 60_000


async def _get(server: Server, path: str) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.get(path)
    assert response.status_code == 200, response.text
    return response.json()
