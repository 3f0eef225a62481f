"""A seeded random workload: many users placing, cancelling and amending orders at once."""

from __future__ import annotations

import random

import attrs
import trio

from tests.actors.helpers import ASSETS, BTC, BTC_MID, ETH, ETH_MID, limit, place, quiesce
from trading_engine.actors.engine import Engine
from trading_engine.actors.messages import ListRequest, ListResult, OrderRequest, OrderResult
from trading_engine.core.enums import ListType, OrderType, Side, TimeInForce
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, UserId

USERS = [UserId(f"u{i:02}") for i in range(20)]
START = {"AIT": 10**11, "BTC": 10**8, "ETH": 10**9}
"""1,000 AIT, 1 BTC and 10 ETH each."""
FUNDING = dict.fromkeys(USERS, START)
MIDS = {BTC.symbol: BTC_MID, ETH.symbol: ETH_MID}
LOTS = {BTC.symbol: (1, 400), ETH.symbol: (10, 200)}


@attrs.define
class Flows:
    """What went in and out of the exchange, as the users saw their requests answered."""

    deposited: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(ASSETS, 0))
    withdrawn: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(ASSETS, 0))
    outcomes: dict[str, int] = attrs.field(factory=dict)

    def count(self, kind: str) -> None:
        self.outcomes[kind] = self.outcomes.get(kind, 0) + 1


async def run_workload(
    engine: Engine, ops_per_task: int, *, seed: int = 0, grow_amends: bool = True
) -> Flows:
    """Seed both books, then run one task per user and symbol, all at once.

    ``grow_amends`` false keeps amends to ones that never need a larger hold.
    """
    for symbol, mid in MIDS.items():
        low = LOTS[symbol][0]
        await place(engine, limit(USERS[0], symbol, Side.BUY, low * 10, mid - 100))
        await place(engine, limit(USERS[1], symbol, Side.SELL, low * 10, mid + 100))
    await quiesce(engine)
    flows = Flows()
    async with trio.open_nursery() as nursery:
        for i, user in enumerate(USERS):
            for j, symbol in enumerate(MIDS):
                task_seed = seed + 1000 * i + j
                args = (engine, user, symbol, task_seed, flows, ops_per_task, grow_amends)
                nursery.start_soon(_trader, *args)
    await quiesce(engine)
    return flows


async def _trader(
    engine: Engine,
    user: UserId,
    symbol: Symbol,
    seed: int,
    flows: Flows,
    ops: int,
    grow_amends: bool,
) -> None:
    rng = random.Random(seed)
    mid = MIDS[symbol]
    low, high = LOTS[symbol]
    mine: dict[OrderId, tuple[Side, int, int]] = {}
    """Open orders as last seen: side, price, quantity."""
    for n in range(ops):
        roll = rng.random()
        with trio.fail_after(10):
            if mine and roll < 0.2:
                order_id = rng.choice(list(mine))
                del mine[order_id]
                outcome: object = await engine.cancel(order_id, user)
            elif mine and roll < 0.3:
                order_id = rng.choice(list(mine))
                side, price, quantity = mine[order_id]
                if rng.random() < 0.5:
                    new_price = mid + rng.randint(-150, 150) * 10
                    if not grow_amends and side is Side.BUY:
                        new_price = min(new_price, price - 10)
                    outcome = await engine.amend(order_id, user, price=new_price)
                else:
                    new_quantity = rng.randint(low, high)
                    if not grow_amends:
                        new_quantity = min(new_quantity, quantity - 1)
                    outcome = await engine.amend(order_id, user, quantity=new_quantity)
            elif roll < 0.38:
                side = rng.choice([Side.BUY, Side.SELL])
                quantity = rng.randint(low, high)
                outcome = await engine.submit(
                    OrderRequest(user, symbol, side, OrderType.MARKET, quantity)
                )
            elif roll < 0.41:
                asset = rng.choice(ASSETS)
                amount = rng.randint(1, 10**7)
                outcome = await engine.withdraw(user, asset, amount)
                if isinstance(outcome, tuple):
                    flows.withdrawn[asset] += amount
            elif roll < 0.43:
                asset = rng.choice(ASSETS)
                amount = rng.randint(1, 10**8)
                outcome = await engine.deposit(user, asset, amount)
                assert isinstance(outcome, tuple)
                flows.deposited[asset] += amount
            elif roll < 0.48:
                outcome = await engine.submit_list(_random_list(rng, user, symbol))
                if isinstance(outcome, ListResult):
                    for view in outcome.order_list.orders:
                        if view.order_id not in outcome.order_list.pending:
                            mine[view.order_id] = (view.side, view.price, view.quantity)
            else:
                side = rng.choice([Side.BUY, Side.SELL])
                price = mid + rng.randint(-150, 150) * 10
                tif = rng.choice([TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.FOK])
                cid = ClientOrderId(f"{user}-{symbol}-{n}") if rng.random() < 0.2 else None
                request = limit(
                    user, symbol, side, rng.randint(low, high), price,
                    time_in_force=tif, client_order_id=cid,
                )  # fmt: skip
                outcome = await engine.submit(request)
                if cid is not None and rng.random() < 0.5:
                    resent = await engine.submit(request)
                    if isinstance(outcome, OrderResult):
                        assert isinstance(resent, OrderResult)
                        assert resent.duplicate
                        assert resent.order.order_id == outcome.order.order_id
        if isinstance(outcome, OrderResult):
            view = outcome.order
            if view.remaining and not view.status.is_final:
                mine[view.order_id] = (view.side, view.price, view.quantity)
            else:
                mine.pop(view.order_id, None)
        flows.count(type(outcome).__name__)


def _random_list(rng: random.Random, user: UserId, symbol: Symbol) -> ListRequest:
    """An OCO, OTO or OTOCO around the symbol's mid: a take-profit limit and a stop, the
    working order a limit that may trade at once (or be refused, if a leg cannot rest)."""
    mid = MIDS[symbol]
    low, high = LOTS[symbol]
    side = rng.choice([Side.BUY, Side.SELL])
    away = 1 if side is Side.SELL else -1  # a sell's take-profit is above, its stop below
    quantity = rng.randint(low, high)
    take_profit = limit(user, symbol, side, quantity, mid + away * rng.randint(5, 150) * 10)
    stop = OrderRequest(
        user,
        symbol,
        side,
        OrderType.STOP,
        quantity,
        stop_price=mid - away * rng.randint(5, 150) * 10,
    )
    working = limit(user, symbol, side.opposite, quantity, mid + rng.randint(-150, 150) * 10)
    kind = rng.choice(list(ListType))
    if kind is ListType.OCO:
        return ListRequest(user, kind, (take_profit, stop))
    if kind is ListType.OTO:
        return ListRequest(user, kind, (working, rng.choice([take_profit, stop])))
    return ListRequest(user, kind, (working, take_profit, stop))
