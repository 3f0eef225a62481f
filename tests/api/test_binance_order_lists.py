"""Order lists through the Binance dialect: ``orderList/oco``, ``/oto``, ``/otoco``, their
queries and cancel, with raw signed requests and ccxt's implicit methods, over real HTTP
with the real engine and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import ccxt
import trio

from tests.api.binance_client import call, client, send, signed
from tests.api.conftest import ADMIN, Server
from tests.api.rawws import raw_client
from trading_engine.core.ids import UserId
from trading_engine.serve import demo_secret


async def _raw(server: Server, user: str, method: str, path: str, **params: Any) -> Any:
    query = signed(params, demo_secret(ADMIN, user))
    if method == "GET":
        response = await send(server, method, path, query=query, key=server.keys[user])
    else:
        response = await send(server, method, path, body=query, key=server.keys[user])
    return response.status_code, response.json(), response.headers


async def _last_trade_at_100(server: Server) -> None:
    for side in ("SELL", "BUY"):
        status, body, _ = await _raw(
            server, "demo_bob", "POST", "order", symbol="BTCAIT", side=side, type="LIMIT",
            timeInForce="GTC", quantity="0.1", price="100", selfTradePreventionMode="NONE",
        )  # fmt: skip
        assert status == 200, body


_SELL_OCO = {
    "symbol": "BTCAIT", "side": "SELL", "quantity": "1", "aboveType": "LIMIT_MAKER",
    "abovePrice": "110", "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "90",
    "belowPrice": "89", "belowTimeInForce": "GTC", "aboveClientOrderId": "tp-1",
    "belowClientOrderId": "sl-1", "listClientOrderId": "my-list",
}  # fmt: skip


async def test_an_oco_is_placed_shown_and_a_filled_leg_cancels_the_other(server: Server) -> None:
    created = await send(server, "POST", "userDataStream", key=server.keys["demo_alice"])
    url = server.url.replace("http://", "ws://") + f"/ws/{created.json()['listenKey']}"
    with trio.fail_after(60):
        async with raw_client(url) as ws:
            await _last_trade_at_100(server)
            status, placed, _ = await _raw(
                server, "demo_alice", "POST", "orderList/oco", **_SELL_OCO
            )
            assert status == 200, placed
            list_id = placed["orderListId"]
            _, by_id, _ = await _raw(server, "demo_alice", "GET", "orderList", orderListId=list_id)
            _, by_client, _ = await _raw(server, "demo_alice", "GET", "orderList",
                                         origClientOrderId="my-list")  # fmt: skip
            by_number = await _raw(server, "demo_alice", "GET", "orderList",
                                   origClientOrderId=str(list_id))  # fmt: skip
            resent = await _raw(server, "demo_alice", "POST", "orderList/oco", **_SELL_OCO)
            _, opened, _ = await _raw(server, "demo_alice", "GET", "openOrderList")
            _, orders, _ = await _raw(server, "demo_alice", "GET", "openOrders", symbol="BTCAIT")
            # bob buys at 110: the take-profit leg trades, the stop-loss leg expires
            await _raw(server, "demo_bob", "POST", "order", symbol="BTCAIT", side="BUY",
                       type="LIMIT", timeInForce="GTC", quantity="0.4", price="110")  # fmt: skip
            _, after, _ = await _raw(server, "demo_alice", "GET", "orderList", orderListId=list_id)
            _, still_open, _ = await _raw(server, "demo_alice", "GET", "openOrderList")
            _, every, _ = await _raw(server, "demo_alice", "GET", "allOrderList")
            _, stop, _ = await _raw(server, "demo_alice", "GET", "order", symbol="BTCAIT",
                                    origClientOrderId="sl-1")  # fmt: skip
            ended: dict[str, Any] = {}
            while not ended:
                event = json.loads(await ws.text())
                if event["e"] == "executionReport" and event["c"] == "sl-1" and event["x"] != "NEW":
                    ended = event
    assert (placed["contingencyType"], placed["listStatusType"]) == ("OCO", "EXEC_STARTED")
    assert (placed["listOrderStatus"], placed["symbol"]) == ("EXECUTING", "BTCAIT")
    assert placed["listClientOrderId"] == "my-list"
    assert by_number[:2] == (400, {"code": -2013, "msg": "Order does not exist."})
    assert resent[:2] == (400, {"code": -2010, "msg": "Duplicate order sent."})
    tp, sl = placed["orderReports"]
    assert (tp["type"], tp["price"], tp["clientOrderId"]) == ("LIMIT_MAKER", "110.00000000", "tp-1")
    assert (sl["type"], sl["stopPrice"], sl["price"]) == (
        "STOP_LOSS_LIMIT", "90.00000000", "89.00000000",
    )  # fmt: skip
    assert {r["orderListId"] for r in placed["orderReports"]} == {list_id}
    assert [o["clientOrderId"] for o in placed["orders"]] == ["tp-1", "sl-1"]
    assert by_id == by_client
    assert "orderReports" not in by_id
    assert by_id["orders"] == placed["orders"]
    assert [x["orderListId"] for x in opened] == [list_id]
    assert sorted(o["orderListId"] for o in orders) == [list_id, list_id]
    assert (after["listStatusType"], after["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert still_open == []
    assert [x["orderListId"] for x in every] == [list_id]
    # the other leg ends as Binance's does: EXPIRED, for the OCO's trigger
    assert (stop["status"], stop["orderListId"]) == ("EXPIRED", list_id)
    assert (ended["x"], ended["X"], ended["eR"], ended["g"]) == (
        "EXPIRED", "EXPIRED", "OCO_TRIGGER", list_id,
    )  # fmt: skip


async def test_an_oto_and_an_otoco_place_their_pending_orders_once_the_working_one_fills(
    server: Server,
) -> None:
    with trio.fail_after(60):
        await _last_trade_at_100(server)
        status, oto, _ = await _raw(
            server, "demo_alice", "POST", "orderList/oto", symbol="BTCAIT",
            workingType="LIMIT", workingSide="BUY", workingPrice="99", workingQuantity="1",
            workingTimeInForce="GTC", pendingType="LIMIT", pendingSide="SELL",
            pendingPrice="108", pendingQuantity="1", pendingTimeInForce="GTC",
            newOrderRespType="RESULT",
        )  # fmt: skip
        assert status == 200, oto
        status, otoco, _ = await _raw(
            server, "demo_alice", "POST", "orderList/otoco", symbol="BTCAIT",
            workingType="LIMIT_MAKER", workingSide="BUY", workingPrice="98",
            workingQuantity="1", pendingSide="SELL", pendingQuantity="1",
            pendingAboveType="LIMIT_MAKER", pendingAbovePrice="105",
            pendingBelowType="STOP_LOSS", pendingBelowStopPrice="92",
        )  # fmt: skip
        assert status == 200, otoco
        await _raw(server, "demo_bob", "POST", "order", symbol="BTCAIT", side="SELL",
                   type="MARKET", quantity="2")  # fmt: skip
        _, oto_after, _ = await _raw(server, "demo_alice", "GET", "orderList",
                                     orderListId=oto["orderListId"])  # fmt: skip
        _, otoco_after, _ = await _raw(server, "demo_alice", "GET", "orderList",
                                       orderListId=otoco["orderListId"])  # fmt: skip
        _, orders, _ = await _raw(server, "demo_alice", "GET", "openOrders", symbol="BTCAIT")
    assert (oto["contingencyType"], otoco["contingencyType"]) == ("OTO", "OTO")
    working, pending = oto["orderReports"]
    assert (working["status"], working["type"], pending["status"]) == (
        "NEW",
        "LIMIT",
        "PENDING_NEW",
    )
    assert "fills" not in working
    assert [r["status"] for r in otoco["orderReports"]] == ["NEW", "PENDING_NEW", "PENDING_NEW"]
    assert [r["type"] for r in otoco["orderReports"]] == ["LIMIT_MAKER", "LIMIT_MAKER", "STOP_LOSS"]
    assert oto_after["listStatusType"] == "ALL_DONE"
    assert otoco_after["listStatusType"] == "EXEC_STARTED"  # its pair is working now
    by_list = sorted((o["orderListId"], o["type"], o["price"]) for o in orders)
    assert by_list == sorted([
        (oto["orderListId"], "LIMIT", "108.00000000"),
        (otoco["orderListId"], "LIMIT_MAKER", "105.00000000"),
        (otoco["orderListId"], "STOP_LOSS", "0.00000000"),
    ])  # fmt: skip


async def test_cancelling_a_list_cancels_its_members(server: Server) -> None:
    with trio.fail_after(60):
        await _last_trade_at_100(server)
        _, placed, _ = await _raw(server, "demo_alice", "POST", "orderList/oco", **_SELL_OCO)
        list_id = placed["orderListId"]
        status, cancelled, _ = await _raw(server, "demo_alice", "DELETE", "orderList",
                                          symbol="BTCAIT", orderListId=list_id)  # fmt: skip
        again = await _raw(server, "demo_alice", "DELETE", "orderList", symbol="BTCAIT",
                           listClientOrderId="my-list")  # fmt: skip
        unnamed = {k: v for k, v in _SELL_OCO.items() if not k.endswith("ClientOrderId")}
        _, plain, _ = await _raw(server, "demo_alice", "POST", "orderList/oco", **unnamed)
        by_number = await _raw(server, "demo_alice", "DELETE", "orderList", symbol="BTCAIT",
                               listClientOrderId=str(plain["orderListId"]))  # fmt: skip
        other = await _raw(server, "demo_bob", "DELETE", "orderList", symbol="BTCAIT",
                           orderListId=list_id)  # fmt: skip
        _, orders, _ = await _raw(server, "demo_alice", "GET", "openOrders", symbol="BTCAIT")
    assert status == 200, cancelled
    assert (cancelled["listStatusType"], cancelled["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [r["status"] for r in cancelled["orderReports"]] == ["CANCELED", "CANCELED"]
    assert [r["origClientOrderId"] for r in cancelled["orderReports"]] == ["tp-1", "sl-1"]
    assert again[:2] == (400, {"code": -2011, "msg": "Unknown order sent."})
    assert plain["listClientOrderId"] == str(plain["orderListId"])
    assert by_number[0] == 200, by_number
    assert other[:2] == (400, {"code": -2011, "msg": "Unknown order sent."})
    assert orders == []


async def test_bad_lists_get_binance_errors_and_change_nothing(server: Server) -> None:
    cases = [
        ({**_SELL_OCO, "aboveType": "STOP_LOSS", "aboveStopPrice": "110"},
         (-1197, "A stop loss order in a sell OCO must be below.")),
        ({**_SELL_OCO, "side": "BUY"}, (-1165, "A limit order in a buy OCO must be below.")),
        ({**_SELL_OCO, "aboveType": "LIMIT"}, (-1158, "Order type not supported in OCO.")),
        ({**_SELL_OCO, "aboveType": "NOPE"}, (-1116, "Invalid orderType.")),
        ({k: v for k, v in _SELL_OCO.items() if k != "abovePrice"},
         (-1102, "Mandatory parameter 'abovePrice' was not sent, was empty/null, or malformed.")),
        ({**_SELL_OCO, "belowStopPrice": "105"},
         (-2010, "The relationship of the prices for the orders is not correct.")),
        ({**_SELL_OCO, "belowStopPrice": "100.001"}, (-1013, "Filter failure: PRICE_FILTER")),
        ({**_SELL_OCO, "quantity": "100000"},
         (-2010, "Account has insufficient balance for requested action.")),
        ({**_SELL_OCO, "abovePegPriceType": "PRIMARY_PEG"},
         (-1104, "Not all sent parameters were read; read 14 parameter(s) but was sent 15.")),
    ]  # fmt: skip
    with trio.fail_after(60):
        await _last_trade_at_100(server)
        before = await server.engine.balances(UserId("demo_alice"))
        answers = [await _raw(server, "demo_alice", "POST", "orderList/oco", **params)
                   for params, _ in cases]  # fmt: skip
        oto = await _raw(
            server, "demo_alice", "POST", "orderList/oto", symbol="BTCAIT",
            workingType="MARKET", workingSide="BUY", workingQuantity="1", pendingType="LIMIT",
            pendingSide="SELL", pendingPrice="120", pendingQuantity="1", pendingTimeInForce="GTC",
        )  # fmt: skip
        missing = await _raw(server, "demo_alice", "GET", "orderList", orderListId=999999)
        after = await server.engine.balances(UserId("demo_alice"))
        _, orders, _ = await _raw(server, "demo_alice", "GET", "allOrders", symbol="BTCAIT")
    assert [(status, (body.get("code"), body.get("msg"))) for status, body, _ in answers] == [
        (400, expected) for _, expected in cases
    ]
    assert oto[:2] == (400, {"code": -1116, "msg": "Invalid orderType."})
    assert missing[:2] == (400, {"code": -2013, "msg": "Order does not exist."})
    assert after == before
    assert orders == []


async def test_ccxt_places_and_cancels_lists_and_the_stream_reports_them(server: Server) -> None:
    created = await send(server, "POST", "userDataStream", key=server.keys["demo_alice"])
    url = server.url.replace("http://", "ws://") + f"/ws/{created.json()['listenKey']}"
    alice: ccxt.binance = client(server, "demo_alice")
    with trio.fail_after(60):
        await _last_trade_at_100(server)
        await call(alice.load_markets)
        async with raw_client(url) as ws:
            placed = await call(alice.private_post_orderlist_oco, {
                "symbol": "BTCAIT", "side": "SELL", "quantity": "1", "aboveType": "LIMIT_MAKER",
                "abovePrice": "110", "belowType": "STOP_LOSS", "belowStopPrice": "90",
            })  # fmt: skip
            fetched = await call(alice.fetch_open_orders, "BTC/AIT")
            shown = await call(alice.private_get_orderlist, {"orderListId": placed["orderListId"]})
            cancelled = await call(alice.private_delete_orderlist, {
                "symbol": "BTCAIT", "orderListId": placed["orderListId"],
            })  # fmt: skip
            events: list[dict[str, Any]] = []
            while sum(e["e"] == "listStatus" for e in events) < 2:
                event = json.loads(await ws.text())
                if event["e"] in ("listStatus", "executionReport"):
                    events.append(event)
    list_id = placed["orderListId"]
    assert all(r["clientOrderId"].startswith("x-") for r in placed["orderReports"])
    assert [o["info"]["orderListId"] for o in fetched] == [list_id, list_id]
    assert shown["listStatusType"] == "EXEC_STARTED"
    assert cancelled["listStatusType"] == "ALL_DONE"
    reports = [e for e in events if e["e"] == "executionReport"]
    assert {r["g"] for r in reports} == {list_id}
    statuses = [(e["g"], e["c"], e["l"], e["L"]) for e in events if e["e"] == "listStatus"]
    assert statuses == [
        (list_id, "OCO", "EXEC_STARTED", "EXECUTING"), (list_id, "OCO", "ALL_DONE", "ALL_DONE"),
    ]  # fmt: skip
    first = next(e for e in events if e["e"] == "listStatus")
    assert [o["i"] for o in first["O"]] == [r["orderId"] for r in placed["orderReports"]]
