"""Orders over the WebSocket: pipelined, answered by id, as REST answers them."""

from __future__ import annotations

import json
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.api.conftest import ADMIN, Server
from tests.api.test_rest import ALICE, BOB, order
from tests.api.test_ws import _ws_url, receive


async def _authed(ws: WebSocketConnection, key: str) -> None:
    await ws.send_message(json.dumps({"op": "auth", "api_key": key}))
    await receive(ws, "authenticated")


async def _answers(ws: WebSocketConnection, count: int) -> dict[object, dict[str, Any]]:
    """The next ``count`` answers to order ops, by their id."""
    found: dict[object, dict[str, Any]] = {}
    with trio.fail_after(10):
        while len(found) < count:
            message: dict[str, Any] = json.loads(await ws.get_message())
            if message["type"] in ("result", "error") and "id" in message:
                found[message["id"]] = message
    return found


async def test_pipelined_orders_run_in_the_order_sent_and_are_answered_by_id(
    server: Server,
) -> None:
    """Twenty orders sent without waiting: each answered once durable, with the JSON of
    POST /orders; a sell and the buy sent after it trade, in that order."""
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[BOB])
        sends = [order("sell", "0.1", str(31000 + i)) for i in range(18)]
        sends.append(order("sell", "0.2", "30000"))
        sends.append(order("buy", "0.2", "30000", stp="none"))  # his own sell: no prevention
        for i, body in enumerate(sends):
            await ws.send_message(json.dumps({"op": "order.place", "id": i, "args": body}))
        answers = await _answers(ws, len(sends))
    assert set(answers) == set(range(20))
    assert {a["type"] for a in answers.values()} == {"result"}
    assert {a["status"] for a in answers.values()} == {201}
    ids = [int(answers[i]["data"]["order_id"]) for i in range(20)]
    assert ids == sorted(ids)  # numbered, so executed, in the order sent
    taker = answers[19]["data"]
    assert (taker["status"], taker["trades"][0]["price"]) == ("filled", "30000")
    async with server.client(server.keys[BOB]) as bob:
        shown = (await bob.get(f"/orders/{taker['order_id']}")).json()
    assert shown == taker | {"updated_at": shown["updated_at"]}


async def test_bad_order_ops_are_errors_by_id_and_change_nothing(server: Server) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        body = order("buy", "0.1", "30000")
        await ws.send_message(json.dumps({"op": "order.place", "id": "early", "args": body}))
        early = (await _answers(ws, 1))["early"]
        await _authed(ws, server.keys[ALICE])
        cases: list[dict[str, Any]] = [
            {"op": "order.place", "id": "a", "args": body | {"price": "30000.001"}},
            {"op": "order.place", "id": "b", "args": "not an object"},
            {"op": "order.place", "id": "c", "args": body | {"user_id": BOB}},
            {"op": "order.place", "id": "d", "args": body | {"symbol": "NOPE_AIT"}},
            {"op": "order.cancel", "id": "e", "args": {"order_id": "424242"}},
            {"op": "order.cancel", "id": "f", "args": {}},
        ]
        for case in cases:
            await ws.send_message(json.dumps(case))
        answers = await _answers(ws, len(cases))
        await ws.send_message(json.dumps({"op": "order.place", "args": body}))  # no id
        no_id = await receive(ws, "error")
        await ws.send_message(json.dumps({"op": "order.explode", "id": 1}))
        unknown = await receive(ws, "error")
    assert (early["status"], early["error"]["code"]) == (401, "unauthenticated")
    expected = {
        "a": (400, "args.price"), "b": (400, "args"), "c": (403, None),
        "d": (404, "args.symbol"), "e": (404, None), "f": (400, "args.order_id"),
    }  # fmt: skip
    for key, (status, field) in expected.items():
        assert answers[key]["type"] == "error", key
        assert answers[key]["status"] == status, (key, answers[key])
        if field is not None:
            assert answers[key]["error"]["field"] == field, (key, answers[key])
    assert (no_id["id"], no_id["error"]["field"]) == (None, "id")
    assert unknown["error"]["field"] == "op"
    async with server.client(server.keys[ALICE]) as alice:
        assert (await alice.get(f"/users/{ALICE}/orders")).json()["orders"] == []


async def test_orders_are_cancelled_over_the_feed_by_id_or_client_order_id(
    server: Server,
) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[BOB])
        for i in range(2):
            body = order("sell", "0.1", str(31000 + i), client_order_id=f"w-{i}")
            await ws.send_message(json.dumps({"op": "order.place", "id": i, "args": body}))
        placed = await _answers(ws, 2)
        again = order("sell", "0.1", "31000", client_order_id="w-0")
        await ws.send_message(json.dumps({"op": "order.place", "id": "resend", "args": again}))
        resend = (await _answers(ws, 1))["resend"]
        first = placed[0]["data"]["order_id"]
        await ws.send_message(
            json.dumps({"op": "order.cancel", "id": "x", "args": {"order_id": first}})
        )
        await ws.send_message(
            json.dumps({"op": "order.cancel", "id": "y", "args": {"client_order_id": "w-1"}})
        )
        cancels = await _answers(ws, 2)
    assert (resend["status"], resend["data"]["order_id"]) == (200, first)  # idempotent
    assert [cancels[k]["status"] for k in ("x", "y")] == [200, 200]
    assert {cancels[k]["data"]["status"] for k in ("x", "y")} == {"cancelled"}
    async with server.client(ADMIN) as admin:
        book = (await admin.get("/orderbook/BTC_AIT")).json()
    assert book["asks"] == []


