"""PostgreSQL stops under load and comes back: 503s meanwhile, nothing acknowledged lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from trading_engine.actors.engine import Engine, open_engine
from trading_engine.actors.messages import OrderRequest, OrderResult
from trading_engine.audit import audit
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderType, Side
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.storage.journal import StorageUnavailable
from trading_engine.storage.local_pg import LocalPostgres
from trading_engine.storage.postgres import open_postgres_journal

BTC = Instrument.create("BTC_AIT", "BTC", "AIT", "0.01", "0.0001", price_band_pct="10")
USERS = [UserId(f"u{i}") for i in range(4)]
CONFIG = EngineConfig(expire_every=float("inf"), reply_timeout=60.0)


async def _prepare(engine: Engine) -> None:
    await engine.add_symbol(BTC)
    for user in USERS:
        await engine.create_user(user, f"hash-{user}")
        await engine.deposit(user, "AIT", 10**15)
        await engine.deposit(user, "BTC", 10**13)


def _order(index: int) -> OrderRequest:
    side = Side.BUY if index % 2 else Side.SELL
    price = 100_000 + (index % 7) - 3
    return OrderRequest(USERS[index % 4], BTC.symbol, side, OrderType.LIMIT, 1 + index % 5, price)


@pytest.fixture
def durable_server(tmp_path: Path) -> Iterator[LocalPostgres]:
    """A server of the test's own that keeps every commit through an immediate stop.

    The shared test servers run with ``synchronous_commit=off``: stopped with
    ``immediate`` they lose the last commits, which the engine would rightly
    refuse to build on.
    """
    server = LocalPostgres(tmp_path / "data", durable=True)
    server.start()
    try:
        yield server
    finally:
        server.stop(mode="immediate")


async def test_orders_are_refused_while_postgres_is_down_and_resume_after(
    durable_server: LocalPostgres,
) -> None:
    own_server = durable_server
    dsn = own_server.dsn
    acked: list[int] = []
    refused = acked_after = 0
    async with (
        open_postgres_journal(dsn, connect_timeout=1.0, command_timeout=2.0) as journal,
        open_engine(CONFIG, journal) as engine,
    ):
        if True:
            with trio.fail_after(30):
                await _prepare(engine)
            down = trio.Event()
            up = trio.Event()

            async def trade(index: int) -> None:
                nonlocal refused, acked_after
                sent = after = 0
                while not up.is_set() or after < 5:
                    try:
                        outcome = await engine.submit(_order(index * 1000 + sent))
                    except StorageUnavailable:
                        refused += 1
                        await trio.sleep(0.02)
                        continue
                    finally:
                        sent += 1
                    assert isinstance(outcome, OrderResult)
                    acked.append(outcome.order.order_id)
                    if up.is_set():
                        after += 1
                        acked_after += 1

            async def outage() -> None:
                await trio.sleep(0.3)
                await trio.to_thread.run_sync(lambda: own_server.stop(mode="immediate"))
                down.set()
                await trio.sleep(1.5)
                await trio.to_thread.run_sync(own_server.start)
                up.set()

            async def probe() -> None:
                """New orders while the database is down: each refused at once, never held."""
                nonlocal refused
                await down.wait()
                while not up.is_set():
                    # Until the journal actor has seen the outage, an order may be
                    # held instead (and answered once the database is back).
                    with trio.move_on_after(1):
                        try:
                            await engine.submit(_order(999_999))
                        except StorageUnavailable:
                            refused += 1
                    await trio.sleep(0.05)

            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(outage)
                    nursery.start_soon(probe)
                    for index in range(8):
                        nursery.start_soon(trade, index)
    assert refused > 0, "nothing was refused while the database was down"
    assert acked_after >= 8 * 5, "trading resumed"
    assert len(acked) > acked_after, "orders were acknowledged before the outage too"
    # Everything acknowledged, before, during (answered late) and after the outage, is there.
    async with open_postgres_journal(dsn) as journal, open_engine(CONFIG, journal) as engine:
        with trio.fail_after(30):
            for order_id in acked:
                assert await engine.order(OrderId(order_id)) is not None, order_id
    # The read tables caught up across the outage too: they agree with a replay.
    async with open_postgres_journal(dsn) as journal:
        with trio.fail_after(30):
            report = await audit(journal)
    assert report["ok"], report["problems"]
