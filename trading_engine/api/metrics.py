"""``/metrics`` in the Prometheus text format, and one JSON log line per request.

Counters and histograms live in a registry of the app's own (several apps
may run in one test process). What the engine counts (journal batches,
WebSocket subscribers) is read when Prometheus scrapes.

The request latency histogram's labels take few values whatever clients
send, so that nobody can grow the scrape (each label set is a series):
``method`` is one of the standard methods or ``other``, ``route`` the
matched route's rule or ``unmatched``; ``status`` is the status answered.
With a token (``METRICS_TOKEN``), ``/metrics`` answers only a request with
``Authorization: Bearer <token>``, else 401 in the error shape.

Every request gets a request id (the client's ``X-Request-ID``, else a new
one), echoed in the response's ``X-Request-ID`` and in its log line.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from quart import Quart, Response, g, request
from quart_schema import document_response

from trading_engine.actors.facade import Engine
from trading_engine.api.errors import error_response
from trading_engine.api.models import ErrorResponse
from trading_engine.storage.read_tables import ReadTables

__all__ = ["JsonFormatter", "Metrics"]

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
    """The app's registry, its request hooks and ``/metrics`` (``token``: see the module)."""

    def __init__(
        self, engine: Engine, read_tables: ReadTables | None = None, token: str | None = None
    ) -> None:
        self.token = token
        self.registry = CollectorRegistry()
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
        self._latencies: dict[tuple[str, str, int], Histogram] = {}
        """The latency histogram's child per (method, route, status): ``labels()`` costs more
        than the observation itself."""
        self.subscribers = 0
        """WebSocket subscriptions, as the market-data actor counted them at the last scrape."""
        self.registry.register(_EngineCollector(engine, self, read_tables))

    def _latency_of(self, method: str, rule: str, status: int) -> Histogram:
        key = (method, rule, status)
        child = self._latencies.get(key)
        if child is None:
            child = self._latencies[key] = self.latency.labels(method, rule, str(status))
        return child

    def install(self, app: Quart, engine: Engine) -> None:
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
            if self.token is not None and (refused := _refuse(self.token)) is not None:
                return refused
            self.subscribers = await engine.subscribers()
            return Response(
                generate_latest(self.registry), content_type="text/plain; version=0.0.4"
            )


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


class _EngineCollector(Collector):
    def __init__(self, engine: Engine, metrics: Metrics, read_tables: ReadTables | None) -> None:
        self._engine = engine
        self._metrics = metrics
        self._read_tables = read_tables

    def collect(self) -> Iterator[Metric]:
        stats = self._engine.journal_stats
        yield CounterMetricFamily("te_journal_writes", "Journal transactions", value=stats.batches)
        yield CounterMetricFamily("te_journal_events", "Events written", value=stats.events)
        yield CounterMetricFamily(
            "te_journal_commits", "Commits (symbol batches) written", value=stats.commands
        )
        sizes = GaugeMetricFamily(
            "te_journal_batch_writes", "Writes by commits per write (power-of-two bucket)",
            labels=["commits_le"],
        )  # fmt: skip
        for bucket, count in sorted(stats.batch_sizes.items()):
            sizes.add_metric([str(bucket)], count)
        yield sizes
        yield CounterMetricFamily(
            "te_journal_failures",
            "Failed journal writes (storage unavailable)",
            value=stats.failures,
        )
        yield GaugeMetricFamily(
            "te_websocket_subscribers",
            "WebSocket connections with a subscription, in this process",
            value=self._metrics.subscribers,
        )
        journal = self._read_tables
        if journal is not None:
            yield GaugeMetricFamily(
                "te_read_tables_lag_seconds",
                "Age of the oldest commit not yet projected into the read tables (0: caught up)",
                value=journal.read_tables_lag(),
            )
            yield GaugeMetricFamily(
                "te_read_tables_last_id", "Last journal id in the read tables",
                value=journal.projected_id,
            )  # fmt: skip
            yield CounterMetricFamily(
                "te_read_tables_failures",
                "Projections into the read tables that failed (retried)",
                value=journal.projection_failures,
            )


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
