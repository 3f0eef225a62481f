"""The web UI over real HTTP: the page at ``/``, the files it loads, none of it in OpenAPI.

What the page does in a browser is tested in ``tests/browser``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import trio

from tests.api.conftest import Server
from tests.api.test_rest import list_perp_and_fund
from trading_engine.api.app import OPENAPI_PATH
from trading_engine.api.ui import FILES

TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
IMPORT = re.compile(r'^import .* from "\./([^"]+)";$|import\("\./([^"]+)"\)', re.MULTILINE)


class Page(HTMLParser):
    """The URLs a page loads (script src, link href) and the ones it links to (a href);
    the attributes of its form fields by name, and of its other elements by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []
        self.fields: dict[str, dict[str, str | None]] = {}
        self.ids: dict[str, dict[str, str | None]] = {}
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("input", "select") and found.get("name"):
            self.fields[found["name"] or ""] = found
        if found.get("id"):
            self.ids[found["id"] or ""] = found
        if tag == "script" and found.get("src"):
            self.loads.append(found["src"] or "")
        elif tag == "link" and found.get("href"):
            self.loads.append(found["href"] or "")
        elif tag == "a" and found.get("href"):
            self.links.append(found["href"] or "")


async def fetch(server: Server, *paths: str) -> list[httpx.Response]:
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as anonymous:
            return [await anonymous.get(path) for path in paths]


async def test_the_page_at_root_is_html_that_loads_only_files_the_server_serves(
    server: Server,
) -> None:
    [page] = await fetch(server, "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    loads = Page(page.text).loads
    assert sorted(loads) == ["/ui/app.js", "/ui/favicon.svg", "/ui/style.css"]
    for path, response in zip(loads, await fetch(server, *loads), strict=True):
        assert response.status_code == 200, path
        assert response.headers["content-type"] == TYPES[path[path.rindex(".") :]], path
        assert response.content, path


async def test_every_module_the_script_imports_is_served_as_javascript(server: Server) -> None:
    seen: set[str] = set()
    waiting = ["app.js"]
    while waiting:
        name = waiting.pop()
        seen.add(name)
        [module] = await fetch(server, "/ui/" + name)
        assert module.status_code == 200, name
        assert module.headers["content-type"] == TYPES[name[name.rindex(".") :]], name
        if name != "lightweight-charts.mjs":  # the library imports nothing
            imported = {a or b for a, b in IMPORT.findall(module.text)}
            waiting += sorted(imported - seen)
    assert seen == {name for name in FILES if name.endswith((".js", ".mjs"))}
    assert "lightweight-charts.mjs" in seen, "the chart library, from the server itself"


async def test_ui_files_carry_an_etag_and_a_repeat_load_is_a_304(server: Server) -> None:
    paths = ["/", "/ui/app.js", "/ui/favicon.svg", "/ui/lightweight-charts.mjs"]
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as anonymous:
            for path in paths:
                first = await anonymous.get(path)
                assert first.status_code == 200, path
                assert first.headers["cache-control"] == "no-cache", path
                tag = first.headers["etag"]
                again = await anonymous.get(path, headers={"If-None-Match": tag})
                assert (again.status_code, again.content) == (304, b""), path
                assert again.headers["etag"] == tag, path
                other = await anonymous.get(path, headers={"If-None-Match": '"stale"'})
                assert other.status_code == 200, path
                assert other.content == first.content, path


async def test_the_script_talks_to_the_api_prefix_and_feed_the_server_serves(
    server: Server,
) -> None:
    [api, feed] = await fetch(server, "/ui/api.js", "/ui/feed.js")
    assert 'export const API = "/api/v1/trading";' in api.text
    assert "${API}/ws`" in feed.text
    [symbols] = await fetch(server, "/api/v1/trading/symbols")
    assert symbols.status_code == 200


async def test_the_order_form_sends_reduce_only_on_margin_symbols_only(server: Server) -> None:
    key = await list_perp_and_fund(server, "dave", "200")
    [page, document] = await fetch(server, "/", OPENAPI_PATH)
    found = Page(page.text)
    order_body = document.json()["components"]["schemas"]["OrderBody"]["properties"]
    # The bracket's and the OCO's fields make the other members of a POST /order-lists;
    # the trailing distance's unit sends it as trailing_delta or trailing_bps.
    lists = {"bracket", "tp_price", "sl_price", "oco", "oco_stop"}
    fields = set(found.fields) - lists - {"trailing_unit"}
    assert fields <= set(order_body), "a form field not in POST /orders"
    assert lists | {"trailing_unit"} <= set(found.fields)
    assert {"trailing_delta", "trailing_bps"} <= set(order_body)
    box = found.fields["reduce_only"]
    assert (box["type"], "disabled" in box) == ("checkbox", True)
    # Shown once a margin symbol is picked (tests/browser: the ticket on PERP_AIT).
    assert "hidden" in found.ids["reduce-only"]
    async with server.client(key) as dave:
        symbols = (await dave.get("/symbols")).json()["symbols"]
        modes = {s["symbol"]: s["mode"] for s in symbols}
        assert (modes["PERP_AIT"], modes["BTC_AIT"]) == ("margin", "spot")
        body: dict[str, object] = {
            "side": "sell",
            "type": "limit",
            "quantity": "1",
            "price": "1000",
        }
        body |= {"time_in_force": "GTC", "reduce_only": True}
        margin = await dave.post("/orders", json=body | {"symbol": "PERP_AIT"})
        spot = await dave.post("/orders", json=body | {"symbol": "BTC_AIT", "price": "30000"})
    # Dave holds no position: the API took the flag and risk applied it.
    assert margin.status_code == 422, margin.text
    assert margin.json()["error"]["reasons"] == ["reduce_only_would_increase"]
    # Why the box is not offered on a spot symbol.
    assert spot.status_code == 400, spot.text
    assert spot.json()["error"]["field"] == "reduce_only"


async def test_the_page_links_to_the_docs_the_openapi_document_and_the_chart_credit(
    server: Server,
) -> None:
    [page] = await fetch(server, "/")
    links = Page(page.text).links
    # Lightweight Charts' license asks for a link to TradingView on the page.
    credit = "https://www.tradingview.com/"
    assert sorted(links) == sorted(["/docs", OPENAPI_PATH, credit])
    local = [link for link in links if link != credit]
    for path, response in zip(local, await fetch(server, *local), strict=True):
        assert response.status_code == 200, path


async def test_the_ui_is_absent_from_the_openapi_document(server: Server) -> None:
    [document] = await fetch(server, OPENAPI_PATH)
    paths = document.json()["paths"]
    assert paths, "the document lists the API"
    assert "/" not in paths
    assert [p for p in paths if p.startswith("/ui")] == []


async def test_an_unknown_ui_file_is_a_404_in_the_error_shape(server: Server) -> None:
    responses = await fetch(
        server,
        "/ui/nope.js",
        "/ui/index.html",
        "/ui/..%2Fui.py",
        "/ui/",
        "/ui/APP.JS",
        "/ui/package.json",
        "/ui/..%2F..%2F..%2Fpackage.json",
    )
    assert [r.status_code for r in responses] == [404] * 7
    for response in responses:
        assert response.json()["error"]["code"] == "not_found"
