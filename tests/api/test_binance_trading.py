"""Trading through the Binance dialect with the real ccxt: orders, balances, errors."""

from __future__ import annotations

from typing import Any

import ccxt
import pytest
import trio

from tests.api.binance_client import call, client, send, signed
from tests.api.conftest import ADMIN, Server
from trading_engine.core.ids import UserId
from trading_engine.serve import demo_secret


async def _ready(server: Server, user: str = "demo_alice") -> ccxt.binance:
    exchange = client(server, user)
    await call(exchange.load_markets)
    return exchange


async def _balances(server: Server, user: str) -> dict[str, tuple[int, int]]:
    return await server.engine.balances(UserId(user))


async def test_fetch_balance_is_available_and_held(server: Server) -> None:
    with trio.fail_after(30):
        alice = await _ready(server)
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 100)
        balance = await call(alice.fetch_balance)
    assert balance["AIT"]["used"] == pytest.approx(100.1)  # the price and the taker fee
    assert balance["AIT"]["free"] == pytest.approx(1_000_000 - 100.1)
    assert balance["info"]["balances"][0] == {
        "asset": "AIT",
        "free": "999899.90000000",
        "locked": "100.10000000",
    }
    assert balance["BTC"]["free"] == 100


async def test_every_order_type_is_placed_fetched_and_listed(server: Server) -> None:
    with trio.fail_after(60):
        alice, bob = await _ready(server), await _ready(server, "demo_bob")
        limit = await call(alice.create_order, "BTC/AIT", "limit", "sell", 0.5, 101)
        maker = await call(
            alice.create_order, "BTC/AIT", "limit", "sell", 0.1, 102, {"postOnly": True}
        )
        market = await call(bob.create_order, "BTC/AIT", "market", "buy", 0.2)
        stop = await call(
            bob.create_order, "BTC/AIT", "market", "sell", 0.1, None, {"stopPrice": 90}
        )
        stop_limit = await call(
            bob.create_order, "BTC/AIT", "limit", "sell", 0.1, 89, {"stopPrice": 90}
        )
        fetched = await call(alice.fetch_order, limit["id"], "BTC/AIT")
        open_orders = await call(alice.fetch_open_orders, "BTC/AIT")
        bob_trades = await call(bob.fetch_my_trades, "BTC/AIT")
        closed = await call(bob.fetch_closed_orders, "BTC/AIT")
    assert limit["status"] == "open"
    assert maker["info"]["type"] == "LIMIT_MAKER"
    assert market["status"] == "closed"
    assert market["filled"] == 0.2
    assert market["average"] == 101
    assert [f["price"] for f in market["trades"]] == [101]
    assert stop["info"]["type"] == "STOP_LOSS"
    assert stop_limit["info"]["type"] == "STOP_LOSS_LIMIT"
    assert fetched["filled"] == 0.2
    assert fetched["remaining"] == pytest.approx(0.3)
    assert sorted(o["id"] for o in open_orders) == sorted([limit["id"], maker["id"]])
    assert [(t["side"], t["price"], t["amount"], t["order"]) for t in bob_trades] == [
        ("buy", 101, 0.2, market["id"])
    ]
    assert [o["id"] for o in closed] == [market["id"]]


async def test_cancel_cancel_all_and_edit_order(server: Server) -> None:
    with trio.fail_after(60):
        alice = await _ready(server)
        first = await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 90)
        second = await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 91)
        cancelled = await call(alice.cancel_order, first["id"], "BTC/AIT")
        edited = await call(alice.edit_order, second["id"], "BTC/AIT", "limit", "buy", 2, 92)
        third = await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 93)
        every = await call(alice.cancel_all_orders, "BTC/AIT")
        left = await call(alice.fetch_open_orders, "BTC/AIT")
        gone = await call(alice.fetch_order, second["id"], "BTC/AIT")
    assert cancelled["status"] == "canceled"
    assert edited["price"] == 92
    assert edited["amount"] == 2
    assert gone["status"] == "canceled"
    assert sorted(o["id"] for o in every) == sorted([edited["id"], third["id"]])
    assert left == []
    assert (await _balances(server, "demo_alice"))["AIT"][1] == 0


