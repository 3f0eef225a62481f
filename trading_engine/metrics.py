"""What each process counts, as Prometheus collectors: the pieces every ``/metrics``
is built from.

A process's ``Scrape`` holds the ``Figures`` of what runs in it:

- ``serve``: the HTTP figures (``api/metrics.py``) and ``engine_figures``: the
  journal, the WebSocket subscribers, the market data published to Redis (with
  ``REDIS_URL``) and the read tables.
- ``engine``: ``engine_figures`` and its command server's
  (``gateway/metrics.py``), on a listener of its own (``api/probe.py``).
- ``gateway``: the HTTP figures, its own subscribers, the read tables it reads
  (with ``DATABASE_URL``), and its link to the engine (``gateway/metrics.py``).
  Not the journal's: a process shows only what it knows, never a zero that
  means "unknown"; the engine's listener has them.

Figures are read when Prometheus scrapes: counters the actors keep anyway are
read then, never copied on each change. ``refresh`` runs first, for a figure
that needs an actor's answer.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trading_engine.actors.facade import Engine
from trading_engine.storage.read_tables import ReadTables

__all__ = [
    "Figures",
    "JournalFigures",
    "PublishingFigures",
    "ReadTablesFigures",
    "Scrape",
    "SubscriberFigures",
    "engine_figures",
]


class Figures(Collector):
    """A collector of a process's figures; ``refresh`` is awaited before each scrape."""

    async def refresh(self) -> None:
        """Fetch what ``collect`` needs that takes an ``await`` (nothing, by default)."""

    def collect(self) -> Iterator[Metric]:
        raise NotImplementedError


class Scrape:
    """A process's registry: its ``Figures``, and the text a scrape answers."""

    def __init__(self, *figures: Figures) -> None:
        self.registry = CollectorRegistry()
        # The process's own CPU time, memory and open files (``process_*``), read from /proc
        # at each scrape: each process of a split deployment is scraped on its own.
        ProcessCollector(registry=self.registry)
        self._figures: list[Figures] = []
        self.add(*figures)

    def add(self, *figures: Figures) -> None:
        """Count these figures in from the next scrape on."""
        for each in figures:
            self.registry.register(each)
            self._figures.append(each)

    async def render(self) -> bytes:
        """Every figure, refreshed, in the Prometheus text format."""
        for each in self._figures:
            await each.refresh()
        return generate_latest(self.registry)


def engine_figures(engine: Engine, read_tables: ReadTables | None) -> list[Figures]:
    """The in-process engine's figures: its journal, subscribers, market data published,
    and the read tables it projects (``read_tables``, if any)."""
    figures: list[Figures] = [
        JournalFigures(engine),
        SubscriberFigures(engine),
        PublishingFigures(engine),
    ]
    if read_tables is not None:
        figures.append(ReadTablesFigures(read_tables))
    return figures


class JournalFigures(Figures):
    """``te_journal_*``: the journal actor's writes, as the engine counts them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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


class SubscriberFigures(Figures):
    """``te_websocket_subscribers``: the process's own WebSocket subscriptions."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._subscribers = 0

    async def refresh(self) -> None:
        self._subscribers = await self._engine.subscribers()

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "te_websocket_subscribers",
            "WebSocket connections with a subscription, in this process",
            value=self._subscribers,
        )


class PublishingFigures(Figures):
    """``te_marketdata_*``: market data published to Redis, and what was lost on the way
    (nothing without a publisher)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        published = self._engine.published()
        if published is None:
            return
        yield CounterMetricFamily(
            "te_marketdata_published", "Market-data messages published to Redis",
            value=published.published,
        )  # fmt: skip
        lost = CounterMetricFamily(
            "te_marketdata_publish_dropped",
            "Market-data messages not published to Redis: outbox_full (publishing fell"
            " behind), redis_failed (Redis did not take them)",
            labels=["reason"],
        )
        lost.add_metric(["outbox_full"], published.dropped)
        lost.add_metric(["redis_failed"], published.failed)
        yield lost


class ReadTablesFigures(Figures):
    """``te_read_tables_*``: how far the read tables trail the journal."""

    def __init__(self, read_tables: ReadTables) -> None:
        self._tables = read_tables

    def collect(self) -> Iterator[Metric]:
        tables = self._tables
        yield GaugeMetricFamily(
            "te_read_tables_lag_seconds",
            "Age of the oldest commit not yet projected into the read tables (0: caught up)",
            value=tables.read_tables_lag(),
        )
        yield GaugeMetricFamily(
            "te_read_tables_last_id", "Last journal id in the read tables",
            value=tables.projected_id,
        )  # fmt: skip
        yield CounterMetricFamily(
            "te_read_tables_failures",
            "Projections into the read tables that failed (retried)",
            value=tables.projection_failures,
        )
