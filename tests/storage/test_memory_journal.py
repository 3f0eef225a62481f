"""The in-memory journal keeps the Journal port's contract, as the PostgreSQL one does."""

from __future__ import annotations

import pytest

from trading_engine.core.enums import Side
from trading_engine.core.events import BookLevel
from trading_engine.core.ids import Symbol
from trading_engine.errors import TradingEngineError
from trading_engine.storage.journal import InMemoryJournal, StorageUnavailable

S = Symbol("BTC_AIT")


def levels(first: int, count: int) -> list[BookLevel]:
    return [BookLevel(seq, seq, S, Side.BUY, 100 + seq, seq) for seq in range(first, first + count)]


async def test_a_batch_that_was_written_can_be_sent_again_without_effect() -> None:
    journal = InMemoryJournal()
    await journal.append([(S, levels(1, 3))])
    await journal.append([(S, levels(1, 3))])
    assert [e.seq for e in await journal.read(S)] == [1, 2, 3]


async def test_an_overlap_that_differs_or_a_gap_is_refused_and_writes_nothing() -> None:
    journal = InMemoryJournal()
    await journal.append([(S, levels(1, 3))])
    changed = [BookLevel(3, 3, S, Side.SELL, 1, 1)]
    with pytest.raises(TradingEngineError):
        await journal.append([(S, changed)])
    with pytest.raises(TradingEngineError):
        await journal.append([(Symbol("ETH_AIT"), levels(1, 1)), (S, levels(5, 1))])
    assert await journal.streams() == [S]
    assert len(await journal.read_all()) == 3


async def test_a_switched_off_journal_is_unavailable() -> None:
    journal = InMemoryJournal()
    journal.available = False
    with pytest.raises(StorageUnavailable):
        await journal.append([(S, levels(1, 1))])
    assert await journal.read_all() == []
