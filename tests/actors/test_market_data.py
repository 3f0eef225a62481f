"""Pricing and market data: tickers, durable L2 books, and what subscribers receive."""

from __future__ import annotations

import itertools
import json
import random
from decimal import Decimal
from typing import Any

import trio

from tests.actors.helpers import (
    ALICE,
    BOB,
    BTC,
    BTC_MID,
    CAROL,
    ETH,
    ETH_MID,
    buy,
    crash,
    open_market,
    place,
    quiesce,
    sell,
)
from trading_engine.actors.engine import Engine
from trading_engine.actors.messages import OrderResult, Refused
from trading_engine.config import EngineConfig
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.storage.journal import InMemoryJournal

Levels = dict[Decimal, Decimal]


async def _subscribe(
    engine: Engine, channel: str, size: int = 10_000, user: UserId | None = None
) -> tuple[trio.MemorySendChannel[str], trio.MemoryReceiveChannel[str]]:
    send, receive = trio.open_memory_channel[str](size)
    with trio.fail_after(5):
        assert await engine.subscribe(channel, send, user) is None
    return send, receive


def _drain(receive: trio.MemoryReceiveChannel[str]) -> list[dict[str, Any]]:
    """Every message waiting in ``receive``, parsed."""
    out = []
    while True:
        try:
            out.append(json.loads(receive.receive_nowait()))
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


def _levels(rows: list[list[str]]) -> Levels:
    return {Decimal(price): Decimal(quantity) for price, quantity in rows}


def _rendered(instrument: Instrument, rows: list[tuple[int, int]]) -> Levels:
    return {Decimal(instrument.price_str(p)): Decimal(instrument.quantity_str(q)) for p, q in rows}


async def _random_flow(engine: Engine, symbol: Symbol, mid: int, n: int, seed: int) -> None:
    """``n`` random limit orders and cancels around ``mid`` by alice and bob, one at a time."""
    rng = random.Random(seed)
    mine: list[tuple[UserId, OrderId]] = []
    for _ in range(n):
        user = rng.choice([ALICE, BOB])
        if mine and rng.random() < 0.25:
            owner, order_id = mine.pop(rng.randrange(len(mine)))
            with trio.fail_after(5):
                await engine.cancel(order_id, owner)
            continue
        price = mid + rng.randint(-30, 30) * 10
        quantity = rng.randint(10, 200)
        request = (buy if rng.random() < 0.5 else sell)(user, quantity, price, symbol=symbol)
        result = await place(engine, request)
        if result.order.remaining:
            mine.append((user, result.order.order_id))


async def test_ticker_after_trades_shows_last_mark_and_24h_volume(engine: Engine) -> None:
    await place(engine, sell(BOB, 1000, BTC_MID))
    await place(engine, buy(ALICE, 1000, BTC_MID))
    await place(engine, sell(BOB, 1000, BTC_MID + 100))
    await place(engine, buy(ALICE, 1000, BTC_MID + 100))
    await place(engine, buy(ALICE, 500, 99_000))
    await place(engine, sell(BOB, 300, 101_000))
    await quiesce(engine)
    with trio.fail_after(5):
        ticker = await engine.ticker(BTC.symbol)
        assert await engine.ticker(Symbol("DOGE_AIT")) is None
    assert ticker is not None
    assert (ticker["best_bid"], ticker["best_ask"]) == (99_000, 101_000)
    assert (ticker["bid_quantity"], ticker["ask_quantity"]) == (500, 300)
    assert (ticker["last"], ticker["last_quantity"]) == (BTC_MID + 100, 1000)
    assert ticker["mid"] == 100_000
    assert ticker["ewma"] == 100_010  # the second trade weighs one tenth
    assert ticker["mark"] == 100_010  # the median of mid, last and EWMA
    assert ticker["volume_24h"] == 2000
    assert ticker["trades_24h"] == 2
    assert (ticker["high_24h"], ticker["low_24h"]) == (BTC_MID + 100, BTC_MID)


