"""The web UI: one page at ``/`` and its files at ``/ui/<name>``, hidden from the OpenAPI document.

The page (``static/``, package data) is plain HTML, JavaScript and CSS with
no build step and nothing from a CDN, so it works offline. It uses only the
public API: REST under ``/api/v1/trading`` and the WebSocket feed.
"""

from __future__ import annotations

from importlib import resources

from quart import Quart, Response, abort
from quart_schema import hide

__all__ = ["ASSETS", "register"]

ASSETS = "/ui/"
_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Only this server's own files and connections: the page keeps an API key in localStorage."""


def _file(name: str) -> Response:
    body = (resources.files("trading_engine.api") / "static" / name).read_bytes()
    response = Response(body, content_type=_TYPES[name])
    # Revalidate every load: the files change with the package, and they are small.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def register(app: Quart) -> None:
    @app.get("/")
    @hide
    async def ui_page() -> Response:
        response = _file("index.html")
        response.headers["Content-Security-Policy"] = _POLICY
        return response

    @app.get(ASSETS + "<name>")
    @hide
    async def ui_asset(name: str) -> Response:
        if name not in _TYPES or name == "index.html":
            abort(404)
        return _file(name)
