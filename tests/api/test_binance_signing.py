"""Keys, signatures and bad input on the Binance dialect: each refusal in Binance's shape,
and nothing changed by a refused request."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import ccxt
import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.api.binance_client import call, client, send, signed
from tests.api.conftest import ADMIN, Server
from tests.conftest import sql
from trading_engine.api.binance import account, lists, public, trading
from trading_engine.core.ids import UserId
from trading_engine.serve import demo_secret

ORDER = {"symbol": "BTCAIT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "1", "price": "90"}  # fmt: skip


async def _state(server: Server) -> tuple[Any, ...]:
    user = UserId("demo_alice")
    return await server.engine.balances(user), await server.engine.user_orders(user)


async def test_refused_signatures_keys_and_times_change_nothing(server: Server) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    now = int(time.time() * 1000)
    cases = [
        (None, signed(ORDER, secret), 401, -2014),
        ("k" * 129, signed(ORDER, secret), 401, -2014),
        ("te demo", signed(ORDER, secret), 401, -2014),
        ("te_not_a_key", signed(ORDER, secret), 401, -2015),
        (key, signed(ORDER, "f" * 64), 400, -1022),
        (key, signed(ORDER, secret) + "0", 400, -1022),
        (
            key,
            signed({**ORDER, "quantity": "2"}, secret).replace("quantity=2", "quantity=3"),
            400,
            -1022,
        ),
        (key, urlencode({**ORDER, "timestamp": now}), 400, -1102),
        (key, signed(ORDER, secret, at=now - 6_000), 400, -1021),
        (key, signed(ORDER, secret, at=now + 5_000), 400, -1021),
        (key, signed({**ORDER, "recvWindow": 60_001}, secret), 400, -1131),
        (key, signed({**ORDER, "price": "90.001"}, secret), 400, -1013),
        (key, signed({**ORDER, "price": "abc"}, secret), 400, -1100),
        (key, signed({**ORDER, "side": "UP"}, secret), 400, -1117),
        (key, signed({**ORDER, "type": "TAKE_PROFIT"}, secret), 400, -1106),
        (key, signed({**ORDER, "type": "TAKE_PROFIT_LIMIT"}, secret), 400, -1102),
        (
            key,
            signed({**ORDER, "type": "STOP_LOSS_LIMIT", "trailingDelta": "100"}, secret),
            400,
            -2010,
        ),
        (
            key,
            signed(
                {**ORDER, "type": "TAKE_PROFIT_LIMIT", "stopPrice": "80", "icebergQty": "0.5"},
                secret,
            ),
            400,
            -2010,
        ),
        (key, signed({**ORDER, "trailingDelta": "100"}, secret), 400, -1106),
        (key, signed({**ORDER, "type": "ICEBERG"}, secret), 400, -1116),
        (key, signed({**ORDER, "symbol": "BTC_AIT"}, secret), 400, -1121),
        (key, signed({**ORDER, "colour": "red"}, secret), 400, -1104),
        (key, signed({**ORDER, "quoteOrderQty": "10"}, secret), 400, -1106),
        (key, signed({**ORDER, "icebergQty": "1"}, secret), 400, -1100),
        (key, signed({**ORDER, "icebergQty": "0.00001"}, secret), 400, -1013),
        (
            key,
            signed({k: v for k, v in ORDER.items() if k != "timeInForce"}, secret),
            400,
            -1102,
        ),
        (key, signed(ORDER, secret) + "&price=91", 400, -1101),
    ]
    with trio.fail_after(30):
        before = await _state(server)
        for api_key, body, status, code in cases:
            response = await send(server, "POST", "order", body=body, key=api_key)
            assert (response.status_code, response.json()["code"]) == (status, code), body
            assert set(response.json()) == {"code", "msg"}
            assert secret not in response.text
        assert await _state(server) == before
        # Query string then body, signed as one text; and the signature accepted once right.
        query, rest = (
            "symbol=BTCAIT&side=BUY",
            urlencode(
                {
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "1",
                    "price": "90",
                    "timestamp": now,
                }
            ),
        )
        signature = hmac.new(secret.encode(), (query + rest).encode(), hashlib.sha256)
        response = await send(
            server, "POST", "order", query=query,
            body=f"{rest}&signature={signature.hexdigest()}", key=key,
        )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "NEW"


async def test_bad_input_on_public_and_signed_reads_is_binance_shaped(server: Server) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    cases = [
        ("GET", "depth", "symbol=NOPE", None, 400, -1121),
        ("GET", "depth", "", None, 400, -1102),
        ("GET", "depth", "symbol=BTCAIT&limit=x", None, 400, -1100),
        ("GET", "klines", "symbol=BTCAIT&interval=7m", None, 400, -1120),
        ("GET", "trades", "symbol=BTCAIT&symbol=ETHAIT", None, 400, -1101),
        ("GET", "ticker/price", "symbols=notjson", None, 400, -1100),
        ("GET", "exchangeInfo", "symbol=BTCAIT&symbols=%5B%22BTCAIT%22%5D", None, 400, -1128),
        ("GET", "order", signed({"symbol": "BTCAIT"}, secret), key, 400, -1102),
        ("GET", "order", signed({"symbol": "BTCAIT", "orderId": 999}, secret), key, 400, -2013),
        (
            "DELETE",
            "order",
            signed({"symbol": "BTCAIT", "orderId": 999}, secret),
            key,
            400,
            -2011,
        ),
        ("DELETE", "openOrders", signed({"symbol": "BTCAIT"}, secret), key, 400, -2011),
        (
            "DELETE",
            "order",
            signed({"symbol": "BTCAIT", "orderId": 1, "cancelRestrictions": "ONLY_OLD"}, secret),
            key,
            400,
            -1145,
        ),
        (
            "DELETE",
            "order",
            signed({"symbol": "BTCAIT", "orderId": 1, "cancelRestrictions": "ONLY_NEW"}, secret),
            key,
            400,
            -1014,
        ),
        ("GET", "ticker/24hr", "symbol=BTCAIT&type=SMALL", None, 400, -1130),
        ("GET", "allOrders", signed({}, secret), key, 400, -1102),
        ("GET", "myTrades", signed({"symbol": "XAIT"}, secret), key, 400, -1121),
        ("GET", "account", signed({}, "0" * 64), key, 400, -1022),
        ("PUT", "userDataStream", "listenKey=nope", key, 400, -1125),
        ("POST", "userDataStream", "", None, 401, -2014),
    ]
    with trio.fail_after(30):
        before = await _state(server)
        for method, path, query, api_key, status, code in cases:
            response = await send(server, method, path, query=query, key=api_key)
            assert (response.status_code, response.json().get("code")) == (status, code), (
                path, query, response.text,
            )  # fmt: skip
        assert await _state(server) == before


async def test_listen_keys_are_made_kept_alive_and_closed(server: Server) -> None:
    key = server.keys["demo_alice"]
    with trio.fail_after(30):
        made = (await send(server, "POST", "userDataStream", key=key)).json()["listenKey"]
        again = (await send(server, "POST", "userDataStream", key=key)).json()["listenKey"]
        bob = server.keys["demo_bob"]
        other = await send(server, "PUT", "userDataStream", query=f"listenKey={made}", key=bob)
        kept = await send(server, "PUT", "userDataStream", query=f"listenKey={made}", key=key)
        closed = await send(server, "DELETE", "userDataStream", query=f"listenKey={made}",
                             key=key)  # fmt: skip
        twice = await send(server, "DELETE", "userDataStream", query=f"listenKey={made}",
                            key=key)  # fmt: skip
    assert again == made
    assert other.json()["code"] == -1125
    assert (kept.status_code, closed.status_code) == (200, 200)
    assert twice.json()["code"] == -1125


async def test_a_new_users_secret_signs_and_is_stored_sealed(
    server: Server, database_url: str
) -> None:
    async with server.client(ADMIN) as admin:
        created = (await admin.post("/admin/users", json={"user_id": "carol"})).json()
        await admin.post(
            "/admin/deposits", json={"user_id": "carol", "asset": "AIT", "amount": "1000"}
        )
    stored = await server.engine.credentials(UserId("carol"))
    assert created["api_secret"] not in str(stored)
    with trio.fail_after(30):
        carol = client(server, None, apiKey=created["api_key"], secret=created["api_secret"])
        await call(carol.load_markets)
        balance = await call(carol.fetch_balance)
    assert balance["AIT"]["free"] == 1000
    assert await _rows_holding(database_url, "CredentialSet")  # the journal was written
    assert await _rows_holding(database_url, created["api_secret"]) == []


async def _rows_holding(database_url: str, text: str) -> list[str]:
    """The tables of the database at ``database_url`` with a row whose text holds ``text``."""
    tables = await sql(
        database_url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    )
    found = []
    for (table,) in tables:
        rows = await sql(
            database_url,
            f"SELECT 1 FROM {table} AS row WHERE strpos(row::text, '{text}') > 0 LIMIT 1",
        )
        if rows:
            found.append(table)
    return found


async def test_a_symbol_whose_joined_name_is_taken_is_refused(server: Server) -> None:
    body = {"symbol": "BTCA_IT", "base_asset": "BTCA", "quote_asset": "IT",
            "tick_size": "0.01", "lot_size": "0.01"}  # fmt: skip
    async with server.client(ADMIN) as admin:
        response = await admin.post("/admin/symbols", json=body)
    assert response.status_code == 409
    assert "BTCAIT" in response.json()["error"]["message"]
    assert "BTCA_IT" not in server.engine.instruments()


async def test_an_ed25519_key_signs_in_place_of_the_secret(server: Server) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    async with server.client(ADMIN) as admin:
        bad = await admin.put(
            "/admin/users/demo_alice/ed25519-key", json={"public_key": "bm90IGEga2V5"}
        )
        unknown = await admin.put("/admin/users/nobody/ed25519-key", json={"public_key": public})
        registered = await admin.put(
            "/admin/users/demo_alice/ed25519-key", json={"public_key": public}
        )
    async with server.client(server.keys["demo_alice"]) as alice:
        not_admin = await alice.put(
            "/admin/users/demo_alice/ed25519-key", json={"public_key": public}
        )
    assert (bad.status_code, unknown.status_code, not_admin.status_code) == (400, 404, 403)
    assert registered.status_code == 200, registered.text
    with trio.fail_after(30):
        signer = client(server, "demo_alice", secret=pem)
        await call(signer.load_markets)
        balance = await call(signer.fetch_balance)
        other = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()  # fmt: skip
        forger = client(server, "demo_alice", secret=other)
        await call(forger.load_markets)
        with pytest.raises(ccxt.AuthenticationError):
            await call(forger.fetch_balance)
        # The HMAC secret still signs too.
        assert (await call(client(server).fetch_balance))["AIT"]["free"] == 1_000_000
    assert balance["AIT"]["free"] == 1_000_000


async def test_a_parameter_in_both_query_and_body_is_the_query_strings(server: Server) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    now = int(time.time() * 1000)
    query = "symbol=BTCAIT&side=BUY&price=90"
    body = urlencode({**ORDER, "price": "95", "symbol": "NOPE", "timestamp": now})
    signature = hmac.new(secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    with trio.fail_after(30):
        placed = await send(
            server, "POST", "order", query=query, body=f"{body}&signature={signature}", key=key
        )
        twice = await send(server, "POST", "order", body=signed(ORDER, secret) + "&price=91",
                           key=key)  # fmt: skip
    assert placed.status_code == 200, placed.text
    assert (placed.json()["symbol"], placed.json()["price"]) == ("BTCAIT", "90.00000000")
    assert twice.json()["code"] == -1101  # repeated within the body itself
    query, signature = signed({"symbol": "BTCAIT"}, secret).split("&signature=")
    with trio.fail_after(30):
        upper = await send(server, "GET", "openOrders", key=key,
                           query=f"{query}&signature={signature.upper()}")  # fmt: skip
    assert upper.status_code == 200, upper.text  # an HMAC signature's case does not matter


async def test_recv_window_takes_milliseconds_with_three_decimals(server: Server) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    now = int(time.time() * 1000)
    cases = [
        ({"recvWindow": "6000.346"}, now - 5_500, 200, None),
        ({"recvWindow": "60000.000"}, now - 59_000, 200, None),
        ({"recvWindow": "0.5"}, now - 2_000, 400, -1021),
        ({"recvWindow": "6000.3461"}, now, 400, -1100),
        ({"recvWindow": "60000.001"}, now, 400, -1131),
        ({"recvWindow": "-1"}, now, 400, -1100),
    ]
    with trio.fail_after(30):
        before = await _state(server)
        for params, at, status, code in cases:
            response = await send(
                server, "GET", "account", query=signed(params, secret, at=at), key=key
            )
            assert response.status_code == status, (params, response.text)
            assert response.json().get("code") == code, params
    assert await _state(server) == before


def _routes() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Every REST route of the dialect, as its modules register them: the public ones,
    then those that need a key."""
    public_routes: list[tuple[str, str]] = []
    keyed: list[tuple[str, str]] = []
    public.register(lambda method, path, _: public_routes.append((method, path)))
    for module in (account, trading, lists):
        module.register(lambda method, path, _: keyed.append((method, path)))
    return public_routes, keyed


