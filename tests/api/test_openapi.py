"""The OpenAPI document over real HTTP, and a bounded schemathesis run against the server."""

from __future__ import annotations

import re
from typing import Any

import hypothesis
import hypothesis.errors
import trio
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.openapi import from_url
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.api.conftest import ADMIN, Server
from trading_engine.api import binance
from trading_engine.api.app import OPENAPI_PATH, create_app

BODIES = {
    ("post", "/orders"): "OrderBody",
    ("patch", "/orders/{order_id}"): "AmendBody",
    ("post", "/risk/check"): "RiskCheckBody",
    ("post", "/admin/users"): "NewUserBody",
    ("post", "/admin/deposits"): "MoveBody",
    ("post", "/admin/withdrawals"): "MoveBody",
    ("post", "/admin/symbols"): "NewSymbolBody",
    ("post", "/admin/symbols/{symbol}/halt"): "HaltBody",
    ("post", "/settlement/trigger"): "SettleBody",
    ("post", "/orders/cancel-all-after"): "CancelAllAfterBody",
    ("post", "/algos"): "AlgoBody",
}
ASSETS = "/docs/assets/"
HIDDEN = {"static", "openapi", "swagger_ui", "swagger_asset", "ui.ui_page", "ui.ui_asset"}
"""Endpoints left out of the document on purpose: it, /docs and the web UI."""
EXAMPLES_PER_OPERATION = 40  # per operation and mode: about 15 s in all


