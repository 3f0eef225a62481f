"""The figures of the split processes (``trading_engine/metrics.py`` has the shared ones).

- ``CommandFigures``: the engine process's command server, ``te_engine_calls_*``.
- ``GatewayFigures``: a gateway's link to the engine, ``te_gateway_*``: the calls
  under way and those that got no usable answer, whether the engine's heartbeat
  is seen, and what its market-data feed dropped or fetched again.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from trading_engine.gateway.feed import GatewayFeed
from trading_engine.gateway.protocol import Kind
from trading_engine.gateway.remote import RemoteEngine
from trading_engine.gateway.server import CommandServer
from trading_engine.metrics import Figures

__all__ = ["UNANSWERED", "CommandFigures", "GatewayFigures"]

UNANSWERED = ("timeout", "engine_stopped", "redis_failed", "undecodable")
"""Why a gateway's call got no usable answer (``RemoteEngine.unanswered``)."""
_FEED = (
    ("malformed", "Messages on Redis that could not be read, dropped"),
    ("dropped", "WebSocket subscribers dropped: buffer full, or Redis's connection broke"),
    ("resyncs", "Books fetched again after a gap (a delta missed, or one unreadable)"),
)
"""``GatewayFeed``'s counters, by name, and what each counts."""


class CommandFigures(Figures):
    """``te_engine_calls_*``: what the command server did with the gateways' calls."""

    def __init__(self, server: CommandServer) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        server = self._server
        calls = CounterMetricFamily(
            "te_engine_calls",
            "Gateways' calls read: executed, expired (read past their deadline, not run),"
            " refused (the engine stopping, or no such method), busy (MAX_INFLIGHT running)",
            labels=["outcome"],
        )
        for outcome, count in (("executed", server.executed), ("expired", server.expired),
                               ("refused", server.refused), ("busy", server.busy)):  # fmt: skip
            calls.add_metric([outcome], count)
        yield calls
        yield GaugeMetricFamily(
            "te_engine_calls_running", "Gateways' calls running now", value=server.running
        )


class GatewayFigures(Figures):
    """``te_gateway_*``: the gateway's view of the engine and of its feed."""

    def __init__(self, engine: RemoteEngine, feed: GatewayFeed) -> None:
        self._engine = engine
        self._feed = feed

    def collect(self) -> Iterator[Metric]:
        engine, feed = self._engine, self._feed
        yield GaugeMetricFamily(
            "te_gateway_engine_alive",
            "1 while the engine's heartbeat is seen and it takes calls, else 0",
            value=int(engine.alive),
        )
        yield CounterMetricFamily("te_gateway_calls", "Calls sent to the engine", value=engine.sent)
        yield GaugeMetricFamily(
            "te_gateway_calls_in_flight", "Calls sent to the engine and not answered yet",
            value=engine.in_flight,
        )  # fmt: skip
        yield CounterMetricFamily(
            "te_gateway_calls_refused",
            "Calls refused at once, never sent: the engine was not running",
            value=engine.refused,
        )
        unanswered = CounterMetricFamily(
            "te_gateway_calls_unanswered",
            "Calls with no usable answer, by kind and reason; a command's outcome is"
            " unknown (503 outcome_unknown)",
            labels=["kind", "reason"],
        )
        for kind in Kind:
            for reason in UNANSWERED:
                unanswered.add_metric([kind.value, reason], engine.unanswered[kind, reason])
        yield unanswered
        for name, what in _FEED:
            yield CounterMetricFamily(f"te_gateway_feed_{name}", what, value=getattr(feed, name))
