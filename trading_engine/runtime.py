"""Process-wide settings for an engine process: the garbage collector.

The engine allocates several short-lived objects per order (events, replies)
and keeps long-lived state (books, accounts). CPython's default collector
thresholds (700, 10, 10) then run a full collection over all of that state
every few seconds, stalling every actor for a few hundred milliseconds. A
larger young generation and freezing what start-up and recovery built (it
is never garbage) keep the pauses short. Measured with
``trading-engine bench engine`` (README, performance section).
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]

GC_THRESHOLDS = (5_000, 10, 100)


def tune_gc() -> None:
    """Freeze everything alive now and raise the young-generation threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