async def test_mark_price_centres_the_price_band(engine: Engine) -> None:
    await place(engine, sell(BOB, 1000, BTC_MID))
    await place(engine, buy(ALICE, 1000, BTC_MID))
    await quiesce(engine)
    # The mark is now 100,000: 110,000 is on the band's edge, 110,001 beyond it.
    with trio.fail_after(5):
        inside = await engine.check(sell(ALICE, 10, 110_000))
        outside = await engine.check(sell(ALICE, 10, 110_001))
    assert inside.allowed
    assert not outside.allowed


async def test_orderbook_equals_the_symbol_actors_book_after_commits(engine: Engine) -> None:
    await _random_flow(engine, BTC.symbol, BTC_MID, 150, seed=1)
    await _random_flow(engine, ETH.symbol, ETH_MID, 50, seed=2)
    await quiesce(engine)
    for symbol in (BTC.symbol, ETH.symbol):
        with trio.fail_after(5):
            durable = await engine.orderbook(symbol)
            live = await engine.book(symbol)
            top = await engine.orderbook(symbol, 3)
        assert durable is not None
        assert durable[1:] == live[1:]
        assert durable[1]
        assert durable[2]
        assert durable[0] <= live[0]
        assert top == (durable[0], durable[1][:3], durable[2][:3])
    with trio.fail_after(5):
        assert await engine.orderbook(Symbol("DOGE_AIT")) is None


async def test_book_subscriber_gets_snapshot_then_gapless_deltas_that_rebuild_the_book(
    engine: Engine,
) -> None:
    await _random_flow(engine, BTC.symbol, BTC_MID, 40, seed=3)
    await quiesce(engine)
    # Subscribe while four traders are busy in BTC and one in ETH.
    async with trio.open_nursery() as nursery:
        for seed in range(4):
            nursery.start_soon(_random_flow, engine, BTC.symbol, BTC_MID, 60, 10 + seed)
        nursery.start_soon(_random_flow, engine, ETH.symbol, ETH_MID, 30, 20)
        for _ in range(20):
            await trio.lowlevel.checkpoint()
        _, receive = await _subscribe(engine, f"book.{BTC.symbol}")
    await quiesce(engine)
    messages = _drain(receive)
    snapshot, deltas = messages[0], messages[1:]
    assert snapshot["type"] == "snapshot"
    assert len(deltas) > 50
    bids, asks = _levels(snapshot["bids"]), _levels(snapshot["asks"])
    last_seq = snapshot["seq"]
    for delta in deltas:
        assert delta["type"] == "delta"
        assert delta["channel"] == f"book.{BTC.symbol}"
        assert delta["prev_seq"] == last_seq, "a gap in the book stream"
        assert delta["seq"] > last_seq
        last_seq = delta["seq"]
        for side, rows in ((bids, delta["bids"]), (asks, delta["asks"])):
            for price, quantity in _levels(rows).items():
                if quantity:
                    side[price] = quantity
                else:
                    side.pop(price, None)
    with trio.fail_after(5):
        final = await engine.orderbook(BTC.symbol)
    assert final is not None
    assert last_seq == final[0]
    assert bids == _rendered(BTC, final[1])
    assert asks == _rendered(BTC, final[2])


async def test_book_stream_stays_gapless_across_a_symbol_crash(engine: Engine) -> None:
    await _random_flow(engine, BTC.symbol, BTC_MID, 30, seed=6)
    await quiesce(engine)
    _, receive = await _subscribe(engine, f"book.{BTC.symbol}")
    await _random_flow(engine, BTC.symbol, BTC_MID, 30, seed=7)
    await crash(engine, BTC.symbol)
    await _random_flow(engine, BTC.symbol, BTC_MID, 30, seed=8)
    await quiesce(engine)
    messages = _drain(receive)
    for previous, delta in itertools.pairwise(messages):
        assert delta["prev_seq"] == previous["seq"]
    with trio.fail_after(5):
        final = await engine.orderbook(BTC.symbol)
    assert final is not None
    assert messages[-1]["seq"] == final[0]


