"""The engine as its own process under load, for the crash test; killed with SIGKILL.

Usage: python -m tests.storage.crash_child DSN ACK_LOG SEED

It opens the PostgreSQL journal, lists the symbol and funds the users if
this is the first run, then sends random orders, cancels and amends from
many tasks as fast as it can (a third of the amends ask for the price the
order has, which the matcher refuses). After each acknowledgement it appends one line
to ACK_LOG: ``order_id status filled``, written before anything else
happens, so that what the log holds was acknowledged. It runs until it is
killed.
"""

from __future__ import annotations

import random
import sys

import trio

from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderRequest, OrderResult
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderType, Side
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.storage.postgres import open_postgres_journal

BTC = Instrument.create(
    "BTC_AIT", "BTC", "AIT", "0.01", "0.0001", maker_fee_bps=-2, taker_fee_bps=10,
    price_band_pct="20",
)  # fmt: skip
USERS = [UserId(f"u{i}") for i in range(8)]


async def prepare(engine: Engine) -> None:
    if BTC.symbol in engine.instruments():
        return
    await engine.add_symbol(BTC)
    for user in USERS:
        await engine.create_user(user, f"hash-{user}")
        await engine.deposit(user, "AIT", 10**15)
        await engine.deposit(user, "BTC", 10**13)


async def main(dsn: str, ack_log: str, seed: int) -> None:
    async with (
        open_postgres_journal(dsn) as journal,
        open_engine(EngineConfig(), journal) as engine,
    ):
        await prepare(engine)
        with open(ack_log, "a", buffering=1, encoding="utf-8") as log:

            async def trade(index: int) -> None:
                rng = random.Random(seed * 1000 + index)
                mine: list[OrderId] = []
                while True:
                    roll = rng.random()
                    if mine and roll < 0.2:
                        cancelled = await engine.cancel(mine.pop(rng.randrange(len(mine))), None)
                        if isinstance(cancelled, OrderResult):
                            order = cancelled.order
                            log.write(f"{order.order_id} {order.status} {order.filled}\n")
                        continue
                    if mine and roll < 0.3:
                        view = await engine.order(mine[rng.randrange(len(mine))])
                        if view is None:
                            continue
                        pick, price, quantity = rng.random(), None, None
                        if pick < 1 / 3:
                            price = view.price  # no change: the matcher refuses it
                        elif pick < 2 / 3:
                            price = 100_000 + rng.randint(-20, 20)
                        else:
                            quantity = view.filled + view.cancelled + rng.randint(1, 50)
                        amended = await engine.amend(
                            view.order_id, None, price=price, quantity=quantity
                        )
                        if isinstance(amended, OrderResult):
                            order = amended.order
                            log.write(f"{order.order_id} {order.status} {order.filled}\n")
                        continue
                    buy = rng.random() < 0.5
                    price = 100_000 + rng.randint(-20, 20)
                    request = OrderRequest(
                        USERS[rng.randrange(len(USERS))], Symbol(BTC.symbol),
                        Side.BUY if buy else Side.SELL, OrderType.LIMIT, rng.randint(1, 50), price,
                    )  # fmt: skip
                    outcome = await engine.submit(request)
                    if isinstance(outcome, OrderResult):
                        order = outcome.order
                        log.write(f"{order.order_id} {order.status} {order.filled}\n")
                        mine.append(order.order_id)

            async with trio.open_nursery() as nursery:
                for index in range(16):
                    nursery.start_soon(trade, index)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