def routes(server: Server) -> set[tuple[str, str]]:
    """Every HTTP route of the app but the document and docs page themselves, and the
    Binance dialect's (documented by Binance's own API, and in docs/ccxt.md)."""
    app = create_app(server.engine, ADMIN)
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.websocket or rule.endpoint in HIDDEN or rule.rule.startswith(binance.PREFIX):
            continue
        path = re.sub(r"<(?:[^:>]*:)?([^>]+)>", r"{\1}", rule.rule)
        out |= {(m.lower(), path) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    return out


async def test_the_document_is_openapi_3_1_with_every_route_and_its_schemas(
    server: Server,
) -> None:
    async with server.client() as anonymous:
        response = await anonymous.get(server.url + OPENAPI_PATH)
        docs = await anonymous.get(server.url + "/docs")
    assert response.status_code == 200
    assert docs.status_code == 200
    assert OPENAPI_PATH in docs.text
    document: dict[str, Any] = response.json()
    assert document["openapi"].startswith("3.1")
    listed = {(m, p) for p, item in document["paths"].items() for m in item}
    assert listed == routes(server)
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key"
    }  # fmt: skip
    assert document["security"] == [{"ApiKey": []}]
    paths = document["paths"]
    p = "/api/v1/trading"
    for (method, path), model in BODIES.items():
        body = paths[p + path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert (body["title"], body["additionalProperties"]) == (model, False), (method, path)
    for path, item in paths.items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            if path.startswith(p) and not path.endswith(("/health", "/ready")):
                assert "400" in operation["responses"], (method, path)
    submit = paths[p + "/orders"]["post"]["responses"]
    for status, model in (("201", "Order"), ("200", "Order"), ("422", "ErrorResponse")):
        assert submit[status]["content"]["application/json"]["schema"]["title"] == model
    assert paths[p + "/symbols"]["get"]["security"] == []
    order = paths[p + "/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    # quantity, or quote_quantity on a market order: the handler says which is missing
    assert set(order["required"]) == {"symbol", "side", "type"}
    titles = {
        operation["responses"]["200"]["content"]["application/json"]["schema"]["title"]
        for item in paths.values() for operation in item.values()
        if "200" in operation["responses"] and "content" in operation["responses"]["200"]
        and "application/json" in operation["responses"]["200"]["content"]
    }  # fmt: skip
    assert titles >= {"Order", "OrderBook", "Balances", "Symbols", "OrderList", "FillList"}
    switch = paths[p + "/orders/cancel-all-after"]["post"]
    body = switch["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["timeout_ms"]["maximum"] == 86_400_000
    assert body["required"] == ["timeout_ms"]
    answer = switch["responses"]["200"]["content"]["application/json"]["schema"]["title"]
    assert answer == "CancelAllAfter"
    risk = paths[p + "/users/{user_id}/risk-profile"]["get"]["responses"]["200"]
    profile = risk["content"]["application/json"]["schema"]
    assert "cancel_all_after" in profile["required"]


ADMIN_ONLY = {
    ("post", "/admin/users"),
    ("put", "/admin/users/{user_id}/ed25519-key"),
    ("post", "/admin/deposits"),
    ("post", "/admin/withdrawals"),
    ("post", "/admin/symbols"),
    ("post", "/admin/symbols/{symbol}/halt"),
    ("post", "/admin/symbols/{symbol}/resume"),
    ("get", "/surveillance/alerts"),
}


async def test_the_document_names_the_role_each_route_needs(server: Server) -> None:
    """``x-required-role``: ``admin`` on every admin-only route (its description says so,
    and a user's key is 403 there), ``user`` on every other route that needs a key."""
    async with server.client() as anonymous:
        document: dict[str, Any] = (await anonymous.get(server.url + OPENAPI_PATH)).json()
    p = "/api/v1/trading"
    roles: dict[tuple[str, str], str | None] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            role = operation.get("x-required-role")
            roles[method, path.removeprefix(p)] = role
            keyed = any("ApiKey" in need for need in operation.get("security", [{"ApiKey": []}]))
            if not keyed:  # public, or /metrics behind its own token
                assert role is None, (method, path)
            else:
                assert role in ("admin", "user"), (method, path)
            if role == "admin":
                assert "Needs the admin key (role admin)" in operation["description"]
    assert {route for route, role in roles.items() if role == "admin"} == ADMIN_ONLY
    trigger = document["paths"][p + "/settlement/trigger"]["post"]
    assert trigger["x-required-role"] == "user"
    assert "only the trades the user is party to" in trigger["description"]
    assert "the admin key (role admin) any trade" in trigger["description"]
    async with server.client(server.keys["demo_alice"]) as alice:
        for method, path in sorted(ADMIN_ONLY):
            response = await alice.request(
                method, path.format(symbol="BTC_AIT", user_id="demo_alice"), json={}
            )
            assert response.status_code == 403, (method, path, response.text)


async def test_the_docs_page_loads_swagger_ui_from_the_server_itself(server: Server) -> None:
    async with server.client() as anonymous:
        docs = await anonymous.get(server.url + "/docs")
        assets = sorted(re.findall(r'(?:src|href)="([^"]+)"', docs.text))
        assert assets == [ASSETS + "swagger-ui-bundle.js", ASSETS + "swagger-ui.css"]
        js = await anonymous.get(server.url + assets[0])
        css = await anonymous.get(server.url + assets[1])
        missing = await anonymous.get(server.url + ASSETS + "..%2F__init__.py")
        unknown = await anonymous.get(server.url + ASSETS + "index.html")
    assert "cdn" not in docs.text.lower()
    assert js.status_code == css.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert css.headers["content-type"].startswith("text/css")
    assert "SwaggerUIBundle" in js.text
    assert "isOAS31" in js.text, "a Swagger UI that renders OpenAPI 3.1"
    assert missing.status_code == unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


async def test_schema_validation_errors_keep_the_error_shape(server: Server) -> None:
    async with server.client(ADMIN) as admin:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("/orders", {"symbol": "BTC_AIT", "side": "buy", "quantity": "1"}, "type"),
            ("/risk/check", {"order": {"symbol": "BTC_AIT", "colour": 1}}, "order.colour"),
            ("/admin/deposits", {"user_id": "demo_bob", "asset": "AIT", "amount": 1.5e0}, ""),
            ("/admin/symbols/BTC_AIT/halt", {"reason": 7}, "reason"),
            ("/settlement/trigger", {"trade_ids": "x"}, "trade_ids"),
            ("/orders/cancel-all-after", {"user_id": "demo_bob", "timeout_ms": True}, "timeout_ms"),
        ]
        for path, body, field in cases:
            response = await admin.post(path, json=body)
            if not field:  # a JSON float is parsed exactly, as a Decimal, and accepted
                assert response.status_code == 200, response.text
                assert response.json()["available"].endswith(".5")
                continue
            assert response.status_code == 400, (path, response.text)
            error = response.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_input", field), (path, error)


async def test_schemathesis_finds_no_server_errors_and_responses_match_the_schema(
    server: Server,
) -> None:
    """Valid and invalid inputs for every operation: never a 500, always a documented
    status, and every response body matches its schema (errors in the error shape)."""

    def run() -> list[str]:
        schema = from_url(server.url + OPENAPI_PATH)
        failures: list[str] = []
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                failures.append(f"an operation schemathesis could not read: {result.err()}")
                continue
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @hypothesis.settings(
                    max_examples=EXAMPLES_PER_OPERATION,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(hypothesis.HealthCheck),
                )
                @hypothesis.given(case=operation.as_strategy(mode))
                def check(case: Case[Any]) -> None:
                    case.call_and_validate(
                        base_url=server.url,
                        headers={"X-API-Key": ADMIN},
                        checks=[not_a_server_error, response_schema_conformance,
                                status_code_conformance],
                    )  # fmt: skip

                try:
                    check()
                except hypothesis.errors.Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to break
                except Exception as exc:  # noqa: BLE001 - collect every operation's failure
                    failures.append(f"{operation.label} ({mode.value}): {exc}")
        return failures

    with trio.fail_after(60):
        failures = await trio.to_thread.run_sync(run)
    assert not failures, "\n\n".join(failures)
