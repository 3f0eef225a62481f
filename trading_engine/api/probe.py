"""The engine process's own small listener (``trading-engine engine --metrics-port``).

``trading-engine engine`` serves no API; this app answers only what an
operator scrapes and probes, served by Hypercorn's trio worker as the API is:

- ``GET /metrics``: the process's figures (``scrape``), answered as the API's
  ``/metrics`` is (``api/metrics.py``'s ``metrics_response``: the same
  ``METRICS_TOKEN`` rule);
- ``GET /health``: 200 while the process runs, recovery included;
- ``GET /ready``: 200 with ``ready``'s body once the engine takes calls; while
  it does not, ``ready`` raises, answered 503 in the error shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from trading_engine.api.errors import answer_errors
from trading_engine.api.metrics import metrics_response
from trading_engine.metrics import Scrape

__all__ = ["create_probe_app"]


def create_probe_app(
    scrape: Scrape, ready: Callable[[], Awaitable[dict[str, Any]]], token: str | None
) -> QuartTrio:
    """The listener's app: ``/metrics`` shows ``scrape`` (to the bearer of ``token``, if
    there is one), ``/ready`` answers what ``ready`` returns, or the error it raises."""
    app = QuartTrio("trading_engine.probe")
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = None

    @app.get("/health")
    async def health() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/ready")
    async def is_ready() -> Response:
        return jsonify(await ready())

    @app.get("/metrics")
    async def metrics() -> Response:
        return await metrics_response(scrape, token)

    answer_errors(app)
    return app
