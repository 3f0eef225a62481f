"""Shared helpers for the actor tests: the market, users, orders and state snapshots."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderRequest, OrderResult, Rejected, SymbolBatch
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderType, Side
from trading_engine.core.events import Trade
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.storage.journal import Journal

BTC = Instrument.create(
    "BTC_AIT",
    "BTC",
    "AIT",
    "0.01",
    "0.0001",
    taker_fee_bps=10,
    maker_fee_bps=-2,
    price_band_pct="10",
)
"""One tick x one lot is 100 AIT minor units; one lot is 10,000 BTC minor units."""
ETH = Instrument.create(
    "ETH_AIT",
    "ETH",
    "AIT",
    "0.01",
    "0.001",
    min_quantity="0.01",
    min_notional="10",
    taker_fee_bps=20,
    maker_fee_bps=5,
    price_band_pct="10",
)
"""Minimum 10 lots and 10 AIT of notional; one tick x one lot is 1,000 AIT minor units."""
INSTRUMENTS = {BTC.symbol: BTC, ETH.symbol: ETH}
ASSETS = ("AIT", "BTC", "ETH")

ALICE, BOB, CAROL = UserId("alice"), UserId("bob"), UserId("carol")
RICH = {"AIT": 10**12, "BTC": 10**9, "ETH": 10**10}
"""10,000 AIT, 10 BTC and 100 ETH."""
FUNDING: dict[UserId, dict[str, int]] = {
    ALICE: RICH,
    BOB: RICH,
    CAROL: {"BTC": 10**9},
}
"""What ``open_market`` deposits; carol holds no AIT at all."""

BTC_MID = 100_000
"""1,000.00 AIT per BTC, in ticks."""
ETH_MID = 200_000


@asynccontextmanager
async def open_market(
    journal: Journal,
    config: EngineConfig | None = None,
    funding: dict[UserId, dict[str, int]] | None = None,
    **engine_options: Any,
) -> AsyncIterator[Engine]:
    """A started engine with BTC_AIT and ETH_AIT listed and ``funding`` deposited;
    ``engine_options`` go to ``open_engine`` (``clock``)."""
    config = config or EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)
    async with open_engine(config, journal, **engine_options) as engine:
        with trio.fail_after(5):
            for instrument in INSTRUMENTS.values():
                assert await engine.add_symbol(instrument) is None
            for user, assets in (FUNDING if funding is None else funding).items():
                assert await engine.create_user(user, f"hash-{user}") is None
                for asset, amount in assets.items():
                    assert isinstance(await engine.deposit(user, asset, amount), tuple)
        yield engine


def limit(
    user: UserId, symbol: Symbol, side: Side, quantity: int, price: int, **kw: Any
) -> OrderRequest:
    return OrderRequest(user, symbol, side, OrderType.LIMIT, quantity, price, **kw)


def buy(
    user: UserId, quantity: int, price: int, symbol: Symbol = BTC.symbol, **kw: Any
) -> OrderRequest:
    return limit(user, symbol, Side.BUY, quantity, price, **kw)


def sell(
    user: UserId, quantity: int, price: int, symbol: Symbol = BTC.symbol, **kw: Any
) -> OrderRequest:
    return limit(user, symbol, Side.SELL, quantity, price, **kw)


def market(user: UserId, side: Side, quantity: int, symbol: Symbol = BTC.symbol) -> OrderRequest:
    return OrderRequest(user, symbol, side, OrderType.MARKET, quantity)


async def place(engine: Engine, request: OrderRequest) -> OrderResult:
    """Submit ``request`` and insist that it reached the book."""
    with trio.fail_after(5):
        outcome = await engine.submit(request)
    assert isinstance(outcome, OrderResult), outcome
    return outcome


async def reject(engine: Engine, request: OrderRequest) -> Rejected:
    with trio.fail_after(5):
        outcome = await engine.submit(request)
    assert isinstance(outcome, Rejected), outcome
    return outcome


def ceil_fee(notional: int, bps: int) -> int:
    return -((-notional * bps) // 10_000)


def buy_hold(instrument: Instrument, quantity: int, price: int) -> int:
    """What a buy must hold, computed here from the instrument's terms, not the engine's code."""
    one_lot = price * instrument.quote_per_tick_lot
    worst = max(instrument.maker_fee_bps, instrument.taker_fee_bps, 0)
    return quantity * (one_lot + ceil_fee(one_lot, worst))


async def quiesce(engine: Engine) -> None:
    """Wait until every actor has handled what was committed so far.

    The journal hands each commit to risk, settlement, pricing and market data
    before it answers; pricing then sends reference prices to risk. A query to
    pricing, then one to each other actor, is answered only after all of that.
    """
    with trio.fail_after(5):
        for symbol in engine.instruments():
            await engine.ticker(symbol)
        for symbol in engine.instruments():
            await engine.orderbook(symbol)
        await engine.ledger_totals()
        await engine.check_invariants()


async def balances_of(
    engine: Engine, users: Iterable[UserId]
) -> dict[UserId, dict[str, tuple[int, int]]]:
    with trio.fail_after(5):
        return {user: await engine.balances(user) for user in users}


def total(balance: tuple[int, int]) -> int:
    return balance[0] + balance[1]


async def all_trades(journal: Journal, symbol: Symbol) -> list[Trade]:
    """Every trade of ``symbol`` as the journal holds it, oldest first."""
    return [e for e in await journal.read(symbol) if isinstance(e, Trade)]


async def settle_everything(engine: Engine, journal: Journal) -> dict[str, list[str]]:
    """Settle every journaled trade of every symbol; returns the merged answer."""
    merged: dict[str, list[str]] = {}
    for symbol in engine.instruments():
        keys = [f"{t.symbol}:{t.trade_id}" for t in await all_trades(journal, symbol)]
        with trio.fail_after(5):
            answer = await engine.settle(keys)
        for kind, ids in answer.items():
            merged.setdefault(kind, []).extend(ids)
    return merged


async def assert_ledger_matches_accounts(engine: Engine, users: Iterable[UserId]) -> None:
    """Each user's ledger balance equals risk's available + held, for every asset."""
    with trio.fail_after(5):
        for user in users:
            balances = await engine.balances(user)
            for asset in ASSETS:
                expected = total(balances.get(asset, (0, 0)))
                assert await engine.ledger_balance(user, asset) == expected, (user, asset)


class Poison:
    """Not a symbol command: a symbol actor that reads one raises (its ``match`` ends in
    ``assert_never``), which is how these tests crash one."""


async def inject_crash(engine: Engine, symbol: Symbol) -> None:
    """Make the symbol's actor raise when it reads its next batch."""
    poison: Any = Poison()
    await engine._supervisor.handles[symbol].send.send(SymbolBatch((poison,)))


async def wait_ready(engine: Engine, symbol: Symbol) -> None:
    """Wait until the symbol's actor runs (after a start or a restart)."""
    await engine._supervisor.handles[symbol].ready.wait()


def crashes(engine: Engine, symbol: Symbol) -> int:
    """How many times the symbol's actor crashed."""
    return engine._supervisor.handles[symbol].crashes


async def crash(engine: Engine, symbol: Symbol, *, halts: bool = False) -> None:
    """Crash the symbol's actor and wait until it serves its inbox again.

    Nothing else is sent to the symbol until the supervisor has seen the crash:
    a command that arrives together with the crash is another test's subject.
    """
    before = crashes(engine, symbol)
    with trio.fail_after(5):
        await inject_crash(engine, symbol)
        while crashes(engine, symbol) == before or (halts and symbol not in engine.halted()):
            await trio.sleep(0.001)
        if not halts:
            await wait_ready(engine, symbol)
    assert crashes(engine, symbol) == before + 1