async def test_errors_reach_ccxt_as_its_exception_classes(server: Server) -> None:
    with trio.fail_after(60):
        alice = await _ready(server)
        before = await _balances(server, "demo_alice")
        with pytest.raises(ccxt.InsufficientFunds):
            await call(alice.create_order, "BTC/AIT", "limit", "buy", 100_000, 100)
        bob = await _ready(server, "demo_bob")
        await call(bob.create_order, "BTC/AIT", "limit", "sell", 1, 100)
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 100)  # the reference
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 99)
        before = await _balances(server, "demo_alice")
        with pytest.raises(ccxt.InvalidOrder, match="PERCENT_PRICE_BY_SIDE"):
            await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 200)
        bob_before = await _balances(server, "demo_bob")
        with pytest.raises(ccxt.OrderImmediatelyFillable, match="match and take"):
            await call(bob.create_order, "BTC/AIT", "limit", "sell", 1, 99, {"postOnly": True})
        with pytest.raises(ccxt.OrderImmediatelyFillable, match="trigger immediately"):
            await call(bob.create_order, "BTC/AIT", "market", "sell", 1, None, {"stopPrice": 105})
        assert await _balances(server, "demo_bob") == bob_before
        with pytest.raises(ccxt.OrderNotFound):
            await call(alice.fetch_order, "999999", "BTC/AIT")
        with pytest.raises(ccxt.OrderNotFound):
            await call(alice.cancel_order, "999999", "BTC/AIT")
        with pytest.raises(ccxt.BadSymbol):
            await call(alice.fetch_order_book, "NOPE/AIT", None, {"symbol": "NOPEAIT"})
        wrong = client(server, "demo_alice", secret="0" * 64)
        await call(wrong.load_markets)
        with pytest.raises(ccxt.AuthenticationError):
            await call(wrong.create_order, "BTC/AIT", "limit", "buy", 1, 90)
        unknown = client(server, "demo_alice", apiKey="te_unknown")
        await call(unknown.load_markets)
        with pytest.raises(ccxt.AuthenticationError):
            await call(unknown.fetch_balance)
        late = await _ready(server)
        late.nonce = lambda: late.milliseconds() - 10_000
        with pytest.raises(ccxt.InvalidNonce):
            await call(late.create_order, "BTC/AIT", "limit", "buy", 1, 90)
        open_now = await call(alice.fetch_open_orders, "BTC/AIT")
    assert [o["price"] for o in open_now] == [99]
    assert await _balances(server, "demo_alice") == before


