"""What a connection with cancel-on-disconnect keeps, and what it cancels."""

from __future__ import annotations

from tests.actors.helpers import ALICE, BOB, BTC_MID, buy, open_market, sell
from trading_engine.actors.messages import OrderResult
from trading_engine.api.placements import Placements
from trading_engine.core.enums import OrderStatus
from trading_engine.storage.journal import InMemoryJournal


async def test_pruning_keeps_the_orders_still_open_and_those_in_flight(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal) as engine:
        placements = Placements(engine, prune_at=8)
        placements.armed = True
        placed = [engine.submit_soon(sell(BOB, 10, BTC_MID + i)) for i in range(8)]
        placements.sent(placed)
        for reply in placed[:5]:
            outcome = await reply.wait()
            assert isinstance(outcome, OrderResult)
            assert isinstance(await engine.cancel(outcome.order.order_id, BOB), OrderResult)
        in_flight = engine.submit_soon(sell(BOB, 10, BTC_MID + 100))
        placements.sent([in_flight])
        await placements.prune()
        assert len(placements) == 4  # three still open and the one in flight
        cancelled = await placements.cancel()
        assert cancelled == 4
        _, still_open = await engine.open_orders(BOB)
        assert still_open == []
        await engine.check_invariants()


async def test_orders_sent_while_not_armed_or_done_at_once_are_not_cancelled(
    journal: InMemoryJournal,
) -> None:
    async with open_market(journal) as engine:
        placements = Placements(engine)
        placements.sent([engine.submit_soon(sell(BOB, 20, BTC_MID))])  # not armed
        placements.armed = True
        taker = engine.submit_soon(buy(ALICE, 10, BTC_MID))  # fills at once
        placements.sent([taker])
        assert await placements.cancel() == 0
        outcome = await taker.wait()
        assert isinstance(outcome, OrderResult)
        assert outcome.order.status is OrderStatus.FILLED
        _, still_open = await engine.open_orders(BOB)
        assert [view.status for view in still_open] == [OrderStatus.PARTIALLY_FILLED]
