"""The audit replays a journal and reconciles books, holds, balances and the ledger."""

from __future__ import annotations

import trio

from tests.actors.helpers import ALICE, BOB, BTC, BTC_MID, buy, buy_hold, open_market, place, sell
from trading_engine.audit import audit
from trading_engine.core.account_events import ACCOUNTS_STREAM, Deposited
from trading_engine.core.events import OrderFilled
from trading_engine.storage.journal import InMemoryJournal


async def _trade(journal: InMemoryJournal) -> None:
    async with open_market(journal) as engine:
        await place(engine, sell(BOB, 3_000, 100_000))
        await place(engine, buy(ALICE, 1_000, 100_100))
        await place(engine, buy(ALICE, 500, 99_000))  # rests, holding funds
        with trio.fail_after(5):
            await engine.cancel_all(BOB)


async def test_audit_of_a_sound_journal_passes() -> None:
    journal = InMemoryJournal()
    await _trade(journal)
    report = await audit(journal)
    assert report["ok"], report["problems"]
    assert (report["symbols"], report["open_orders"], report["trades"]) == (2, 1, 1)
    assert report["hold_mismatches"] == []
    assert set(report["ledger_totals"].values()) == {0}


async def test_audit_reports_a_gap_in_a_stream() -> None:
    journal = InMemoryJournal()
    await _trade(journal)
    stream = journal._streams[BTC.symbol]
    del stream[len(stream) // 2]
    report = await audit(journal)
    assert not report["ok"]
    assert any("expected seq" in problem for problem in report["problems"])


async def test_audit_reports_balances_that_the_ledger_does_not_explain() -> None:
    journal = InMemoryJournal()
    await _trade(journal)
    # A deposit written to the accounts stream with the user's funds, but forged so
    # that the ledger and the accounts disagree: the amount is negative.
    accounts = journal._streams[ACCOUNTS_STREAM]
    forged = Deposited(accounts[-1].seq + 1, 0, ALICE, "AIT", -(10**30))
    accounts.append(forged)
    journal._log.append((ACCOUNTS_STREAM, forged))
    report = await audit(journal)
    assert not report["ok"]


async def test_audit_reports_a_held_balance_that_the_books_open_orders_do_not_need() -> None:
    """Alice's buy of 100 rests and fills 40 as the maker. The journal is then forged so
    that her fill says 50 lots remain, not 60: the book still holds 60 lots, the risk
    actor's record 50, and so her hold. The audit names her, the asset and both figures."""
    journal = InMemoryJournal()
    async with open_market(journal) as engine:
        await place(engine, buy(ALICE, 100, BTC_MID))
        await place(engine, sell(BOB, 40, BTC_MID))
    stream = journal._streams[BTC.symbol]
    fill = next(e for e in stream if isinstance(e, OrderFilled) and e.user_id == ALICE)
    values = fill.to_dict() | {"remaining": fill.remaining - 10}
    forged = OrderFilled(**values)
    stream[stream.index(fill)] = forged
    journal._log[journal._log.index((BTC.symbol, fill))] = (BTC.symbol, forged)
    report = await audit(journal)
    assert not report["ok"]
    expected, actual = buy_hold(BTC, 60, BTC_MID), buy_hold(BTC, 50, BTC_MID)
    assert report["hold_mismatches"] == [
        {"user_id": ALICE, "asset": "AIT", "expected": expected, "actual": actual}
    ]
    assert f"alice AIT: held {actual}, its open orders need {expected}" in " ".join(
        report["problems"]
    )
