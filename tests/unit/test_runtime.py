"""The garbage-collector settings of an engine process."""

from __future__ import annotations

import gc

import pytest

from trading_engine.runtime import gc_paused


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_gc_paused_stops_collection_inside_and_freezes_what_it_built() -> None:
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    try:
        with gc_paused():
            assert not gc.isenabled()
            built = [_Cycle() for _ in range(100)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen_before + len(built)
    finally:
        gc.unfreeze()


def test_gc_paused_leaves_a_disabled_collector_disabled_and_survives_errors() -> None:
    gc.disable()
    try:
        with pytest.raises(RuntimeError), gc_paused():
            raise RuntimeError("recovery failed")
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("recovery failed")
    assert gc.isenabled()
