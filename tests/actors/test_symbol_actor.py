"""The symbol actor's account of a batch that crashes: what it held, listed once."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.actors.helpers import ALICE, BTC, BTC_MID, Poison
from trading_engine.actors.messages import (
    Commit,
    MatchAmend,
    MatchSubmit,
    ReleaseHolds,
    SymbolBatch,
)
from trading_engine.actors.symbol import SymbolActor
from trading_engine.core.enums import OrderType, Side
from trading_engine.core.ids import OrderId
from trading_engine.core.matcher import Matcher
from trading_engine.core.orders import OrderSpec


def _actor(notices: list[ReleaseHolds]) -> SymbolActor:
    _, inbox = trio.open_memory_channel[SymbolBatch](0)
    journal, _ = trio.open_memory_channel[Commit](0)
    return SymbolActor(Matcher(BTC), inbox, journal, notices.append)


def test_a_refused_amend_then_a_crash_in_the_batch_releases_the_amend_once() -> None:
    """The risk actor lowers a refused amend's hold when told; told twice, it would also
    count down another amend of the order still in flight."""
    notices: list[ReleaseHolds] = []
    actor = _actor(notices)
    resting = OrderSpec(OrderId(1), ALICE, Side.BUY, OrderType.LIMIT, 10, BTC_MID)
    actor._handle([SymbolBatch((MatchSubmit(resting, None),))])
    actor.inflight.clear()
    poison: Any = Poison()
    amended = MatchAmend(OrderId(1), None, 5, None)  # down to 5 lots: done
    unknown = MatchAmend(OrderId(99), BTC_MID, None, None)  # no such order: refused
    later = OrderSpec(OrderId(2), ALICE, Side.BUY, OrderType.LIMIT, 10, BTC_MID - 1)
    with pytest.raises(AssertionError):
        actor._handle([SymbolBatch((amended, unknown, poison, MatchSubmit(later, None)))])
    assert notices == [ReleaseHolds((), (OrderId(99),))]
    # What the supervisor releases after the crash: the amend that ran and the submit
    # that never did, each once; not the refused amend, released already.
    assert (actor.amends, actor.inflight) == ([OrderId(1)], [OrderId(2)])
