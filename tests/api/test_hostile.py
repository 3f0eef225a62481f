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
