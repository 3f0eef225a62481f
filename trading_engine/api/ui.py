"""The web UI: one page at ``/`` and its files at ``/ui/<name>``, hidden from the OpenAPI document.

The page (``static/``, package data) is HTML, CSS and native ES modules with
no build step and nothing from a CDN, so it works offline. It uses only the
public API: REST under ``/api/v1/trading`` and the WebSocket feed.

``lightweight-charts.mjs`` is TradingView's chart library, which ``make
install`` copies from the npm package that ``package-lock.json`` pins (npm
checks its integrity); without it the page still trades, with no charts.

Every file is revalidated on each load (``no-cache``) against a strong
``ETag`` (a hash of its bytes), so a reload costs a 304 per file, and a new
release of the package is picked up at once.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from quart import Blueprint, Response, abort, request
from quart_schema import hide

__all__ = ["ASSETS", "FILES", "blueprint"]

ASSETS = "/ui/"
_JS = "text/javascript; charset=utf-8"
FILES = {
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "app.js": _JS,
    "api.js": _JS,
    "dom.js": _JS,
    "decimal.js": _JS,
    "feed.js": _JS,
    "book.js": _JS,
    "charts.js": _JS,
    "account.js": _JS,
    "ticket.js": _JS,
    "lightweight-charts.mjs": _JS,
}
"""Each file the UI serves, and its content type."""

_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Only this server's own files and connections: the page keeps an API key in localStorage."""


async def _file(name: str) -> Response:
    path = resources.files("trading_engine.api") / "static" / name
    if not path.is_file():  # the chart library before `make install` copied it
        abort(404)
    body = path.read_bytes()
    response = Response(body, content_type=FILES[name])
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    return await response.make_conditional(request)


blueprint = Blueprint("ui", __name__)


@blueprint.get("/")
@hide
async def ui_page() -> Response:
    response = await _file("index.html")
    response.headers["Content-Security-Policy"] = _POLICY
    return response


@blueprint.get(ASSETS + "<name>")
@hide
async def ui_asset(name: str) -> Response:
    if name not in FILES or name == "index.html":
        abort(404)
    return await _file(name)