async def test_trades_subscriber_gets_every_trade(engine: Engine) -> None:
    await place(engine, sell(BOB, 1000, BTC_MID))
    await place(engine, buy(ALICE, 400, BTC_MID))
    await quiesce(engine)
    _, receive = await _subscribe(engine, f"trades.{BTC.symbol}")
    await place(engine, buy(ALICE, 600, BTC_MID))
    await place(engine, sell(CAROL, 100, BTC_MID - 500))  # no bid: rests
    await place(engine, buy(BOB, 100, BTC_MID - 500))
    await quiesce(engine)
    messages = _drain(receive)
    assert messages[0]["type"] == "snapshot"
    assert [t["trade_id"] for t in messages[0]["trades"]] == [f"{BTC.symbol}:1"]
    trades = messages[1:]
    assert [(t["type"], t["trade_id"], t["price"], t["quantity"], t["side"]) for t in trades] == [
        ("trade", f"{BTC.symbol}:2", "1000", "0.06", "buy"),
        ("trade", f"{BTC.symbol}:3", "995", "0.01", "buy"),
    ]
    with trio.fail_after(5):
        tape = await engine.trades(BTC.symbol)
    assert tape is not None
    assert [t.trade_id for t in tape] == [3, 2, 1]


async def test_candle_subscriber_gets_one_minute_candles(engine: Engine) -> None:
    _, receive = await _subscribe(engine, f"candles.{BTC.symbol}.1m")
    await place(engine, sell(BOB, 1000, BTC_MID))
    await place(engine, buy(ALICE, 400, BTC_MID))
    await place(engine, sell(BOB, 1000, BTC_MID - 200))
    await place(engine, buy(ALICE, 300, BTC_MID - 200))
    await quiesce(engine)
    messages = _drain(receive)
    assert messages[0] == {
        "channel": f"candles.{BTC.symbol}.1m",
        "type": "snapshot",
        "seq": 0,
        "candles": [],
    }
    updates = messages[1:]
    assert [m["type"] for m in updates] == ["candle", "candle"]
    last = updates[-1]
    assert (last["open"], last["high"], last["low"], last["close"]) == (
        "1000",
        "1000",
        "998",
        "998",
    )
    assert (last["volume"], last["trades"]) == ("0.07", 2)
    with trio.fail_after(5):
        candles = await engine.candles(BTC.symbol, "1m")
    assert candles is not None
    assert [(c.open, c.close, c.volume, c.trades) for c in candles][-1] == (
        BTC_MID,
        BTC_MID - 200,
        700,
        2,
    )


async def test_ticker_subscriber_gets_ticker_updates(engine: Engine) -> None:
    _, receive = await _subscribe(engine, f"ticker.{BTC.symbol}")
    await place(engine, sell(BOB, 1000, BTC_MID))
    await place(engine, buy(ALICE, 400, BTC_MID))
    await quiesce(engine)
    messages = _drain(receive)
    snapshot, *updates = messages
    # Subscribed before any trade or quote: a snapshot all the same, its prices null.
    assert (snapshot["type"], snapshot["last"], snapshot["trades_24h"]) == ("snapshot", None, 0)
    assert updates
    assert {m["type"] for m in updates} == {"ticker"}
    assert messages[-1]["last"] == "1000"
    assert messages[-1]["volume_24h"] == "0.04"
    # The book's top and the last trade's quantity travel with the ticker, at its seq.
    assert (snapshot["bid_quantity"], snapshot["ask_quantity"], snapshot["last_quantity"]) == (
        "0", "0", "0",
    )  # fmt: skip
    last = messages[-1]
    assert (last["bid_quantity"], last["ask_quantity"], last["last_quantity"]) == (
        "0", "0.06", "0.04",
    )  # fmt: skip


async def test_orders_channel_requires_a_user(engine: Engine) -> None:
    send, _ = trio.open_memory_channel[str](10)
    with trio.fail_after(5):
        refused = await engine.subscribe("orders", send)
    assert isinstance(refused, Refused)
    assert refused.code == "unauthenticated"


async def test_unknown_channel_is_refused(engine: Engine) -> None:
    send, _ = trio.open_memory_channel[str](10)
    for channel in ("book.DOGE_AIT", "candles.BTC_AIT.7m", "candles.BTC_AIT", "news.BTC_AIT"):
        with trio.fail_after(5):
            refused = await engine.subscribe(channel, send)
        assert isinstance(refused, Refused), channel
        assert refused.code == "unknown_channel"


