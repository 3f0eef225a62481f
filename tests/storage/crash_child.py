"""The engine as its own process under load, for the crash test; killed with SIGKILL.

Usage: python -m tests.storage.crash_child DSN ACK_LOG SEED

It opens the PostgreSQL journal, lists the symbol and funds the users if
this is the first run, then sends random orders (limit orders, icebergs,
trailing stops, take-profits, stops and OCO pairs), cancels and amends from
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
from trading_engine.actors.messages import ListRequest, ListResult, OrderRequest, OrderResult
from trading_engine.config import EngineConfig
from trading_engine.core.enums import ListType, OrderType, Side
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


def new_order(rng: random.Random, roll: float) -> OrderRequest:
    """A limit order; a tenth of them icebergs, and some trailing stops, take-profits and
    stops around the prices traded."""
    side = Side.BUY if rng.random() < 0.5 else Side.SELL
    user, symbol, quantity = (
        USERS[rng.randrange(len(USERS))],
        Symbol(BTC.symbol),
        rng.randint(2, 50),
    )
    away = rng.randint(5, 25) * (1 if side is Side.SELL else -1)  # above a sell, below a buy
    if roll < 0.44:
        return OrderRequest(user, symbol, side, OrderType.TRAILING_STOP, quantity,
                            trailing_delta=rng.randint(1, 10))  # fmt: skip
    if roll < 0.5:
        return OrderRequest(user, symbol, side, OrderType.TAKE_PROFIT, quantity,
                            stop_price=100_000 + away)  # fmt: skip
    if roll < 0.55:
        return OrderRequest(user, symbol, side, OrderType.STOP, quantity,
                            stop_price=100_000 - away)  # fmt: skip
    price = 100_000 + rng.randint(-20, 20)
    display = rng.randint(1, quantity - 1) if roll < 0.62 else 0
    return OrderRequest(user, symbol, side, OrderType.LIMIT, quantity, price,
                        display_quantity=display)  # fmt: skip


def oco(rng: random.Random) -> ListRequest:
    """An OCO pair: a limit leg above a sell's (below a buy's) reference, a stop leg on
    the other side of it."""
    side = Side.BUY if rng.random() < 0.5 else Side.SELL
    away = rng.randint(5, 25) * (1 if side is Side.SELL else -1)
    user, symbol, quantity = (
        USERS[rng.randrange(len(USERS))],
        Symbol(BTC.symbol),
        rng.randint(1, 50),
    )
    legs = (
        OrderRequest(user, symbol, side, OrderType.LIMIT, quantity, 100_000 + away),
        OrderRequest(user, symbol, side, OrderType.STOP, rng.randint(1, 50),
                     stop_price=100_000 - away),
    )  # fmt: skip
    return ListRequest(user, ListType.OCO, legs)


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
                    if roll < 0.38:
                        placed = await engine.submit_list(oco(rng))
                        if isinstance(placed, ListResult):
                            for order in placed.order_list.orders:
                                log.write(f"{order.order_id} {order.status} {order.filled}\n")
                                mine.append(order.order_id)
                        continue
                    outcome = await engine.submit(new_order(rng, roll))
                    if isinstance(outcome, OrderResult):
                        order = outcome.order
                        log.write(f"{order.order_id} {order.status} {order.filled}\n")
                        mine.append(order.order_id)

            async with trio.open_nursery() as nursery:
                for index in range(16):
                    nursery.start_soon(trade, index)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
