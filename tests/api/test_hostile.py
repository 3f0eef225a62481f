"""Hostile input over real HTTP: a clear 400 in the error shape, nothing logged as a crash,
and nothing changed."""

from __future__ import annotations

import logging

import pytest

from tests.api.conftest import ADMIN, Server
from tests.api.test_rest import ALICE

DEEP_ARRAY = b"[" * 100_000
DEEP_OBJECT = b'{"a":' * 9 + b"1" + b"}" * 9


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("POST", "/orders", "alice"),
        ("POST", "/risk/check", "alice"),
        ("PATCH", "/orders/1", "alice"),
        ("POST", "/admin/users", "admin"),
        ("POST", "/admin/deposits", "admin"),
        ("POST", "/admin/symbols", "admin"),
        ("POST", "/settlement/trigger", "admin"),
    ],
)
async def test_deeply_nested_json_is_a_400_on_every_body(
    server: Server, caplog: pytest.LogCaptureFixture, method: str, path: str, key: str
) -> None:
    caplog.set_level(logging.ERROR)
    async with server.client(server.keys[ALICE] if key == "alice" else ADMIN) as client:
        if path == "/orders/1":  # an order of the caller's, so the body is read
            placed = await client.post(
                "/orders",
                json={"symbol": "BTC_AIT", "side": "buy", "type": "limit",
                      "quantity": "0.1", "price": "30000"},
            )  # fmt: skip
            path = f"/orders/{placed.json()['order_id']}"
        for body in (DEEP_ARRAY, DEEP_OBJECT):
            response = await client.request(method, path, content=body)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_input", "body")
            assert "nests deeper than 8 levels" in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_text_that_is_not_unicode_is_a_400_and_places_nothing(server: Server) -> None:
    """``"\\ud800"`` is valid JSON but no UTF-8 string: it must not reach the engine."""
    body = (
        b'{"symbol": "BTC_AIT", "side": "buy", "type": "limit", "quantity": "0.1",'
        b' "price": "30000", "client_order_id": "x\\ud800"}'
    )
    async with server.client(server.keys[ALICE]) as alice:
        response = await alice.post("/orders", content=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"] == "body: holds text that is not valid Unicode"
        orders = (await alice.get(f"/users/{ALICE}/orders")).json()["orders"]
    assert orders == []


async def test_a_nul_byte_in_a_history_cursor_is_a_400_that_shows_no_internals(
    server: Server,
) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        cursors = (
            "1:BTC\x00AIT:1:maker", "1:NOPE_AIT:1:maker", "1:BTC_AIT: 1:maker",
            "1:BTC_AIT:+1:taker", "1e5:BTC_AIT:1:maker", "1:BTC_AIT:1:maker\x00",
        )  # fmt: skip
        for cursor in cursors:
            response = await alice.get(f"/users/{ALICE}/history/trades", params={"before": cursor})
            assert response.status_code == 400, (cursor, response.text)
            assert response.json()["error"] == {
                "code": "invalid_input",
                "message": "before: must be the `next` of the previous page",
                "field": "before",
            }
        page = await alice.get(f"/users/{ALICE}/history/orders", params={"before": "1\x00"})
        assert page.status_code == 400


async def test_deposits_need_a_listed_asset_and_a_plain_bounded_amount(server: Server) -> None:
    async with server.client(ADMIN) as admin:
        for asset in ("../../x", "DOGE"):
            move = {"user_id": ALICE, "asset": asset, "amount": "1"}
            for route in ("/admin/deposits", "/admin/withdrawals"):
                refused = await admin.post(route, json=move)
                assert refused.status_code == 404, refused.text
                error = refused.json()["error"]
                assert (error["code"], error["field"]) == ("asset_unknown", "asset")
        for amount in ("1e39", "1" + "0" * 39, " 1", "+1", "0.01\n", "1.", ".5", "-1"):
            move = {"user_id": ALICE, "asset": "AIT", "amount": amount}
            refused = await admin.post("/admin/deposits", json=move)
            assert refused.status_code == 400, (amount, refused.text)
            assert refused.json()["error"]["field"] == "amount"
        balances = (await admin.get(f"/users/{ALICE}/balances")).json()["balances"]
    assert balances["AIT"] == {"available": "1000000", "held": "0"}
    assert set(balances) == {"AIT", "BTC", "ETH"}


@pytest.mark.parametrize("user_id", ["a/b", "../x", "", "-lead", "a b", "x" * 65, "é"])
async def test_user_ids_keep_to_a_character_set_every_path_can_carry(
    server: Server, user_id: str
) -> None:
    async with server.client(ADMIN) as admin:
        made = await admin.post("/admin/users", json={"user_id": user_id})
        assert made.status_code == 400, made.text
        assert made.json()["error"]["field"] == "user_id"
        owned = await admin.post("/admin/users", json={"user_id": "fine", "owner": user_id})
        assert owned.status_code == 400, owned.text
        assert owned.json()["error"]["field"] == "owner"
        assert (await admin.get("/users/fine/balances")).status_code == 404


async def test_client_order_ids_keep_to_their_character_set(server: Server) -> None:
    order = {"symbol": "BTC_AIT", "side": "buy", "type": "limit", "quantity": "0.1",
             "price": "30000"}  # fmt: skip
    async with server.client(server.keys[ALICE]) as alice:
        for bad in ("a b", "x\u00e9", "a\\b", "x" * 65, ""):
            refused = await alice.post("/orders", json=order | {"client_order_id": bad})
            assert refused.status_code == 400, (bad, refused.text)
            assert refused.json()["error"]["field"] == "client_order_id"
        fine = await alice.post("/orders", json=order | {"client_order_id": "x-R4:a/b_c.1"})
        assert fine.status_code == 201, fine.text


async def test_an_unknown_symbol_is_404_symbol_unknown_wherever_it_is_named(
    server: Server,
) -> None:
    order = {"symbol": "NOPE_AIT", "side": "buy", "type": "limit", "quantity": "1",
             "price": "1"}  # fmt: skip
    async with server.client(server.keys[ALICE]) as alice:
        answers = {
            "POST /orders": await alice.post("/orders", json=order),
            "POST /risk/check": await alice.post("/risk/check", json={"order": order}),
            "GET /orderbook": await alice.get("/orderbook/NOPE_AIT"),
            "GET /ticker": await alice.get("/ticker/NOPE_AIT"),
            "GET /candles": await alice.get("/candles/NOPE_AIT"),
            "GET /trades": await alice.get("/trades", params={"symbol": "NOPE_AIT"}),
            "DELETE /orders": await alice.delete("/orders", params={"symbol": "NOPE_AIT"}),
        }
    for route, answer in answers.items():
        assert answer.status_code == 404, (route, answer.text)
        assert answer.json()["error"]["code"] == "symbol_unknown", route
    assert answers["POST /orders"].json()["error"]["field"] == "symbol"
    for query in ("DELETE /orders", "GET /trades"):
        assert answers[query].json()["error"]["field"] == "symbol"
