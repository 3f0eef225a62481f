"""The engine's newer order types through the Binance dialect: take-profits, icebergs,
quote-sized market orders and trailing stops, placed with the real ccxt and with raw
signed requests, and shown in answers, queries, exchangeInfo and the user data stream."""

from __future__ import annotations

import json
from typing import Any

import ccxt
import pytest
import trio

from tests.api.binance_client import call, client, send, signed
from tests.api.conftest import ADMIN, Server
from tests.api.rawws import raw_client
from trading_engine.core.ids import UserId
from trading_engine.serve import demo_secret


async def _ready(server: Server, user: str = "demo_alice") -> ccxt.binance:
    exchange = client(server, user)
    await call(exchange.load_markets)
    return exchange


async def _raw(server: Server, user: str, method: str, path: str, **params: Any) -> Any:
    body = signed(params, demo_secret(ADMIN, user))
    response = await send(server, method, path, body=body, key=server.keys[user])
    return response.status_code, response.json()


async def _trade_at(alice: ccxt.binance, bob: ccxt.binance, price: float, amount: float) -> None:
    """A trade at ``price``: alice's ask taken by bob."""
    await call(alice.create_order, "BTC/AIT", "limit", "sell", amount, price)
    await call(bob.create_order, "BTC/AIT", "limit", "buy", amount, price)


async def test_exchange_info_lists_every_type_and_their_filters(server: Server) -> None:
    with trio.fail_after(30):
        response = await send(server, "GET", "exchangeInfo")
        markets = await call(client(server, None).load_markets)
    assert response.status_code == 200
    symbol = next(s for s in response.json()["symbols"] if s["symbol"] == "BTCAIT")
    assert symbol["orderTypes"] == [
        "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT",
    ]  # fmt: skip
    assert (symbol["icebergAllowed"], symbol["quoteOrderQtyMarketAllowed"]) == (True, True)
    assert (symbol["allowTrailingStop"], symbol["ocoAllowed"], symbol["otoAllowed"]) == (True,) * 3
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert filters["TRAILING_DELTA"] == {
        "filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 1,
        "maxTrailingAboveDelta": 9999, "minTrailingBelowDelta": 1, "maxTrailingBelowDelta": 9999,
    }  # fmt: skip
    assert filters["ICEBERG_PARTS"]["limit"] >= 2
    assert markets["BTC/AIT"]["info"]["orderTypes"] == symbol["orderTypes"]
    # No maximum is the largest number the engine reads, never 0 (freqtrade: nothing allowed).
    assert filters["LOT_SIZE"]["maxQty"] == "99999999999999999999.99990000"
    limits = markets["BTC/AIT"]["limits"]
    assert min(limits["amount"]["max"], limits["price"]["max"], limits["cost"]["max"]) >= 1e19


