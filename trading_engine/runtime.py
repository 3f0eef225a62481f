"""Process-wide settings for an engine process: the garbage collector.

The engine allocates several short-lived objects per order (events, replies)
and keeps long-lived state (books, accounts). CPython's default collector
thresholds (700, 10, 10) then run a full collection over all of that state
every few seconds, stalling every actor for a few hundred milliseconds. A
larger young generation and freezing what start-up and recovery built (it
is never garbage) keep the pauses short. Recovery builds that state from
millions of events in one go, none of them garbage the collector could find
(reference counting frees the rest): ``gc_paused`` keeps the collector out of
it, which makes it about a third faster (``trading-engine bench recovery``). Measured with
``trading-engine bench engine`` (docs/performance.md, docs/decisions/0009-collector-thresholds.md).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused", "tune_gc"]

GC_THRESHOLDS = (5_000, 10, 100)


def tune_gc() -> None:
    """Freeze everything alive now and raise the young-generation threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; what it built is frozen after.

    Frozen objects are never scanned again, so the first collections after
    recovery don't walk the millions of objects it made. (If the collector
    was on, it is on again after.)
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
