"""``create_app(engine, admin_key)``: the Quart-Trio app in front of a running engine."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from importlib import resources
from typing import Any, cast

import msgspec
from flask.json.provider import DefaultJSONProvider, JSONProvider
from hypercorn.middleware import ProxyFixMiddleware
from quart import Quart, Response, abort, request
from quart_schema import DataSource, QuartSchema, hide
from quart_schema.openapi import OpenAPIProvider
from quart_trio import QuartTrio
from werkzeug.routing import Rule

from trading_engine.actors.facade import Engine
from trading_engine.api import (
    admin,
    algos,
    binance,
    history,
    market,
    order_lists,
    orders,
    ui,
    ws,
)
from trading_engine.api.auth import authenticate
from trading_engine.api.bodies import schema_of
from trading_engine.api.context import ApiContext
from trading_engine.api.drain import Drain
from trading_engine.api.errors import ApiError, answer_errors, error_response
from trading_engine.api.frames import install_send_capture
from trading_engine.api.http_server import MAX_BODY_BYTES
from trading_engine.api.limits import retry_after
from trading_engine.api.metrics import Metrics
from trading_engine.api.models import REQUIRED_ROLE, ROLE_ATTRIBUTE
from trading_engine.api.secrets import SecretBox
from trading_engine.api.ws_guard import WsConnections
from trading_engine.metrics import Figures, engine_figures
from trading_engine.storage.limits import Limiter
from trading_engine.storage.read_tables import ReadTables

__all__ = ["OPENAPI_PATH", "create_app"]

OPENAPI_PATH = "/api/v1/openapi.json"
_API_KEY = {"type": "apiKey", "in_": "header", "name": "X-API-Key"}
_DOCS_ASSETS = "/docs/assets/"
_ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
"""The Swagger UI files /docs loads, from the swagger-ui-py wheel: no CDN, so it works offline."""
_TEXT = {
    "description": "Prometheus text format",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


_METRICS_TOKEN = {
    "type": "http",
    "scheme": "bearer",
    "description": "METRICS_TOKEN, for /metrics, where the server sets one",
}


class _Provider(OpenAPIProvider):
    """quart-schema's document, with ``/metrics`` answering text rather than JSON, open or
    behind its own bearer token, each keyed route's required role (``documented``) in
    ``x-required-role`` and its description, and the order bodies' schemas from their
    msgspec Structs."""

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        required = getattr(self._app.view_functions[rule.endpoint], ROLE_ATTRIBUTE, None)
        if required is not None:
            role, access = required
            for item in paths.values():
                for operation in item.values():
                    operation[REQUIRED_ROLE] = role
                    if access:
                        described = operation.get("description", "")
                        operation["description"] = f"{described}\n\n{access}".strip()
        return paths, components

    def build_request_body(
        self, model: type[Any], source: DataSource
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if not (isinstance(model, type) and issubclass(model, msgspec.Struct)):
            return super().build_request_body(model, source)
        # quart-schema keeps only the first of a Struct's schemas, not the enums and
        # nested bodies it refers to: those come from the Struct here (``bodies.py``).
        schema, components = schema_of(model)
        return {"content": {"application/json": {"schema": schema}}}, components

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        metrics = document["paths"].get("/metrics", {}).get("get")
        if metrics is not None:
            # quart-schema keys a response by its status as a number: 401 from metrics.py.
            metrics["responses"] = {"200": _TEXT, "401": metrics["responses"][401]}
            metrics["security"] = [{}, {"MetricsToken": []}]
            document["components"]["securitySchemes"]["MetricsToken"] = _METRICS_TOKEN
        return document


class _Json(DefaultJSONProvider):
    """``jsonify`` through msgspec: the bytes Flask's provider writes out of debug mode
    (compact, keys sorted, a newline after) but for non-ASCII text, sent as UTF-8 rather
    than escaped, in a tenth of the time. Anything msgspec cannot encode goes to
    ``fallback``, quart-schema's provider, which knows the models."""

    def __init__(self, app: Quart, fallback: JSONProvider) -> None:
        super().__init__(app)
        self._fallback = fallback

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return self._fallback.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return self._fallback.loads(s, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = msgspec.json.encode(obj, order="sorted")
        except (TypeError, UnicodeEncodeError):  # a model, a date, a lone surrogate
            return cast(Response, self._fallback.response(obj))
        return Response(body + b"\n", mimetype=self.mimetype)


def create_app(
    engine: Engine,
    admin_key: str,
    limiter: Limiter | None = None,
    drain: Drain | None = None,
    read_tables: ReadTables | None = None,
    metrics_token: str | None = None,
    secret_box: SecretBox | None = None,
    figures: Sequence[Figures] | None = None,
    max_ws_per_address: int = 50,
    trusted_proxy_hops: int = 0,
) -> QuartTrio:
    """The app; ``limiter`` rate-limits every request but health checks, every WebSocket
    upgrade and every WebSocket message (None: no limits); ``drain`` counts what is in
    flight and closes the feeds when the server stops; ``read_tables`` answer history
    (None: history is 503 ``history_unavailable``); ``metrics_token`` is the bearer token
    ``/metrics`` then needs (None: open); ``secret_box`` seals the API secrets of the
    Binance dialect with the server key (None: a key for this process only, so secrets
    made now are unreadable after a restart); ``figures`` are what ``/metrics`` shows
    beside the HTTP figures (None: the in-process engine's and ``read_tables``',
    ``metrics.engine_figures``); ``max_ws_per_address`` caps the WebSocket connections one
    client address holds at once (0: no cap; ``api/ws_guard.py``); ``trusted_proxy_hops``
    is how many proxies in front of the server are believed when their ``X-Forwarded-For``
    names the client (0: none, the peer is the client)."""
    app = QuartTrio("trading_engine")
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = None
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    drain = drain or Drain()
    app.config["CLOSING"] = drain.closing
    app.config["LIMITER"] = limiter  # the feed's messages take from the same buckets
    app.config[WsConnections.CONFIG_KEY] = WsConnections(max_ws_per_address)
    if figures is None:
        figures = engine_figures(engine, read_tables)
    metrics = Metrics(figures, metrics_token)
    app.config["METRICS"] = metrics
    metrics.install(app)
    ApiContext(engine, admin_key, read_tables, secret_box or SecretBox.generate()).install(
        app.config
    )
    for area in (orders, order_lists, algos, history, market, admin, ws, ui):
        app.register_blueprint(area.blueprint)
    binance.install(app)
    install_send_capture(app)
    app.config["QUART_SCHEMA_SWAGGER_JS_URL"] = _DOCS_ASSETS + "swagger-ui-bundle.js"
    app.config["QUART_SCHEMA_SWAGGER_CSS_URL"] = _DOCS_ASSETS + "swagger-ui.css"

    @app.get(_DOCS_ASSETS + "<name>")
    @hide
    async def swagger_asset(name: str) -> Response:
        content_type = _ASSET_TYPES.get(name)
        if content_type is None:
            abort(404)
        body = (resources.files("swagger_ui") / "static" / name).read_bytes()
        response = Response(body, content_type=content_type)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    QuartSchema(
        app,
        openapi_path=OPENAPI_PATH,
        swagger_ui_path="/docs",
        redoc_ui_path=None,
        scalar_ui_path=None,
        info={"title": "trading-engine", "version": "0.1.0"},
        security_schemes={"ApiKey": _API_KEY},
        security=[{"ApiKey": []}],
        conversion_preference="pydantic",
        openapi_provider_class=_Provider,
    )
    app.json = _Json(app, app.json)

    if limiter is not None:

        @app.before_request
        async def rate_limit() -> Response | None:
            if request.path in ("/health", "/ready", "/metrics"):
                return None
            if request.path.startswith(binance.PREFIX):
                return None  # the dialect limits with the same limiter, in its own shape
            # The caller's own bucket once its key is known to be a key: random keys, each
            # a bucket of their own, would have made the limit per request.
            bucket = f"ip:{request.remote_addr}"
            if request.headers.get("X-API-Key"):
                with contextlib.suppress(ApiError):
                    bucket = (await authenticate(engine, admin_key)).bucket
            wait = await limiter.take(bucket)
            if wait <= 0:
                return None
            response = error_response(429, "rate_limited", "too many requests: slow down")
            response.headers["Retry-After"] = retry_after(wait)
            return response

    answer_errors(app)
    drain.install(app)
    if trusted_proxy_hops:
        # Hypercorn's middleware: the client address the proxies report becomes the
        # scope's, which every ``remote_addr`` reads. Outermost, as it copies the scope,
        # before ``install_send_capture`` puts the connection's ``send`` in it.
        app.asgi_app = ProxyFixMiddleware(  # type: ignore[method-assign]
            app.asgi_app, mode="legacy", trusted_hops=trusted_proxy_hops
        )
    return app
