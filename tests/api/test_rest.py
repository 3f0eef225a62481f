"""The REST API over real HTTP: orders, errors, auth, market data, admin."""

from __future__ import annotations

import json
from decimal import Decimal

import trio
from trio_websocket import open_websocket_url

from tests.api.conftest import ADMIN, Server

ALICE, BOB = "demo_alice", "demo_bob"


def order(side: str, quantity: str, price: str, **extra: object) -> dict[str, object]:
    return {"symbol": "BTC_AIT", "side": side, "type": "limit", "quantity": quantity,
            "price": price, **extra}  # fmt: skip


async def test_an_order_rests_then_trades_and_the_book_and_balances_show_it(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        placed = await bob.post("/orders", json=order("sell", "0.5", "30000.00"))
        assert placed.status_code == 201, placed.text
        assert placed.json()["status"] == "open"
        book = (await bob.get("/orderbook/BTC_AIT")).json()
        assert book["asks"] == [["30000", "0.5"]]
        taken = await alice.post("/orders", json=order("buy", "0.2", "30010"))
        assert taken.status_code == 201
        body = taken.json()
        assert (body["status"], body["filled_quantity"], body["average_price"]) == (
            "filled",
            "0.2",
            "30000",
        )
        assert body["trades"][0]["price"] == "30000"
        ticker = (await bob.get("/ticker/BTC_AIT")).json()
        assert (ticker["last"], ticker["last_quantity"], ticker["best_ask"]) == (
            "30000", "0.2", "30000",
        )  # fmt: skip
        assert (ticker["bid_quantity"], ticker["ask_quantity"]) == ("0", "0.3")
        balances = (await alice.get(f"/users/{ALICE}/balances")).json()["balances"]
        # 0.2 BTC for 6000 AIT plus a 10 bps taker fee of 6 AIT.
        assert balances["BTC"] == {"available": "100.2", "held": "0"}
        assert balances["AIT"] == {"available": "993994", "held": "0"}


async def test_a_resend_with_the_same_client_order_id_returns_the_original(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob:
        first = await bob.post("/orders", json=order("sell", "1", "31000", client_order_id="c-1"))
        again = await bob.post("/orders", json=order("sell", "1", "31000", client_order_id="c-1"))
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["order_id"] == again.json()["order_id"]
        mine = (await bob.get(f"/users/{BOB}/orders", params={"status": "open"})).json()
        assert len(mine["orders"]) == 1


async def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        base = {"symbol": "BTC_AIT", "side": "buy", "type": "limit", "quantity": "1"}
        priced = base | {"price": "30000"}
        cases: list[tuple[bytes, str]] = [
            (b"{not json", "body"),
            (json.dumps(base | {"price": "30000.001"}).encode(), "price"),
            (json.dumps(priced | {"quantity": "-1"}).encode(), "quantity"),
            (json.dumps(base).encode(), "price"),
            (json.dumps(base | {"side": "up"}).encode(), "side"),
            (json.dumps(base | {"type": "stop"}).encode(), "stop_price"),
            (json.dumps(priced | {"colour": "red"}).encode(), "colour"),
            (json.dumps(priced).replace('"30000"', "1e400").encode(), "body"),
            (json.dumps(priced).replace('"30000"', "3e4").encode(), "body"),
            (json.dumps(priced | {"quantity": " 1"}).encode(), "quantity"),
            (json.dumps(priced | {"quantity": "+1"}).encode(), "quantity"),
            (json.dumps(priced | {"quantity": "0.01\n"}).encode(), "quantity"),
            (json.dumps(priced | {"price": "100000000000000000000"}).encode(), "price"),
            (json.dumps(priced | {"quantity": -1}).encode(), "quantity"),
            (json.dumps(priced | {"quantity": True}).encode(), "quantity"),
            (json.dumps(priced | {"quantity": "1_0"}).encode(), "quantity"),
            (json.dumps(priced | {"price": "٣٠٠٠٠"}).encode(), "price"),
        ]  # fmt: skip
        for raw, field in cases:
            response = await alice.post("/orders", content=raw)
            assert response.status_code == 400, (raw, response.text)
            error = response.json()["error"]
            assert error["field"] == field, (raw, error)
        assert (await alice.get(f"/users/{ALICE}/orders")).json()["orders"] == []
        balances = (await alice.get(f"/users/{ALICE}/balances")).json()["balances"]
        assert balances["AIT"]["held"] == "0"


async def test_a_risk_rejection_is_a_422_with_every_reason(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        response = await alice.post("/orders", json=order("buy", "1000", "30000"))
        assert response.status_code == 422
        assert response.json()["error"]["reasons"] == ["insufficient_funds"]
        check = await alice.post("/risk/check", json={"order": order("buy", "1000", "30000")})
        assert check.json()["allowed"] is False
        assert check.json()["hold"]["asset"] == "AIT"


async def test_keys_act_only_for_their_user_and_no_key_is_401(server: Server) -> None:
    async with server.client() as anonymous, server.client(server.keys[ALICE]) as alice:
        assert (await anonymous.post("/orders", json=order("buy", "1", "1"))).status_code == 401
        assert (await anonymous.get(f"/users/{ALICE}/balances")).status_code == 401
        async with server.client("not-a-key") as bad:
            assert (await bad.get(f"/users/{ALICE}/balances")).status_code == 401
        assert (await alice.get(f"/users/{BOB}/balances")).status_code == 403
        assert (await alice.post("/admin/deposits", json={})).status_code == 403
        assert (await anonymous.get("/symbols")).status_code == 200


async def test_cancel_then_cancel_again_is_409_and_unknown_is_404(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob:
        placed = (await bob.post("/orders", json=order("sell", "1", "32000"))).json()
        cancelled = await bob.delete(f"/orders/{placed['order_id']}")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        for _ in range(50):  # the risk actor's view follows the commit
            again = await bob.delete(f"/orders/{placed['order_id']}")
            if again.status_code == 409:
                break
            await trio.sleep(0.01)
        assert again.status_code == 409
        assert (await bob.delete("/orders/999999")).status_code == 404


async def test_admin_creates_users_funds_them_and_lists_symbols(server: Server) -> None:
    async with server.client(ADMIN) as admin:
        created = await admin.post("/admin/users", json={"user_id": "carol"})
        assert created.status_code == 201
        key = created.json()["api_key"]
        assert (await admin.post("/admin/users", json={"user_id": "carol"})).status_code == 409
        funded = await admin.post(
            "/admin/deposits", json={"user_id": "carol", "asset": "AIT", "amount": "12.5"}
        )
        assert funded.json()["available"] == "12.5"
        listed = await admin.post(
            "/admin/symbols",
            json={"symbol": "SOL_AIT", "base_asset": "SOL", "quote_asset": "AIT",
                  "tick_size": "0.001", "lot_size": "0.01"},
        )  # fmt: skip
        assert listed.status_code == 201
        assert (await admin.post("/admin/symbols", json=listed.json() | {})).status_code == 400
    async with server.client(key) as carol:
        placed = await carol.post(
            "/orders", json={"symbol": "SOL_AIT", "side": "buy", "type": "limit",
                             "quantity": "1", "price": "12"}
        )  # fmt: skip
        assert placed.status_code == 201, placed.text
        too_much = await carol.post(
            "/orders", json={"symbol": "SOL_AIT", "side": "buy", "type": "limit",
                             "quantity": "1", "price": "12"}
        )  # fmt: skip
        assert too_much.status_code == 422


async def test_halted_symbol_refuses_orders_until_resumed(server: Server) -> None:
    async with server.client(ADMIN) as admin, server.client(server.keys[BOB]) as bob:
        assert (await admin.post("/admin/symbols/BTC_AIT/halt", json={})).status_code == 200
        refused = await bob.post("/orders", json=order("sell", "1", "30000"))
        assert refused.status_code == 422
        assert refused.json()["error"]["reasons"] == ["symbol_halted"]
        assert (await admin.post("/admin/symbols/BTC_AIT/resume")).status_code == 200
        assert (await bob.post("/orders", json=order("sell", "1", "30000"))).status_code == 201


async def test_unknown_routes_and_symbols_are_404_in_the_error_shape(server: Server) -> None:
    async with server.client() as anonymous:
        for path in ("/nope", "/orderbook/NOPE_AIT", "/ticker/NOPE_AIT"):
            response = await anonymous.get(path)
            assert response.status_code == 404
            assert set(response.json()["error"]) >= {"code", "message"}


async def test_metrics_count_orders_rejections_and_requests(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob:
        await bob.post("/orders", json=order("sell", "0.1", "30000"))
        await bob.post("/orders", json=order("sell", "100000", "30000"))  # insufficient funds
        response = await bob.get(f"{server.url}/metrics")
        assert response.headers["X-Request-ID"]
    text = response.text
    assert 'te_orders_total{outcome="accepted"} 1.0' in text
    assert 'te_order_rejections_total{reason="insufficient_funds"} 1.0' in text
    assert 'te_http_request_seconds_count{method="POST",route="/api/v1/trading/orders"' in text
    assert "te_journal_writes_total" in text
    assert "te_read_tables_lag_seconds " in text
    assert "te_read_tables_failures_total 0.0" in text


async def test_metrics_count_websocket_subscribers(server: Server) -> None:
    url = server.url.replace("http", "ws", 1) + "/api/v1/trading/ws"
    async with server.client() as anonymous:
        assert "te_websocket_subscribers 0.0" in (await anonymous.get(f"{server.url}/metrics")).text
        async with open_websocket_url(url) as ws:
            await ws.send_message(json.dumps({"op": "subscribe", "channels": ["trades.BTC_AIT"]}))
            assert json.loads(await ws.get_message())["type"] == "subscribed"
            metrics = (await anonymous.get(f"{server.url}/metrics")).text
        assert "te_websocket_subscribers 1.0" in metrics


async def list_perp_and_fund(server: Server, user: str, amount: str) -> str:
    """List the margin symbol PERP_AIT, create ``user`` with ``amount`` AIT; its key."""
    async with server.client(ADMIN) as admin:
        listed = await admin.post(
            "/admin/symbols",
            json={"symbol": "PERP_AIT", "base_asset": "PERP", "quote_asset": "AIT",
                  "tick_size": "0.01", "lot_size": "0.001", "mode": "margin"},
        )  # fmt: skip
        assert listed.status_code == 201, listed.text
        key: str = (await admin.post("/admin/users", json={"user_id": user})).json()["api_key"]
        funded = {"user_id": user, "asset": "AIT", "amount": amount}
        assert (await admin.post("/admin/deposits", json=funded)).status_code == 200
    return key


async def test_risk_profile_shows_a_margin_position_with_entry_and_liquidation_prices(
    server: Server,
) -> None:
    key = await list_perp_and_fund(server, "dave", "200")
    perp = {"symbol": "PERP_AIT", "type": "limit", "quantity": "1", "price": "1000"}
    async with server.client(server.keys[BOB]) as bob, server.client(key) as dave:
        assert (await bob.post("/orders", json=perp | {"side": "sell"})).status_code == 201
        assert (await dave.post("/orders", json=perp | {"side": "buy"})).status_code == 201
        for _ in range(100):  # the mark follows the trade through the pricing actor
            margin = (await dave.get("/users/dave/risk-profile")).json()["margin"]
            if margin["positions"]["PERP_AIT"]["mark_price"]:
                break
            await trio.sleep(0.01)
    position = margin["positions"]["PERP_AIT"]
    assert (position["quantity"], position["entry_price"], position["mark_price"]) == (
        "1",
        "1000",
        "1000",
    )
    # 200 AIT of collateral (less the fee) on a 1,000 AIT long at a 5% maintenance
    # margin: equity meets maintenance near (1000 - 199.9) / 0.95, about 842.2.
    assert 842 < float(position["liquidation_price"]) < 843  # a display value, not money
    assert float(margin["assets"]["AIT"]["margin_ratio"]) > 1


async def test_surveillance_counts_orders_stopped_by_self_trade_prevention(server: Server) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(ADMIN) as admin:
        assert (await bob.post("/orders", json=order("sell", "0.1", "30000"))).status_code == 201
        stopped = await bob.post("/orders", json=order("buy", "0.1", "30000"))
        assert stopped.json()["reason"] == "self_trade_prevention"
        for _ in range(100):  # the count follows the commit
            report = (await admin.get("/surveillance/alerts")).json()
            if report["self_trades_prevented"]:
                break
            await trio.sleep(0.01)
    assert report["self_trades_prevented"] == {BOB: 1}
    alert = report["alerts"][0]
    assert (alert["kind"], alert["user_id"], alert["quantity"]) == (
        "self_trade_prevented",
        BOB,
        "0.1",
    )
    assert alert["maker_order_id"] == "1"  # ids and amounts as the rest of the API shows them
    assert 1_700_000_000 < Decimal(alert["ts"]) < 10_000_000_000  # seconds, not nanoseconds


async def test_reduce_only_orders_over_http(server: Server) -> None:
    key = await list_perp_and_fund(server, "dave", "200")
    perp = {"symbol": "PERP_AIT", "type": "limit", "quantity": "1"}
    async with server.client(server.keys[BOB]) as bob, server.client(key) as dave:
        spot = await dave.post("/orders", json=order("sell", "1", "30000", reduce_only=True))
        assert spot.status_code == 400, spot.text
        assert spot.json()["error"]["field"] == "reduce_only"
        for bad in ("yes", 1, None):
            wrong = await dave.post(
                "/orders", json=perp | {"side": "sell", "price": "1000", "reduce_only": bad}
            )
            assert wrong.status_code == 400, (bad, wrong.text)
            assert wrong.json()["error"]["field"] == "reduce_only"
        close = perp | {"side": "sell", "price": "1050", "quantity": "3", "reduce_only": True}
        flat = await dave.post("/orders", json=close)
        assert flat.status_code == 422, flat.text
        assert flat.json()["error"]["reasons"] == ["reduce_only_would_increase"]
        check = (await dave.post("/risk/check", json={"order": close})).json()
        assert (check["allowed"], check["reasons"]) == (False, ["reduce_only_would_increase"])
        assert (await bob.post("/orders", json=perp | {"side": "sell", "price": "1000"})).is_success
        opened = await dave.post("/orders", json=perp | {"side": "buy", "price": "1000"})
        assert opened.json()["reduce_only"] is False
        for _ in range(100):  # risk sees the position once the trade is applied
            placed = await dave.post("/orders", json=close)
            if placed.status_code == 201:
                break
            await trio.sleep(0.01)
        assert placed.status_code == 201, placed.text
        body = placed.json()
        # Asked for 3, long 1: the order is for the position.
        assert (body["quantity"], body["reduce_only"], body["status"]) == ("1", True, "open")
        # An ordinary order closes the position: the reduce-only one has nothing left.
        assert (await bob.post("/orders", json=perp | {"side": "buy", "price": "990"})).is_success
        assert (await dave.post("/orders", json=perp | {"side": "sell", "price": "990"})).is_success
        for _ in range(100):
            shown = (await dave.get(f"/orders/{body['order_id']}")).json()
            if shown["status"] == "cancelled":
                break
            await trio.sleep(0.01)
        assert (shown["status"], shown["reason"], shown["reduce_only"]) == (
            "cancelled",
            "reduce_only",
            True,
        )
        # An amend past the collateral is refused as a risk rejection.
        resting = (await dave.post("/orders", json=perp | {"side": "buy", "price": "900"})).json()
        amended = await dave.patch(f"/orders/{resting['order_id']}", json={"quantity": "5"})
        assert amended.status_code == 422, amended.text
        assert amended.json()["error"]["code"] == "insufficient_margin"
    async with server.client() as anonymous:
        document = (await anonymous.get(server.url + "/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    field = schemas["OrderBody"]["properties"]["reduce_only"]
    assert (field["type"], field["default"]) == ("boolean", False)
    assert "reduce_only" in schemas["Order"]["required"]


async def test_a_400_names_its_field_in_queries_and_for_the_admin_key(server: Server) -> None:
    async with server.client() as anonymous, server.client(ADMIN) as admin:
        for depth in ("0", "x", "²"):
            response = await anonymous.get("/orderbook/BTC_AIT", params={"depth": depth})
            assert response.status_code == 400, response.text
            assert response.json()["error"]["field"] == "depth"
        placed = await admin.post("/orders", json=order("sell", "1", "30000"))
        assert placed.status_code == 400, placed.text
        assert placed.json()["error"]["field"] == "user_id"
        listed = await admin.delete("/orders", params={"symbol": "BTC_AIT"})
        assert (listed.status_code, listed.json()["error"]["field"]) == (400, "user_id")


async def test_an_amend_that_changes_nothing_is_a_400_naming_the_field_and_why(
    server: Server,
) -> None:
    async with server.client(server.keys[BOB]) as bob, server.client(server.keys[ALICE]) as alice:
        resting = (await bob.post("/orders", json=order("sell", "1", "30000"))).json()
        await alice.post("/orders", json=order("buy", "0.25", "30000"))
        path = f"/orders/{resting['order_id']}"
        cases = [
            ({"quantity": "1"}, "quantity", "is already the order's quantity (1)"),
            ({"quantity": "1", "price": "30000"}, "quantity", "changes nothing"),
            ({"price": "30000"}, "price", "is already the order's price (30000)"),
            ({"quantity": "0.25"}, "quantity", "must exceed the 0.25 already filled"),
        ]
        for body, field, says in cases:
            response = await bob.patch(path, json=body)
            assert response.status_code == 400, (body, response.text)
            error = response.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_input", field), (body, error)
            assert says in error["message"], (body, error)
        stop = {"symbol": "BTC_AIT", "side": "sell", "type": "stop", "quantity": "1",
                "stop_price": "100"}  # fmt: skip
        pending = (await bob.post("/orders", json=stop)).json()
        priced = await bob.patch(f"/orders/{pending['order_id']}", json={"price": "99"})
        assert (priced.status_code, priced.json()["error"]["field"]) == (400, "price")
        assert (await bob.patch(path, json={"quantity": "2"})).status_code == 200


async def test_per_user_routes_are_404_for_an_unknown_user_with_the_admin_key(
    server: Server,
) -> None:
    paths = ["balances", "orders", "trades", "risk-profile", "history/orders", "history/trades"]
    async with server.client(ADMIN) as admin, server.client(server.keys[ALICE]) as alice:
        for path in paths:
            response = await admin.get(f"/users/nobody/{path}")
            assert response.status_code == 404, (path, response.text)
            assert response.json()["error"]["code"] == "unknown_user", path
            assert (await admin.get(f"/users/{ALICE}/{path}")).status_code == 200, path
            assert (await alice.get(f"/users/nobody/{path}")).status_code == 403, path
        cancelled = await admin.delete("/orders", params={"user_id": "nobody"})
        assert (cancelled.status_code, cancelled.json()["error"]["code"]) == (404, "unknown_user")
        order = {"symbol": "BTC_AIT", "side": "buy", "type": "limit", "quantity": "0.1",
                 "price": "30000"}  # fmt: skip
        placed = await admin.post("/orders", json={**order, "user_id": "nobody"})
        assert (placed.status_code, placed.json()["error"]["code"]) == (404, "unknown_user")
        checked = await admin.post("/risk/check", json={"user_id": "nobody", "order": order})
        assert (checked.status_code, checked.json()["error"]["code"]) == (404, "unknown_user")
        assert (await admin.post("/orders", json={**order, "user_id": ALICE})).status_code == 201
        mine = (await alice.get(f"/users/{ALICE}/orders")).json()["orders"]
        assert [o["order_id"] for o in mine] == ["1"]  # the refused order took no id


async def test_an_owner_is_an_existing_user_and_linked_accounts_trades_are_flagged(
    server: Server,
) -> None:
    async with server.client(ADMIN) as admin:
        unknown = await admin.post("/admin/users", json={"user_id": "acme_a", "owner": "acme"})
        assert unknown.status_code == 400, unknown.text
        error = unknown.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_input", "owner")
        assert "no user acme" in error["message"]
        assert (await admin.post("/admin/users", json={"user_id": "acme"})).status_code == 201
        keys = {}
        for user, asset in (("acme_a", "AIT"), ("acme_b", "BTC")):
            created = await admin.post("/admin/users", json={"user_id": user, "owner": "acme"})
            assert created.status_code == 201, created.text
            assert created.json()["owner"] == "acme"
            keys[user] = created.json()["api_key"]
            move = {"user_id": user, "asset": asset, "amount": "100000"}
            assert (await admin.post("/admin/deposits", json=move)).status_code == 200
        async with server.client(keys["acme_b"]) as b, server.client(keys["acme_a"]) as a:
            assert (await b.post("/orders", json=order("sell", "1", "30000"))).status_code == 201
            assert (await a.post("/orders", json=order("buy", "1", "30000"))).status_code == 201
        alerts = (await admin.get("/surveillance/alerts")).json()["alerts"]
    linked = [x for x in alerts if x["kind"] == "linked_accounts_trade"]
    assert [(x["owner"], x["buyer"], x["seller"]) for x in linked] == [("acme", "acme_a", "acme_b")]