async def test_take_profits_wait_then_trade_when_the_price_reaches_them(server: Server) -> None:
    with trio.fail_after(60):
        alice, bob = await _ready(server), await _ready(server, "demo_bob")
        await _trade_at(alice, bob, 100, 1)
        market = await call(
            bob.create_order, "BTC/AIT", "market", "sell", 0.5, None, {"takeProfitPrice": 105}
        )
        limit = await call(
            bob.create_order, "BTC/AIT", "limit", "buy", 0.5, 96, {"takeProfitPrice": 95}
        )
        waiting = await call(bob.fetch_order, market["id"], "BTC/AIT")
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 104)
        await _trade_at(alice, bob, 105, 0.1)  # the sell take-profit triggers
        done = await call(bob.fetch_order, market["id"], "BTC/AIT")
        still = await call(bob.fetch_order, limit["id"], "BTC/AIT")
    assert (market["info"]["type"], limit["info"]["type"]) == ("TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
    assert (waiting["info"]["stopPrice"], waiting["info"]["isWorking"]) == ("105.00000000", False)
    assert waiting["status"] == "open"
    assert (still["info"]["stopPrice"], still["info"]["price"]) == ("95.00000000", "96.00000000")
    assert still["status"] == "open"
    assert (done["status"], done["filled"], done["average"]) == ("closed", 0.5, 104)
    assert done["info"]["type"] == "TAKE_PROFIT"


async def test_an_iceberg_shows_its_slice_in_the_book_and_its_size_in_views(
    server: Server,
) -> None:
    with trio.fail_after(60):
        alice = await _ready(server)
        placed = await call(
            alice.create_order, "BTC/AIT", "limit", "sell", 1, 101, {"icebergQty": 0.2}
        )
        maker = await call(
            alice.create_order, "BTC/AIT", "limit", "sell", 1, 102,
            {"icebergAmount": 0.3, "postOnly": True},
        )  # fmt: skip
        book = await call(alice.fetch_order_book, "BTC/AIT")
        fetched = await call(alice.fetch_order, placed["id"], "BTC/AIT")
        listed = await call(alice.fetch_open_orders, "BTC/AIT")
    assert book["asks"] == [[101, 0.2], [102, 0.3]]
    assert placed["info"]["icebergQty"] == "0.20000000"
    assert (maker["info"]["type"], maker["info"]["icebergQty"]) == ("LIMIT_MAKER", "0.30000000")
    assert (fetched["amount"], fetched["info"]["icebergQty"]) == (1, "0.20000000")
    assert sorted(o["info"]["icebergQty"] for o in listed) == ["0.20000000", "0.30000000"]


async def test_a_quote_sized_market_order_spends_at_most_its_amount(server: Server) -> None:
    with trio.fail_after(60):
        alice, bob = await _ready(server), await _ready(server, "demo_bob")
        await call(alice.create_order, "BTC/AIT", "limit", "sell", 1, 100)
        before = (await server.engine.balances(UserId("demo_bob")))["AIT"]
        bought = await call(bob.create_market_buy_order_with_cost, "BTC/AIT", 50)
        after = (await server.engine.balances(UserId("demo_bob")))["AIT"]
        raw = await _raw(server, "demo_bob", "POST", "order", symbol="BTCAIT", side="SELL",
                         type="MARKET", quoteOrderQty="1000")  # fmt: skip
        fetched = await call(bob.fetch_order, bought["id"], "BTC/AIT")
    spent = before[0] - after[0]
    # 0.4995 BTC at 100 is 49.95 AIT and its taker fee (10 bps) 0.04995; one lot more,
    # 0.4996, would cost 50.009996.
    assert spent == 4_999_995_000
    assert bought["info"]["origQuoteOrderQty"] == "50.00000000"
    assert bought["info"]["cummulativeQuoteQty"] == "49.95000000"
    assert (bought["filled"], bought["status"]) == (0.4995, "closed")
    assert fetched["info"]["origQty"] == fetched["info"]["executedQty"] == "0.49950000"
    status, body = raw
    assert status == 200, body  # no bids: nothing sold, the order expired
    assert (body["status"], body["origQuoteOrderQty"], body["executedQty"]) == (
        "EXPIRED", "1000.00000000", "0.00000000",
    )  # fmt: skip


async def test_quote_quantity_is_checked_as_binance_checks_it(server: Server) -> None:
    with trio.fail_after(30):
        before = await server.engine.balances(UserId("demo_bob"))
        answers = [
            await _raw(server, "demo_bob", "POST", "order", symbol="BTCAIT", side="BUY",
                       type="MARKET", **extra)
            for extra in (
                {"quoteOrderQty": "10", "quantity": "1"},
                {},
                {"quoteOrderQty": "0.000000001"},
                {"quoteOrderQty": "0"},
            )
        ]  # fmt: skip
        limit = await _raw(server, "demo_bob", "POST", "order", symbol="BTCAIT", side="BUY",
                           type="LIMIT", timeInForce="GTC", price="90",
                           quoteOrderQty="10")  # fmt: skip
        after = await server.engine.balances(UserId("demo_bob"))
    assert [(s, b["code"]) for s, b in answers] == [
        (400, -1106), (400, -1102), (400, -1111), (400, -1013),
    ]  # fmt: skip
    assert (limit[0], limit[1]["code"]) == (400, -1106)
    assert after == before


async def test_a_trailing_stop_loss_follows_the_price_and_triggers_on_the_way_back(
    server: Server,
) -> None:
    with trio.fail_after(60):
        alice, bob = await _ready(server), await _ready(server, "demo_bob")
        await _trade_at(alice, bob, 100, 1)
        trailing = await call(
            bob.create_order, "BTC/AIT", "STOP_LOSS", "sell", 0.1, None, {"trailingDelta": 500}
        )
        await _trade_at(alice, bob, 104, 0.1)  # its stop follows: 104 less 5% is 98.80
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 97)
        await _trade_at(bob, alice, 98.81, 0.1)  # above the stop: nothing
        waiting = await call(bob.fetch_order, trailing["id"], "BTC/AIT")
        await _trade_at(bob, alice, 98.80, 0.1)
        done = await call(bob.fetch_order, trailing["id"], "BTC/AIT")
    assert trailing["info"]["type"] == "STOP_LOSS"
    assert (trailing["info"]["trailingDelta"], trailing["info"]["stopPrice"]) == (
        500, "0.00000000",
    )  # fmt: skip
    assert (waiting["status"], waiting["info"]["isWorking"]) == ("open", False)
    assert (done["status"], done["filled"], done["average"]) == ("closed", 0.1, 97)
    assert done["info"]["trailingDelta"] == 500


