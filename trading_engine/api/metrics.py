"""``/metrics`` in the Prometheus text format, and one JSON log line per request.

Counters and histograms live in a registry of the app's own (several apps
may run in one test process), beside the figures of what else runs in the
process (``trading_engine/metrics.py``: the engine's, in ``serve``; the link
to the engine, in a gateway), read when Prometheus scrapes.

The request latency histogram's labels take few values whatever clients
send, so that nobody can grow the scrape (each label set is a series):
``method`` is one of the standard methods or ``other``, ``route`` the
matched route's rule or ``unmatched``; ``status`` is the status answered.
With a token (``METRICS_TOKEN``), ``/metrics`` answers only a request with
``Authorization: Bearer <token>``, else 401 in the error shape
(``metrics_response``, which the engine process's own listener answers too).

Every request gets a request id (the client's ``X-Request-ID``, else a new
one), echoed in the response's ``X-Request-ID`` and in its log line.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from prometheus_client import Counter, Histogram
from quart import Quart, Response, g, request
from quart_schema import document_response

from trading_engine.api.errors import error_response
from trading_engine.api.models import ErrorResponse
from trading_engine.metrics import Figures, Scrape

__all__ = ["JsonFormatter", "Metrics", "metrics_response"]

log = logging.getLogger("trading_engine.http")

_RUN = secrets.token_hex(4)
"""This process's prefix for request ids: unique across processes and restarts."""
_request_numbers = itertools.count(1)

METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
"""The methods the latency histogram names (RFC 9110's and PATCH); any other is ``other``."""


def new_request_id() -> str:
    """A request id unique to this request: the process prefix and a counter."""
    return f"{_RUN}-{next(_request_numbers):x}"


class Metrics:
    """The app's registry with ``figures`` in it, its request hooks and ``/metrics``
    (``token``: see the module)."""

    def __init__(self, figures: Sequence[Figures], token: str | None = None) -> None:
        self.token = token
        self.scrape = Scrape(*figures)
        self.registry = self.scrape.registry
        self.latency = Histogram(
            "te_http_request_seconds", "HTTP request latency", ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        )  # fmt: skip
        self.orders = Counter(
            "te_orders_total", "Orders submitted, by outcome", ["outcome"], registry=self.registry
        )
        self.rejections = Counter(
            "te_order_rejections_total", "Orders rejected, by reason", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self.trades = Counter(
            "te_trades_total", "Trades made by submitted orders", registry=self.registry
        )
        self.ws_refused = Counter(
            "te_websocket_refused_total",
            "WebSocket upgrades refused before the handshake, by reason", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self._latencies: dict[tuple[str, str, int], Histogram] = {}
        """The latency histogram's child per (method, route, status): ``labels()`` costs more
        than the observation itself."""

    def _latency_of(self, method: str, rule: str, status: int) -> Histogram:
        key = (method, rule, status)
        child = self._latencies.get(key)
        if child is None:
            child = self._latencies[key] = self.latency.labels(method, rule, str(status))
        return child

    def install(self, app: Quart) -> None:
        @app.before_request
        async def start() -> None:
            g.started = time.perf_counter()
            g.request_id = request.headers.get("X-Request-ID") or new_request_id()

        @app.after_request
        async def finish(response: Response) -> Response:
            seconds = time.perf_counter() - getattr(g, "started", time.perf_counter())
            method = request.method if request.method in METHODS else "other"
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            self._latency_of(method, rule, response.status_code).observe(seconds)
            request_id = getattr(g, "request_id", "")
            response.headers["X-Request-ID"] = request_id
            log.info(
                "request",
                extra={"fields": {"request_id": request_id, "method": request.method,
                                  "path": request.path, "status": response.status_code,
                                  "ms": round(seconds * 1000, 3)}},
            )  # fmt: skip
            return response

        @app.get("/metrics")
        @document_response(ErrorResponse, 401)
        async def metrics() -> Response:
            return await metrics_response(self.scrape, self.token)


async def metrics_response(scrape: Scrape, token: str | None) -> Response:
    """The answer to ``GET /metrics``: ``scrape``'s text, or the 401 for a request without
    ``token`` (if there is one)."""
    if token is not None and (refused := _refuse(token)) is not None:
        return refused
    return Response(await scrape.render(), content_type="text/plain; version=0.0.4")


def _refuse(token: str) -> Response | None:
    """The 401 for a request without ``Authorization: Bearer <token>``, else None."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        message = "missing Authorization: Bearer header: /metrics needs the metrics token"
    elif not hmac.compare_digest(given.strip().encode(), token.encode()):
        message = "the bearer token is not the metrics token"
    else:
        return None
    response = error_response(401, "unauthenticated", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return msgspec.json.encode(entry, enc_hook=str).decode()