async def test_a_refused_order_over_the_feed_is_an_error_in_the_rest_routes_shape(
    server: Server,
) -> None:
    """A 422 (or 409) is ``{"type": "error", ..., "error": {...}}``, as REST shapes it, not
    a result whose data is an error."""
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[ALICE])
        too_big = order("buy", "100", "29000")  # 2,900,000 AIT: more than alice has
        await ws.send_message(json.dumps({"op": "order.place", "id": 7, "args": too_big}))
        answer = (await _answers(ws, 1))[7]
    assert (answer["type"], answer["status"]) == ("error", 422)
    assert answer["error"]["code"] == "rejected"
    assert answer["error"]["reasons"] == ["insufficient_funds"]
    assert "data" not in answer


async def test_no_one_cancels_another_users_order_nor_learns_it_exists(server: Server) -> None:
    """Over REST and the feed, another user's order, open or not, is unknown (404), as an
    order that never was; it stays as it is."""
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        open_ = (await bob.post("/orders", json=order("sell", "0.1", "33000"))).json()
        ended = (await bob.post("/orders", json=order("sell", "0.1", "33001"))).json()
        assert (await bob.delete(f"/orders/{ended['order_id']}")).status_code == 200
        for placed in (open_, ended):
            refused = await alice.delete(f"/orders/{placed['order_id']}")
            assert (refused.status_code, refused.json()["error"]["code"]) == (404, "unknown_order")
        async with open_websocket_url(_ws_url(server)) as ws:
            await _authed(ws, server.keys[ALICE])
            for placed in (open_, ended):
                args = {"order_id": placed["order_id"]}
                await ws.send_message(json.dumps({"op": "order.cancel", "id": 1, "args": args}))
                answer = (await _answers(ws, 1))[1]
                assert (answer["status"], answer["error"]["code"]) == (404, "unknown_order")
        assert (await bob.get(f"/orders/{open_['order_id']}")).json()["status"] == "open"


async def test_every_order_type_is_placed_over_the_feed_as_rest_places_it(server: Server) -> None:
    """An iceberg, a trailing stop-limit, a take-profit and a quote-sized market order (of
    bob's ask at 30050) by ``order.place``: answered as ``POST /orders`` answers, shown by
    GET the same; a ``display_quantity`` above the quantity, which the engine refuses, is
    an error naming it under ``args`` as every other field of the op."""
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        assert (await bob.post("/orders", json=order("sell", "0.1", "30000"))).is_success
        assert (await alice.post("/orders", json=order("buy", "0.1", "30000"))).is_success
        assert (await bob.post("/orders", json=order("sell", "0.1", "30050"))).is_success
    base = {"symbol": "BTC_AIT", "side": "sell", "quantity": "0.1"}
    bodies = {
        "quote": {"symbol": "BTC_AIT", "side": "buy", "type": "market",
                  "quote_quantity": "100"},
        "iceberg": order("sell", "1", "30100", display_quantity="0.2"),
        "trailing": base | {"type": "trailing_stop_limit", "trailing_bps": 100,
                            "limit_offset": "10"},
        "take_profit": base | {"type": "take_profit", "stop_price": "31000"},
        "bad": order("sell", "1", "30100", display_quantity="1.5"),
    }  # fmt: skip
    async with open_websocket_url(_ws_url(server)) as ws:
        await _authed(ws, server.keys[ALICE])
        for name, body in bodies.items():
            await ws.send_message(json.dumps({"op": "order.place", "id": name, "args": body}))
        answers = await _answers(ws, len(bodies))
    bad = answers.pop("bad")
    assert (bad["status"], bad["error"]["field"]) == (400, "args.display_quantity")
    shown = {name: answer["data"] for name, answer in answers.items()}
    assert {name: answer["status"] for name, answer in answers.items()} == dict.fromkeys(shown, 201)
    assert (shown["iceberg"]["display_quantity"], shown["iceberg"]["hidden_quantity"]) == (
        "0.2", "0.8",
    )  # fmt: skip
    # 100 bps below the last trade (the quote-sized buy's, 30050), the limit 10 below that.
    assert (shown["trailing"]["stop_price"], shown["trailing"]["price"]) == (
        "29749.5", "29739.5",
    )  # fmt: skip
    assert shown["take_profit"]["status"] == "pending_trigger"
    assert (shown["quote"]["quote_quantity"], shown["quote"]["filled_quantity"]) == (
        "100", "0.0033",
    )  # fmt: skip
    async with server.client(server.keys[ALICE]) as alice:
        for body in shown.values():
            got = (await alice.get(f"/orders/{body['order_id']}")).json()
            assert got == body | {"updated_at": got["updated_at"]}
