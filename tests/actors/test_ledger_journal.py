"""Every ledger posting is journaled on ``$ledger``, and recovery rebuilds the ledger from it."""

from __future__ import annotations

from collections import defaultdict

import trio

from tests.actors.helpers import (
    ALICE,
    BOB,
    BTC_MID,
    all_trades,
    assert_ledger_matches_accounts,
    buy,
    open_market,
    place,
    sell,
    settle_everything,
)
from trading_engine.actors.engine import open_engine
from trading_engine.config import EngineConfig
from trading_engine.core.account_events import LEDGER_STREAM, Posted
from trading_engine.core.ids import Symbol, UserId
from trading_engine.storage.journal import InMemoryJournal

CONFIG = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0)
BTC = Symbol("BTC_AIT")


def _balances(postings: list[Posted]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for posting in postings:
        for account, asset, amount in posting.entries:
            out[account, asset] += amount
    return {key: value for key, value in out.items() if value}


async def _postings(journal: InMemoryJournal) -> list[Posted]:
    events = await journal.read(LEDGER_STREAM)
    postings = [e for e in events if isinstance(e, Posted)]
    assert len(postings) == len(events), "nothing but postings on the ledger stream"
    return postings


async def _trade_twice(journal: InMemoryJournal) -> None:
    async with open_market(journal, CONFIG) as engine:
        await place(engine, sell(BOB, 3, BTC_MID))
        await place(engine, buy(ALICE, 2, BTC_MID))
        await place(engine, buy(ALICE, 1, BTC_MID))
        answer = await settle_everything(engine, journal)
        assert len(answer["settled"]) == 2


async def test_each_posting_is_journaled_once_and_the_journal_sums_to_the_ledger() -> None:
    journal = InMemoryJournal()
    await _trade_twice(journal)
    postings = await _postings(journal)
    ids = [p.posting_id for p in postings]
    assert len(ids) == len(set(ids)), "no posting journaled twice"
    assert [p.seq for p in postings] == list(range(1, len(postings) + 1))
    trades = await all_trades(journal, BTC)
    assert {f"trade:{BTC}:{t.trade_id}" for t in trades} <= set(ids)
    assert sum(p.kind == "deposit" for p in postings) > 0
    # Every asset sums to zero over the journaled entries, posting by posting.
    for posting in postings:
        per_asset: dict[str, int] = defaultdict(int)
        for _, asset, amount in posting.entries:
            per_asset[asset] += amount
        assert not any(per_asset.values()), posting
    async with open_engine(CONFIG, journal) as engine:
        for (account, asset), amount in _balances(postings).items():
            if account.startswith("user:"):
                assert await engine.ledger_balance(UserId(account[5:]), asset) == amount
        for trade in trades:
            status = await engine.settlement(f"{BTC}:{trade.trade_id}")
            assert status is not None
            assert status["status"] == "settled"
        await assert_ledger_matches_accounts(engine, [ALICE, BOB])
        with trio.fail_after(5):
            await engine.settle([])  # a barrier: answered once what it posted is durable
    assert await _postings(journal) == postings, "reopening posts and journals nothing new"


async def test_a_posting_the_journal_never_got_is_made_again_and_journaled_on_restart() -> None:
    journal = InMemoryJournal()
    await _trade_twice(journal)
    postings = await _postings(journal)
    lost = postings[-1]
    assert lost.kind == "trade"
    # A crash after the trade was settled in memory but before its posting was written.
    del journal._streams[LEDGER_STREAM][-1]
    journal._log = [(s, e) for s, e in journal._log if e is not lost]
    async with open_engine(CONFIG, journal) as engine:
        with trio.fail_after(5):
            await engine.settle([])
        key = lost.posting_id.removeprefix("trade:")
        status = await engine.settlement(key)
        assert status is not None
        assert status["status"] == "settled"
        await assert_ledger_matches_accounts(engine, [ALICE, BOB])
    again = await _postings(journal)
    assert len(again) == len(postings)
    assert again[-1].posting_id == lost.posting_id
    assert again[-1].entries == lost.entries