async def test_every_route_refuses_bad_input_in_binances_shape_and_changes_nothing(
    server: Server,
) -> None:
    key, secret = server.keys["demo_alice"], demo_secret(ADMIN, "demo_alice")
    public_routes, keyed = _routes()
    assert len(public_routes) == 12
    assert len(keyed) >= 20
    with trio.fail_after(60):
        alice = client(server)
        await call(alice.load_markets)
        await call(alice.create_order, "BTC/AIT", "limit", "buy", 1, 90)
        listen = (await send(server, "POST", "userDataStream", key=key)).json()["listenKey"]
        before = await _state(server)
        for method, path in public_routes:
            response = await send(server, method, path, query="colour=red")
            assert (response.status_code, response.json()) == (400, {
                "code": -1104,
                "msg": "Not all sent parameters were read; read 0 parameter(s) but was sent 1.",
            }), path  # fmt: skip
        for method, path in keyed:
            unread = signed({"colour": "red"}, secret)
            refused = [
                (await send(server, method, path, query=signed({}, secret)), 401, -2014),
                (await send(server, method, path, query=unread, key=key), 400, -1104),
            ]
            if path != "userDataStream":  # a key, but no signature
                wrong = signed({}, "0" * 64)
                refused.append((await send(server, method, path, query=wrong, key=key), 400, -1022))
            for response, status, code in refused:
                assert (response.status_code, response.json()["code"]) == (status, code), (
                    method, path, response.text,
                )  # fmt: skip
                assert set(response.json()) == {"code", "msg"}
        after = await _state(server)
        kept = await send(server, "PUT", "userDataStream", query=f"listenKey={listen}", key=key)
    assert after == before
    assert kept.status_code == 200  # the refused DELETEs closed nothing