async def test_a_trailing_take_profit_arms_at_its_stop_price(server: Server) -> None:
    with trio.fail_after(60):
        alice, bob = await _ready(server), await _ready(server, "demo_bob")
        await _trade_at(alice, bob, 100, 1)
        placed = await call(
            bob.create_order, "BTC/AIT", "TAKE_PROFIT", "sell", 0.1, None,
            {"trailingDelta": 100, "trailingTriggerPrice": 105},
        )  # fmt: skip
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 95)
        await _trade_at(bob, alice, 96, 0.1)  # 1% below 100, but not armed: nothing
        unarmed = await call(bob.fetch_order, placed["id"], "BTC/AIT")
        await _trade_at(alice, bob, 105, 0.1)  # armed: its stop is 103.95
        await _trade_at(bob, alice, 103.95, 0.1)
        done = await call(bob.fetch_order, placed["id"], "BTC/AIT")
    assert placed["info"]["type"] == "TAKE_PROFIT"
    assert (placed["info"]["stopPrice"], placed["info"]["trailingDelta"]) == ("105.00000000", 100)
    assert unarmed["status"] == "open"
    assert (done["status"], done["filled"], done["average"]) == ("closed", 0.1, 95)


async def test_what_the_engine_lacks_is_refused_and_changes_nothing(server: Server) -> None:
    common = {"symbol": "BTCAIT", "side": "SELL", "quantity": "0.1"}
    cases = [
        {"type": "STOP_LOSS", "trailingDelta": "100", "stopPrice": "90"},
        {"type": "STOP_LOSS_LIMIT", "trailingDelta": "100", "price": "89",
         "timeInForce": "GTC"},
        {"type": "TAKE_PROFIT_LIMIT", "trailingDelta": "100", "price": "111",
         "timeInForce": "GTC", "stopPrice": "110"},
        {"type": "STOP_LOSS_LIMIT", "icebergQty": "0.05", "price": "89", "stopPrice": "90",
         "timeInForce": "GTC"},
    ]  # fmt: skip
    with trio.fail_after(30):
        alice = await _ready(server)
        before = await server.engine.user_orders(UserId("demo_alice"))
        answers = [await _raw(server, "demo_alice", "POST", "order", **common, **c) for c in cases]
        bad_delta = [
            await _raw(server, "demo_alice", "POST", "order", **common, type="STOP_LOSS",
                       trailingDelta=delta)
            for delta in ("0", "10000")
        ]  # fmt: skip
        with pytest.raises(ccxt.InvalidOrder):
            await call(alice.create_order, "BTC/AIT", "limit", "sell", 0.1, 89,
                       {"trailingDelta": 100, "stopLossOrTakeProfit": "stopLoss"})  # fmt: skip
        after = await server.engine.user_orders(UserId("demo_alice"))
    assert [(s, b["code"]) for s, b in answers] == [(400, -2010)] * len(cases)
    assert [(s, b) for s, b in bad_delta] == [
        (400, {"code": -1013, "msg": "Filter failure: TRAILING_DELTA"})
    ] * 2
    assert after == before


async def test_the_user_stream_reports_the_new_fields(server: Server) -> None:
    created = await send(server, "POST", "userDataStream", key=server.keys["demo_alice"])
    assert created.status_code == 200, created.text
    url = server.url.replace("http://", "ws://") + f"/ws/{created.json()['listenKey']}"
    with trio.fail_after(30):
        async with raw_client(url) as ws:
            await _raw(server, "demo_alice", "POST", "order", symbol="BTCAIT", side="SELL",
                       type="LIMIT", timeInForce="GTC", quantity="1", price="101",
                       icebergQty="0.25")  # fmt: skip
            await _raw(server, "demo_alice", "POST", "order", symbol="BTCAIT", side="SELL",
                       type="STOP_LOSS", quantity="0.5", trailingDelta="250")  # fmt: skip
            await _raw(server, "demo_bob", "POST", "order", symbol="BTCAIT", side="SELL",
                       type="LIMIT", timeInForce="GTC", quantity="1", price="100")  # fmt: skip
            await _raw(server, "demo_alice", "POST", "order", symbol="BTCAIT", side="BUY",
                       type="MARKET", quoteOrderQty="50")  # fmt: skip
            reports: list[dict[str, Any]] = []
            while len(reports) < 5:
                event = json.loads(await ws.text())
                if event["e"] == "executionReport":
                    reports.append(event)
    iceberg, trailing, new, fill, end = reports
    assert (iceberg["o"], iceberg["F"], iceberg["X"]) == ("LIMIT", "0.25000000", "NEW")
    assert "d" not in iceberg
    assert (trailing["o"], trailing["d"], trailing["P"]) == ("STOP_LOSS", 250, "0.00000000")
    assert (new["o"], new["Q"], new["X"]) == ("MARKET", "50.00000000", "NEW")
    assert (fill["x"], fill["l"], fill["Z"]) == ("TRADE", "0.49950000", "49.95000000")
    assert (end["x"], end["X"], end["z"]) == ("EXPIRED", "FILLED", "0.49950000")
