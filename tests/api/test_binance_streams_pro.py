"""The Binance dialect's WebSocket streams, through the real ccxt.pro."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from typing import Any

import trio

from tests.api.binance_pro import pro_client, run_pro
from tests.api.conftest import Server

_ORDERS = [
    ("demo_alice", "sell", 0.5, 101.0),
    ("demo_bob", "buy", 1.0, 99.0),
    ("demo_alice", "sell", 0.3, 100.5),
    ("demo_bob", "buy", 0.2, 100.5),  # trades 0.2 at 100.50
    ("demo_bob", "buy", 0.4, 101.0),  # trades 0.1 at 100.50 and 0.3 at 101
    ("demo_alice", "sell", 1.5, 99.0),  # trades 1 at 99, rests 0.5 at 99
]


async def test_watch_order_book_stays_equal_to_fetch_order_book_while_orders_flow(
    server: Server,
) -> None:
    async def scenario() -> list[tuple[Any, Any]]:
        alice, bob = pro_client(server, "demo_alice"), pro_client(server, "demo_bob")
        users = {"demo_alice": alice, "demo_bob": bob}
        seen = []
        try:
            await alice.load_markets()
            await bob.load_markets()
            book = await alice.watch_order_book("BTC/AIT")
            for user, side, amount, price in _ORDERS:
                await users[user].create_order("BTC/AIT", "limit", side, amount, price)
                rest = await alice.fetch_order_book("BTC/AIT")
                while book["nonce"] < rest["nonce"]:
                    book = await alice.watch_order_book("BTC/AIT")
                assert book["nonce"] == rest["nonce"]
                seen.append(([list(b) for b in book["bids"]], [list(a) for a in book["asks"]]))
                assert (book["bids"], book["asks"]) == (rest["bids"], rest["asks"])
        finally:
            await alice.close()
            await bob.close()
        return seen

    with trio.fail_after(60):
        seen = await run_pro(scenario)
    assert seen[0] == ([], [[101.0, 0.5]])
    assert seen[-1] == ([], [[99.0, 0.5], [101.0, 0.2]])


async def test_watch_trades_ticker_and_ohlcv_see_a_trade(server: Server) -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        alice, bob = pro_client(server, "demo_alice"), pro_client(server, "demo_bob")
        try:
            await alice.load_markets()
            await bob.load_markets()
            await alice.create_order("BTC/AIT", "limit", "sell", 5.0, 100.5)  # room for 50 trades
            ticker = await alice.watch_ticker("BTC/AIT")  # the current one comes at once
            watches = asyncio.gather(
                alice.watch_trades("BTC/AIT"), alice.watch_ohlcv("BTC/AIT", "1m")
            )
            # A trade until both have one: each watch subscribes once its task runs.
            while True:
                await bob.create_order("BTC/AIT", "limit", "buy", 0.1, 100.5)
                done, _ = await asyncio.wait([watches], timeout=0.5)
                if done:
                    break
            trades, ohlcv = await watches
            while ticker["last"] != 100.5:
                # ccxt keeps the newest ticker; a watch waits for the next one.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(alice.watch_ticker("BTC/AIT"), 0.5)
                ticker = alice.tickers["BTC/AIT"]
        finally:
            await alice.close()
            await bob.close()
        return trades, ticker, ohlcv

    since = int(time.time() * 1000) - 120_000
    with trio.fail_after(60):
        trades, ticker, ohlcv = await run_pro(scenario)
    assert trades
    assert {(t["price"], t["amount"], t["side"]) for t in trades} == {(100.5, 0.1, "buy")}
    assert int(trades[0]["id"]) >= 1
    assert ticker["symbol"] == "BTC/AIT"
    assert ticker["last"] == 100.5
    assert ticker["baseVolume"] >= 0.1
    assert ohlcv[-1][1:5] == [100.5, 100.5, 100.5, 100.5]
    assert ohlcv[-1][5] >= 0.1
    assert ohlcv[-1][0] >= since


async def test_watch_orders_and_watch_balance_follow_a_users_order(server: Server) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        alice, bob = pro_client(server, "demo_alice"), pro_client(server, "demo_bob")
        updates: list[dict[str, Any]] = []

        async def until(status: str, filled: float) -> None:
            while not updates or (updates[-1]["status"], updates[-1]["filled"]) != (status, filled):
                updates.extend(dict(o) for o in await alice.watch_orders("BTC/AIT"))

        try:
            await alice.load_markets()
            await bob.load_markets()
            before = await alice.fetch_balance()
            watching = asyncio.ensure_future(until("open", 0.0))
            balance_watch = asyncio.ensure_future(alice.watch_balance())
            await asyncio.sleep(0)
            placed: Any = None
            while not watching.done():  # the subscription is live once an order shows
                if placed is not None:
                    await alice.cancel_order(placed["id"], "BTC/AIT")
                placed = await alice.create_order("BTC/AIT", "limit", "sell", 0.5, 100.5)
                await asyncio.wait([watching], timeout=0.5)
            await balance_watch
            # The newest balance ccxt holds: the resting order's 0.5 BTC is held.
            while alice.balance["spot"]["BTC"]["used"] != 0.5:
                await alice.watch_balance()
            balance = copy.deepcopy(alice.balance["spot"])
            updates.clear()
            await bob.create_order("BTC/AIT", "limit", "buy", 0.2, 100.5)
            await until("open", 0.2)
            await alice.cancel_order(placed["id"], "BTC/AIT")
            await until("canceled", 0.2)
        finally:
            await alice.close()
            await bob.close()
        return updates, before, balance

    with trio.fail_after(60):
        updates, before, balance = await run_pro(scenario)
    fill, cancel = updates[0], updates[-1]
    assert (fill["symbol"], fill["side"], fill["type"], fill["price"]) == (
        "BTC/AIT", "sell", "limit", 100.5,
    )  # fmt: skip
    assert (fill["amount"], fill["filled"], fill["remaining"]) == (0.5, 0.2, 0.3)
    assert fill["cost"] == 0.2 * 100.5
    assert fill["fee"] == {"currency": "AIT", "cost": -0.00402}  # alice's maker rebate
    assert cancel["status"] == "canceled"
    assert cancel["id"] == fill["id"]
    # 0.5 BTC held for the resting sell order: what was free is now locked.
    assert balance["BTC"]["used"] == 0.5
    assert balance["BTC"]["free"] == before["BTC"]["free"] - 0.5