async def test_orders_channel_delivers_only_the_users_own_updates(engine: Engine) -> None:
    _, alice_updates = await _subscribe(engine, "orders", user=ALICE)
    _, bob_updates = await _subscribe(engine, "orders", user=BOB)
    resting = await place(engine, sell(BOB, 1000, BTC_MID))
    mine = await place(engine, buy(ALICE, 400, BTC_MID))
    other = await place(engine, buy(ALICE, 10, ETH_MID, symbol=ETH.symbol))
    with trio.fail_after(5):
        assert isinstance(await engine.cancel(other.order.order_id, ALICE), OrderResult)
        assert isinstance(await engine.cancel(resting.order.order_id, BOB), OrderResult)
    await quiesce(engine)
    alice = _drain(alice_updates)
    bob = _drain(bob_updates)
    alice_ids = {str(mine.order.order_id), str(other.order.order_id)}
    assert {m["order_id"] for m in alice} == alice_ids
    assert {m["order_id"] for m in bob} == {str(resting.order.order_id)}
    assert [m["event"] for m in alice] == [
        "OrderAccepted",
        "OrderFilled",
        "OrderAccepted",
        "OrderCancelled",
    ]
    assert [m["event"] for m in bob] == ["OrderAccepted", "OrderFilled", "OrderCancelled"]
    fill = alice[1]
    assert (fill["quantity"], fill["remaining_quantity"], fill["status"]) == ("0.04", "0", "filled")
    assert fill["filled_quantity"] == "0.04"


async def test_slow_subscriber_is_dropped_while_trading_goes_on(engine: Engine) -> None:
    _, slow = await _subscribe(engine, f"book.{BTC.symbol}", size=1)
    await _subscribe(engine, f"ticker.{BTC.symbol}", size=1)
    _, healthy = await _subscribe(engine, f"book.{BTC.symbol}")
    with trio.fail_after(5):
        assert await engine.subscribers() == 3
    for i in range(20):
        await place(engine, buy(ALICE, 10, BTC_MID - i))
    await quiesce(engine)
    with trio.fail_after(5):
        assert await engine.subscribers() == 1
    # The slow one got its snapshot, then its outbox was closed.
    assert json.loads(slow.receive_nowait())["type"] == "snapshot"
    try:
        slow.receive_nowait()
    except trio.EndOfChannel:
        pass
    else:
        raise AssertionError("the slow subscriber's outbox is still open")
    assert len(_drain(healthy)) == 21
    result = await place(engine, sell(BOB, 10, BTC_MID - 19))
    assert result.trades


async def test_a_ticker_snapshot_carries_the_tickers_own_seq() -> None:
    config = EngineConfig(settlement_interval=3600.0, ticker_interval=3600.0)
    async with open_market(InMemoryJournal(), config) as engine:
        await place(engine, sell(BOB, 1000, BTC_MID))
        await quiesce(engine)  # its ticker has gone out; the next waits an hour
        before = await engine.orderbook(BTC.symbol)
        await place(engine, buy(ALICE, 400, BTC_MID))
        await quiesce(engine)
        _, receive = await _subscribe(engine, f"ticker.{BTC.symbol}")
        after = await engine.orderbook(BTC.symbol)
        (snapshot,) = _drain(receive)
    assert before is not None
    assert after is not None
    assert (snapshot["last"], snapshot["ask_quantity"]) == (None, "0.1")
    assert snapshot["seq"] == before[0] < after[0]


async def test_tickers_are_throttled_but_the_last_one_always_arrives() -> None:
    config = EngineConfig(settlement_interval=3600.0, ticker_interval=0.3)
    async with open_market(InMemoryJournal(), config) as engine:
        _, receive = await _subscribe(engine, f"ticker.{BTC.symbol}")
        await place(engine, sell(BOB, 1000, BTC_MID + 50))
        for i in range(10):  # ten trades, each at a new price, well within 0.3 s
            await place(engine, buy(ALICE, 10, BTC_MID + 50))
            await place(engine, sell(BOB, 10, BTC_MID + 49 - i))
        await trio.sleep(0.7)
        messages = _drain(receive)
    assert messages[0]["type"] == "snapshot"
    assert 1 <= len(messages[1:]) <= 4, len(messages)
    assert messages[-1]["trades_24h"] == 10
