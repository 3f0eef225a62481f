"""The user data stream's ``executionReport`` for each way an order ends, against what
``GET order`` shows of it."""

from __future__ import annotations

import json
from typing import Any

import trio

from tests.api.binance_client import send, signed_request
from tests.api.conftest import Server
from tests.api.rawws import raw_client


async def _ask(server: Server, user: str, method: str, path: str, **params: Any) -> Any:
    response = await signed_request(server, user, method, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def _order(server: Server, user: str, **params: Any) -> Any:
    return await _ask(server, user, "POST", "order", symbol="BTCAIT", **params)


async def test_each_way_an_order_ends_is_reported_with_the_status_get_order_shows(
    server: Server,
) -> None:
    created = await send(server, "POST", "userDataStream", key=server.keys["demo_alice"])
    url = server.url.replace("http://", "ws://") + f"/ws/{created.json()['listenKey']}"
    limit = {"type": "LIMIT", "timeInForce": "GTC"}
    with trio.fail_after(30):
        async with raw_client(url) as ws:
            await _order(server, "demo_bob", side="SELL", quantity="0.5", price="100.5", **limit)
            ioc = await _order(server, "demo_alice", side="BUY", type="LIMIT", quantity="0.8",
                               price="100.5", timeInForce="IOC")  # fmt: skip
            fok = await _order(server, "demo_alice", side="BUY", type="LIMIT", quantity="1",
                               price="100.5", timeInForce="FOK")  # fmt: skip
            market = await _order(server, "demo_alice", side="BUY", type="MARKET", quantity="0.1")
            resting = await _order(server, "demo_alice", side="SELL", quantity="0.1",
                                   price="101", newClientOrderId="mine-1", **limit)  # fmt: skip
            prevented = await _order(server, "demo_alice", side="BUY", quantity="0.1",
                                     price="101", selfTradePreventionMode="EXPIRE_TAKER",
                                     **limit)  # fmt: skip
            await _ask(server, "demo_alice", "DELETE", "order", symbol="BTCAIT",
                       origClientOrderId="mine-1")  # fmt: skip
            ids = [o["orderId"] for o in (ioc, fok, market, resting, prevented)]
            last: dict[int, dict[str, Any]] = {}
            while len(last) < len(ids) or last[resting["orderId"]]["x"] != "CANCELED":
                event = json.loads(await ws.text())
                if event["e"] == "executionReport":
                    last[event["i"]] = event
        shown = [
            (await _ask(server, "demo_alice", "GET", "order", symbol="BTCAIT", orderId=i))["status"]
            for i in ids
        ]
    reports = [last[i] for i in ids]
    assert [(r["x"], r["X"]) for r in reports] == [
        ("EXPIRED", "EXPIRED"),  # the IOC's remainder, after 0.5 filled
        ("EXPIRED", "EXPIRED"),  # a FOK the book could not fill
        ("EXPIRED", "EXPIRED"),  # a market order with nothing left to buy
        ("CANCELED", "CANCELED"),
        ("TRADE_PREVENTION", "EXPIRED_IN_MATCH"),  # it would have traded with alice's own
    ]
    assert [r["X"] for r in reports] == shown
    assert [r.get("eR") for r in reports] == [
        "UNFILLED_IOC_QUANTITY_EXPIRED", "UNFILLED_FOK_ORDER_EXPIRED", "INSUFFICIENT_LIQUIDITY",
        None, None,
    ]  # fmt: skip
    assert reports[0]["z"] == "0.50000000"
    assert (reports[3]["c"], reports[3]["C"]) == ("mine-1", "mine-1")
    assert not any(r["w"] for r in reports)
    assert {r["r"] for r in reports} == {"NONE"}


async def test_an_amend_and_a_stops_trigger_are_reported(server: Server) -> None:
    """An amend through ``/api/v1`` is REPLACED with the new quantity and price; a stop
    is NEW off the book (``w`` false) until it triggers, then NEW on it."""
    created = await send(server, "POST", "userDataStream", key=server.keys["demo_alice"])
    url = server.url.replace("http://", "ws://") + f"/ws/{created.json()['listenKey']}"
    limit = {"type": "LIMIT", "timeInForce": "GTC"}
    with trio.fail_after(30):
        async with raw_client(url) as ws:
            placed = await _order(server, "demo_alice", side="SELL", quantity="0.5",
                                  price="105", **limit)  # fmt: skip
            async with server.client(server.keys["demo_alice"]) as http:
                amended = await http.patch(f"/orders/{placed['orderId']}",
                                           json={"quantity": "0.3", "price": "104"})  # fmt: skip
                assert amended.status_code == 200, amended.text
            stop = await _order(server, "demo_alice", side="SELL", type="STOP_LOSS_LIMIT",
                                quantity="0.2", price="98", stopPrice="99",
                                timeInForce="GTC")  # fmt: skip
            await _order(server, "demo_bob", side="SELL", quantity="0.1", price="99", **limit)
            await _order(server, "demo_alice", side="BUY", quantity="0.1", price="99", **limit)
            await _order(server, "demo_bob", side="BUY", quantity="0.1", price="98", **limit)
            reports: list[dict[str, Any]] = []
            while sum(r["i"] == stop["orderId"] for r in reports) < 3:
                event = json.loads(await ws.text())
                if event["e"] == "executionReport":
                    reports.append(event)
    new, replaced = [r for r in reports if r["i"] == placed["orderId"]]
    waiting, triggered, fill = [r for r in reports if r["i"] == stop["orderId"]]
    assert (new["x"], new["q"], new["p"], new["w"]) == ("NEW", "0.50000000", "105.00000000", True)
    assert (replaced["x"], replaced["X"], replaced["q"], replaced["p"]) == (
        "REPLACED", "NEW", "0.30000000", "104.00000000",
    )  # fmt: skip
    assert (waiting["x"], waiting["X"], waiting["o"], waiting["P"]) == (
        "NEW", "NEW", "STOP_LOSS_LIMIT", "99.00000000",
    )  # fmt: skip
    assert (waiting["w"], waiting["W"]) == (False, -1)
    assert (triggered["x"], triggered["X"], triggered["w"]) == ("NEW", "NEW", True)
    assert triggered["W"] == triggered["T"] >= triggered["O"]  # working since the trigger
    assert (fill["x"], fill["X"], fill["z"]) == ("TRADE", "PARTIALLY_FILLED", "0.10000000")
    assert (fill["w"], fill["W"]) == (True, triggered["W"])  # its rest is on the book