async def test_fok_ioc_test_orders_stp_and_commissions(server: Server) -> None:
    with trio.fail_after(60):
        alice, bob = await _ready(server), await _ready(server, "demo_bob")
        await call(alice.create_order, "BTC/AIT", "limit", "sell", 0.5, 101)
        fok = await call(
            bob.create_order, "BTC/AIT", "limit", "buy", 1, 101, {"timeInForce": "FOK"}
        )
        ioc = await call(
            bob.create_order, "BTC/AIT", "limit", "buy", 1, 101, {"timeInForce": "IOC"}
        )
        before = await _balances(server, "demo_bob")
        tested = await call(
            bob.privatePostOrderTest,
            {"symbol": "BTCAIT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "1", "price": "100", "computeCommissionRates": "true"},
        )  # fmt: skip
        with pytest.raises(ccxt.InsufficientFunds):
            await call(
                bob.privatePostOrderTest,
                {"symbol": "BTCAIT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": "100000", "price": "100"},
            )  # fmt: skip
        after = await _balances(server, "demo_bob")
        await call(alice.create_order, "BTC/AIT", "limit", "sell", 0.5, 101)
        stp = await call(
            alice.create_order, "BTC/AIT", "limit", "buy", 0.5, 101,
            {"selfTradePreventionMode": "EXPIRE_TAKER"},
        )  # fmt: skip
        commission = await call(alice.privateGetAccountCommission, {"symbol": "BTCAIT"})
        limits = await call(alice.privateGetRateLimitOrder)
    assert (fok["status"], fok["filled"]) == ("expired", 0)
    assert ioc["info"]["status"] == "EXPIRED"
    assert ioc["filled"] == 0.5
    assert tested["standardCommissionForOrder"] == {"maker": "-0.00020000", "taker": "0.00100000"}
    assert after == before
    assert stp["info"]["status"] == "EXPIRED_IN_MATCH"
    assert stp["info"]["selfTradePreventionMode"] == "EXPIRE_TAKER"
    assert commission["standardCommission"]["taker"] == "0.00100000"
    assert limits == []


async def test_too_many_decimals_is_1111_and_a_market_order_on_an_empty_book_1112(
    server: Server,
) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    limit = {"symbol": "BTCAIT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "1", "price": "90"}  # fmt: skip
    too_precise = "Parameter '{}' has too much precision."
    cases = [
        ({**limit, "price": "90.000000001"}, -1111, too_precise.format("price")),
        ({**limit, "quantity": "1.000000001"}, -1111, too_precise.format("quantity")),
        ({**limit, "price": "90.001"}, -1013, "Filter failure: PRICE_FILTER"),  # within 8 places
        ({**limit, "price": "90.0000000000"}, None, None),  # trailing zeros do not count
        ({**limit, "type": "STOP_LOSS_LIMIT", "stopPrice": "95.123456789"}, -1111,
         too_precise.format("stopPrice")),
        ({"symbol": "ETHAIT", "side": "BUY", "type": "MARKET", "quantity": "1"}, -1112,
         "No orders on book for symbol."),
        ({"symbol": "ETHAIT", "side": "SELL", "type": "MARKET", "quoteOrderQty": "10"}, -1112,
         "No orders on book for symbol."),
    ]  # fmt: skip
    with trio.fail_after(30):
        before = await _balances(server, "demo_alice")
        for params, code, msg in cases:
            response = await send(server, "POST", "order/test", body=signed(params, secret),
                                  key=key)  # fmt: skip
            assert response.json() == ({} if code is None else {"code": code, "msg": msg}), params
        alice = await _ready(server)
        with pytest.raises(ccxt.BadRequest, match="-1111"):
            await call(alice.private_post_order, {**limit, "quantity": "1.000000001"})
        with pytest.raises(ccxt.OperationFailed, match="-1112"):
            await call(alice.create_order, "ETH/AIT", "market", "buy", 1)
    assert await _balances(server, "demo_alice") == before
    assert await server.engine.user_orders(UserId("demo_alice")) == []


async def test_a_cancel_names_itself_by_new_client_order_id(server: Server) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    with trio.fail_after(30):
        alice = await _ready(server)
        first = await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 90,
                           {"clientOrderId": "mine-1"})  # fmt: skip
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 91,
                   {"clientOrderId": "mine-2"})  # fmt: skip
        cancel = {"symbol": "BTCAIT", "orderId": first["id"], "newClientOrderId": "undo-1"}
        named = await send(server, "DELETE", "order", key=key, query=signed(cancel, secret))
        unnamed = await send(server, "DELETE", "order", key=key, query=signed(
            {"symbol": "BTCAIT", "origClientOrderId": "mine-2"}, secret))  # fmt: skip
        test = {"symbol": "BTCAIT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "1", "price": "90", "computeCommissionRates": "true"}  # fmt: skip
        tested = await send(server, "POST", "order/test", key=key, body=signed(test, secret))
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 92,
                   {"clientOrderId": "mine-3"})  # fmt: skip
        replace = {
            **test,
            "cancelReplaceMode": "STOP_ON_FAILURE",
            "newClientOrderId": "mine-4",
            "cancelOrigClientOrderId": "mine-3",
            "cancelNewClientOrderId": "undo-3",
        }
        del replace["computeCommissionRates"]
        replaced = await send(server, "POST", "order/cancelReplace", key=key,
                              body=signed(replace, secret))  # fmt: skip
    assert (named.json()["origClientOrderId"], named.json()["clientOrderId"]) == (
        "mine-1", "undo-1",
    )  # fmt: skip
    assert unnamed.json()["origClientOrderId"] == "mine-2"
    assert unnamed.json()["clientOrderId"] not in ("mine-2", "undo-1")
    assert unnamed.json()["status"] == "CANCELED"
    assert set(tested.json()) == {"standardCommissionForOrder", "specialCommissionForOrder",
                                  "taxCommissionForOrder", "discount"}  # fmt: skip
    cancel_answer = replaced.json()["cancelResponse"]
    assert (cancel_answer["origClientOrderId"], cancel_answer["clientOrderId"]) == (
        "mine-3", "undo-3",
    )  # fmt: skip
    assert replaced.json()["newOrderResponse"]["clientOrderId"] == "mine-4"


