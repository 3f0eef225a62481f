"""The engine on the PostgreSQL journal: close it, open it again, and nothing has changed."""

from __future__ import annotations

from typing import Any

import trio

from tests.actors.helpers import wait_ready
from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderRequest, OrderResult
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import LEDGER_STREAM, Posted
from trading_engine.core.enums import OrderStatus, OrderType, Side
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.storage.postgres import open_postgres_journal

BTC = Instrument.create(
    "BTC_AIT", "BTC", "AIT", "0.01", "0.0001", maker_fee_bps=-2, taker_fee_bps=10,
    price_band_pct="10",
)  # fmt: skip
"""A maker's rebate: a buy that rests and fills in part frees some of its hold."""
ALICE, BOB, CAROL = UserId("alice"), UserId("bob"), UserId("carol")
USERS = (ALICE, BOB, CAROL)
MID = 100_000
"""1,000.00 AIT, in ticks of 0.01."""


def limit(user: UserId, side: Side, quantity: int, price: int) -> OrderRequest:
    return OrderRequest(user, BTC.symbol, side, OrderType.LIMIT, quantity, price)


async def place(engine: Engine, request: OrderRequest) -> OrderResult:
    outcome = await engine.submit(request)
    assert isinstance(outcome, OrderResult), outcome
    return outcome


async def observe(engine: Engine, symbol: Symbol) -> dict[str, Any]:
    seen: dict[str, Any] = {"book": await engine.book(symbol)}
    for user in USERS:
        seen[f"balances {user}"] = await engine.balances(user)
        seen[f"open {user}"] = await engine.user_orders(user, open_only=True)
    return seen


async def test_reopening_the_engine_on_the_same_database_rebuilds_the_same_state(
    database_url: str,
) -> None:
    config = EngineConfig(settlement_interval=3600.0)
    with trio.fail_after(30):
        async with (
            open_postgres_journal(database_url) as journal,
            open_engine(config, journal) as engine,
        ):
            assert await engine.add_symbol(BTC) is None
            for user in USERS:
                assert await engine.create_user(user, f"hash-{user}") is None
                assert isinstance(await engine.deposit(user, "AIT", 10**12), tuple)
                assert isinstance(await engine.deposit(user, "BTC", 10**9), tuple)
            for i in range(3):
                await place(engine, limit(ALICE, Side.BUY, 30 + i, MID - 10 * (i + 1)))
                await place(engine, limit(BOB, Side.SELL, 20 + i, MID + 10 * (i + 1)))
            taker = await place(engine, limit(CAROL, Side.SELL, 45, MID - 20))
            assert taker.trades, "carol's sell crosses alice's best bids"
            assert taker.order.status is OrderStatus.FILLED
            cancel_me = await place(engine, limit(CAROL, Side.BUY, 5, MID - 500))
            assert isinstance(await engine.cancel(cancel_me.order.order_id, CAROL), OrderResult)
            await place(engine, limit(CAROL, Side.BUY, 7, MID + 10))  # fills 7 of bob's 20
            assert isinstance(await engine.withdraw(BOB, "AIT", 12_345), tuple)
            before = await observe(engine, BTC.symbol)
            events_written = engine.journal_stats.events

        assert events_written > 0
        assert before["book"][1], "alice still bids"
        assert before["book"][2], "bob still offers"
        assert before[f"open {ALICE}"]
        async with (
            open_postgres_journal(database_url) as journal,
            open_engine(config, journal) as engine,
        ):
            await wait_ready(engine, BTC.symbol)
            after = await observe(engine, BTC.symbol)
            # Every user's held balance is what their open orders need, as recovered.
            await engine.check_invariants()
            assert await journal.verify_chain() is None
            # Reopening writes nothing but the postings of the trades that were
            # still pending (a settlement interval of an hour): they settle now.
            # (A trigger is answered once every posting before it is durable.)
            await engine.settle([])
            written = (await journal.read_all())[events_written:]
            assert written
            assert all(
                s == LEDGER_STREAM and isinstance(e, Posted) and e.kind == "trade"
                for s, e in written
            )

        assert after == before
