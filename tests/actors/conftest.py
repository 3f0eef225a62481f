"""Fixtures for the actor tests: a journal, and an engine with two symbols and funded users."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.actors.helpers import open_market
from trading_engine.actors.engine import Engine
from trading_engine.config import EngineConfig
from trading_engine.storage.journal import InMemoryJournal


@pytest.fixture
def journal() -> InMemoryJournal:
    return InMemoryJournal()


@pytest.fixture
def config() -> EngineConfig:
    """Settlement runs only when a test triggers it, so that ``pending`` is observable."""
    return EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)


@pytest.fixture
async def engine(journal: InMemoryJournal, config: EngineConfig) -> AsyncIterator[Engine]:
    """BTC_AIT and ETH_AIT listed; alice and bob rich in every asset, carol in BTC only."""
    async with open_market(journal, config) as engine:
        yield engine