async def test_cancel_replace_answers_each_outcome_as_binance(server: Server) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    new = {"symbol": "BTCAIT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
           "quantity": "1", "price": "89"}  # fmt: skip
    too_big = {**new, "quantity": "100000"}  # more than alice's AIT

    async def replace(mode: str, cancel_id: object, order: dict[str, str]) -> tuple[int, Any]:
        params = {**order, "cancelReplaceMode": mode, "cancelOrderId": cancel_id}
        response = await send(server, "POST", "order/cancelReplace", key=key,
                              body=signed(params, secret))  # fmt: skip
        return response.status_code, response.json()

    with trio.fail_after(30):
        alice = await _ready(server)
        first = await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 90)
        before = await _balances(server, "demo_alice")
        stopped = await replace("STOP_ON_FAILURE", 999_999, new)
        both_failed = await replace("ALLOW_FAILURE", 999_999, too_big)
        unchanged = await _balances(server, "demo_alice")
        placed_anyway = await replace("ALLOW_FAILURE", 999_999, new)
        cancelled_only = await replace("STOP_ON_FAILURE", first["id"], too_big)
        open_orders = await call(alice.fetch_open_orders, "BTC/AIT")
        # ccxt maps -2022 only for Binance's own hosts (BadResponse); elsewhere its base class
        with pytest.raises(ccxt.ExchangeError, match="-2022"):
            await call(alice.edit_order, first["id"], "BTC/AIT", "limit", "buy", 1, 85)
    assert unchanged == before
    status, body = stopped
    assert (status, body["code"], body["msg"]) == (400, -2022, "Order cancel-replace failed.")
    assert body["data"] == {
        "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
        "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
        "newOrderResponse": None,
    }  # fmt: skip
    status, body = both_failed
    assert (status, body["code"]) == (400, -2022)
    assert body["data"]["newOrderResult"] == "FAILURE"
    assert body["data"]["newOrderResponse"]["code"] == -2010
    status, body = placed_anyway
    assert (status, body["code"], body["msg"]) == (
        409, -2021, "Order cancel-replace partially failed.",
    )  # fmt: skip
    assert (body["data"]["cancelResult"], body["data"]["newOrderResult"]) == ("FAILURE", "SUCCESS")
    assert body["data"]["newOrderResponse"]["status"] == "NEW"
    status, body = cancelled_only
    assert (status, body["code"]) == (409, -2021)
    assert (body["data"]["cancelResult"], body["data"]["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert body["data"]["cancelResponse"]["status"] == "CANCELED"
    assert body["data"]["newOrderResponse"] == {
        "code": -2010, "msg": "Account has insufficient balance for requested action.",
    }  # fmt: skip
    assert [o["price"] for o in open_orders] == [89]


async def test_omit_zero_balances_leaves_out_an_asset_spent_to_nothing(server: Server) -> None:
    async with server.client(ADMIN) as admin:
        carol = (await admin.post("/admin/users", json={"user_id": "carol"})).json()
        deposit = {"user_id": "carol", "asset": "BTC", "amount": "1"}
        assert (await admin.post("/admin/deposits", json=deposit)).status_code in (200, 201)
    with trio.fail_after(30):
        alice = await _ready(server)
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 100)
        seller = client(server, None, apiKey=carol["api_key"], secret=carol["api_secret"])
        await call(seller.load_markets)
        await call(seller.create_order, "BTC/AIT", "limit", "sell", 1, 100)
        every = await call(seller.private_get_account)
        some = await call(seller.private_get_account, {"omitZeroBalances": "true"})
    assert {b["asset"]: b["free"] for b in every["balances"]} == {
        "AIT": "99.90000000", "BTC": "0.00000000",
    }  # fmt: skip
    assert [b["asset"] for b in some["balances"]] == ["AIT"]


async def test_new_order_resp_type_shapes_the_answer(server: Server) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    order = {"symbol": "BTCAIT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.1", "price": "90"}  # fmt: skip
    with trio.fail_after(30):
        answers = {
            kind: (await send(server, "POST", "order", key=key, body=signed(
                {**order, "newOrderRespType": kind}, secret))).json()
            for kind in ("ACK", "RESULT", "FULL")
        }  # fmt: skip
        stop = {"symbol": "BTCAIT", "side": "SELL", "type": "STOP_LOSS", "quantity": "0.1",
                "stopPrice": "80"}  # fmt: skip
        default = (await send(server, "POST", "order", key=key, body=signed(stop, secret))).json()
    assert set(answers["ACK"]) == {
        "symbol", "orderId", "orderListId", "clientOrderId", "transactTime",
    }  # fmt: skip
    assert answers["RESULT"]["status"] == "NEW"
    assert "fills" not in answers["RESULT"]
    assert answers["FULL"]["fills"] == []
    assert set(answers["FULL"]) - set(answers["RESULT"]) == {"fills"}
    assert set(default) == set(answers["ACK"])  # a stop's answer is ACK unless asked


@pytest.mark.parametrize(
    ("mode", "taker", "maker", "traded"),
    [
        ("NONE", "FILLED", "FILLED", True),
        ("EXPIRE_TAKER", "EXPIRED_IN_MATCH", "NEW", False),
        ("EXPIRE_MAKER", "NEW", "EXPIRED_IN_MATCH", False),
        ("EXPIRE_BOTH", "EXPIRED_IN_MATCH", "EXPIRED_IN_MATCH", False),
        ("DECREMENT", "EXPIRED_IN_MATCH", "EXPIRED_IN_MATCH", False),
    ],
)
async def test_each_self_trade_prevention_mode_acts_as_binances(
    server: Server, mode: str, taker: str, maker: str, traded: bool
) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    order = {"symbol": "BTCAIT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.5", "price": "101", "newOrderRespType": "RESULT"}  # fmt: skip
    with trio.fail_after(30):
        resting = await send(server, "POST", "order", key=key, body=signed(order, secret))
        taking = await send(server, "POST", "order", key=key, body=signed(
            {**order, "side": "BUY", "selfTradePreventionMode": mode}, secret))  # fmt: skip
        query = {"symbol": "BTCAIT", "orderId": resting.json()["orderId"]}
        after = await send(server, "GET", "order", key=key, query=signed(query, secret))
        trades = await send(server, "GET", "myTrades", key=key,
                            query=signed({"symbol": "BTCAIT"}, secret))  # fmt: skip
    assert (taking.json()["status"], after.json()["status"]) == (taker, maker), taking.text
    assert taking.json()["selfTradePreventionMode"] == mode
    assert (len(trades.json()) == 2) is traded  # a self-trade is both sides' fill
