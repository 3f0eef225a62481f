"""``trading-engine audit``: check a journal from end to end, changing nothing.

1. The hash chain of every stream (journals that keep one: PostgreSQL).
2. A full replay through the same recovery the engine runs: every ``seq``
   follows on without a gap, and every event fits the state it lands on.
3. Each symbol's book rebuilt from its events keeps the book's invariants,
   and its depth equals the market-data book built from the published levels.
4. No balance is negative, and each account's held funds equal the holds of
   its open orders; every open order in a book holds funds, and no hold
   belongs to an order that is not open. Every user's held balance in each
   asset is exactly what the open orders in the rebuilt books need, computed
   from those orders alone (``core.holds``: a buy its remaining lots at its
   price plus the worst fee, a sell its remaining base quantity, margin
   orders and positions their margin); each one that is not is listed in
   ``hold_mismatches`` with the user, the asset, and both figures.
5. The ledger: every asset sums to zero over all accounts (fees and the
   external account included), every trade is settled, and every user's
   ledger balance equals available + held for every asset.
6. Margin mode: every open margin order has its margin entry (instead of a
   hold), and the ledger's insurance account equals the risk actor's
   insurance fund for every asset.
7. The read tables (PostgreSQL) agree with the replay: every balance equals
   the ledger's as journaled (the replay's, less the postings it had to make
   because a crash lost them), every trade is there, pending exactly when
   its posting was never journaled, and the orders by status, all of them
   and the reduce-only ones, are the replayed ones.

The report is one JSON-able dict; ``ok`` is false if any check found a problem.
A check that cannot be made is a problem too, never an exception out of here:
read tables that are behind the journal and cannot be caught up (their
projection fails), a database error, or a check that raises.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trading_engine.actors.engine import build_actors
from trading_engine.actors.risk import RiskActor
from trading_engine.actors.settlement import SettlementActor
from trading_engine.actors.symbol import rebuild_matcher
from trading_engine.config import EngineConfig
from trading_engine.core.enums import ListStatus
from trading_engine.core.holds import OpenOrder
from trading_engine.core.ids import OrderId
from trading_engine.core.ledger import INSURANCE, PostingKind, user_account
from trading_engine.errors import TradingEngineError
from trading_engine.storage.journal import Journal

__all__ = ["audit"]


async def audit(journal: Journal, config: EngineConfig | None = None) -> dict[str, Any]:
    """Check ``journal`` (see the module docstring); ``config`` is the engine's to replay
    with, by default one with no order expiry and the default memory bounds.

    Never raises for what it finds: a check that raises (the read tables behind the
    journal and projecting them failing, a database error, a flaw in the check itself)
    is reported as a problem of that check, and the checks that don't need it still run.
    """
    started = time.perf_counter()
    problems: list[str] = []
    report: dict[str, Any] = {"ok": False, "problems": problems}
    verify = getattr(journal, "verify_chain", None)
    if verify is not None:
        with _reported("hash chain", problems):
            broken = await verify()
            report["hash_chain"] = "ok" if broken is None else f"broken at {broken}"
            if broken is not None:
                problems.append(f"hash chain broken at stream {broken[0]} seq {broken[1]}")
    actors = None
    with _reported("replay", problems):
        try:
            actors = await build_actors(config or EngineConfig(expire_every=float("inf")), journal)
        except TradingEngineError as exc:
            problems.append(f"replay failed: {exc}")
    if actors is None:
        report["seconds"] = round(time.perf_counter() - started, 3)
        return report
    risk, settlement, market_data = actors.risk, actors.settlement, actors.market_data
    live_orders: set[int] = set()
    book_orders: list[OpenOrder] = []
    symbols = actors.supervisor.handles
    for symbol, handle in symbols.items():
        with _reported(symbol, problems):
            try:
                matcher = await rebuild_matcher(handle.instrument, journal)
                matcher.book.check()
            except TradingEngineError as exc:
                problems.append(f"{symbol}: {exc}")
                continue
            live_orders.update(matcher.orders)
            book_orders.extend(
                (handle.instrument, order.spec, order.price, order.remaining)
                for order in matcher.orders.values()
            )
            published = market_data.query_book(symbol, None)
            if published is not None and (published[1], published[2]) != matcher.depth():
                problems.append(f"{symbol}: the published book differs from the rebuilt one")
    totals: dict[str, int] = {}
    with _reported("accounts and ledger", problems):
        totals = _check_accounts(risk, settlement, live_orders, problems)
    report["hold_mismatches"] = []
    with _reported("holds", problems):
        mismatches = risk.hold_mismatches(book_orders)
        if mismatches:
            shown = "; ".join(str(mismatch) for mismatch in mismatches[:10])
            problems.append(f"held is not what the open orders need: {shown}")
        report["hold_mismatches"] = [mismatch._asdict() for mismatch in mismatches]
    read_tables = getattr(journal, "read_tables", None)
    if read_tables is not None:
        with _reported("read tables", problems):
            problems.extend(await _check_read_tables(await read_tables(), risk, settlement))
    report.update(
        ok=not problems,
        symbols=len(symbols),
        users=len(risk.users),
        open_orders=len(live_orders),
        trades=settlement.trades,
        ledger_totals=totals,
        seconds=round(time.perf_counter() - started, 3),
    )
    return report


@contextmanager
def _reported(check: str, problems: list[str]) -> Iterator[None]:
    """Report an exception out of ``check`` as its problem, so that the audit goes on
    and prints its report: finding what is wrong is its job, and a traceback tells
    an operator less than the check's name and the error's message."""
    try:
        yield
    except TradingEngineError as exc:  # ours say what went wrong: ReadTablesBehind, ...
        problems.append(f"{check}: {exc}")
    except Exception as exc:  # noqa: BLE001 - see the docstring
        problems.append(f"{check}: the check failed: {type(exc).__name__}: {exc}")


def _check_accounts(
    risk: RiskActor, settlement: SettlementActor, live_orders: set[int], problems: list[str]
) -> dict[str, int]:
    """Checks 4 to 6 of the module docstring; the ledger's totals by asset."""
    try:
        risk.accounts.check()
    except TradingEngineError as exc:
        problems.append(f"accounts: {exc}")
    held_orders = set(risk.accounts.holds) | set(risk.margin.orders)
    # An OCO pair's legs share one hold, under one leg's id; a list's members not placed
    # yet hold funds before they are in a book.
    pairs = risk.hold_groups
    live_orders = {pairs.get(OrderId(o), OrderId(o)) for o in live_orders}
    for order_list in risk.lists.values():
        if order_list.status is ListStatus.OPEN:
            live_orders.update(pairs.get(o, o) for o in order_list.deferred)
    if held_orders != live_orders:
        problems.append(
            f"holds without an open order: {sorted(held_orders - live_orders)[:10]}; "
            f"open orders without a hold: {sorted(live_orders - held_orders)[:10]}"
        )
    totals = settlement.ledger.totals_by_asset()
    if any(totals.values()):
        problems.append(f"the ledger does not sum to zero: {totals}")
    counts = settlement.query_counts()
    if counts["pending"] or counts["failed"]:
        problems.append(f"trades not settled: {counts}")
    mismatched = []
    for (user_id, asset), available in risk.accounts.available.items():
        held = risk.accounts.held.get((user_id, asset), 0)
        ledger = settlement.ledger.balance(user_account(user_id), asset)
        if ledger != available + held:
            mismatched.append(f"{user_id} {asset}: ledger {ledger}, accounts {available + held}")
    if mismatched:
        problems.append(f"balances differ from the ledger: {mismatched[:10]}")
    for asset in set(risk.accounts.insurance) | set(totals):
        fund = risk.accounts.insurance.get(asset, 0)
        if settlement.ledger.balance(INSURANCE, asset) != fund:
            problems.append(f"insurance {asset}: ledger differs from the fund {fund}")
    return totals


async def _check_read_tables(
    tables: dict[str, Any], risk: RiskActor, settlement: SettlementActor
) -> list[str]:
    problems = []
    # What the journal holds of the ledger: the replay's, less what replay posted itself.
    journaled = Counter(settlement.ledger.balances())
    for posting in settlement.unjournaled.values():
        journaled.subtract(posting.deltas())
    ledger = {key: amount for key, amount in journaled.items() if amount}
    if tables["balances"] != ledger:
        differ = sorted(
            key
            for key in set(ledger) | set(tables["balances"])
            if ledger.get(key) != tables["balances"].get(key)
        )
        problems.append(f"read tables: balances differ from the ledger at {differ[:10]}")
    unposted = sum(p.kind == PostingKind.TRADE for p in settlement.unjournaled.values())
    if (tables["trades"], tables["unsettled"]) != (settlement.trades, unposted):
        problems.append(
            f"read tables: {tables['trades']} trades, {tables['unsettled']} pending;"
            f" the journal: {settlement.trades} trades, {unposted} without a posting"
        )
    # Every order: those risk keeps, and those it counted as it dropped them.
    kept = Counter((str(r.status), r.spec.reduce_only) for r in risk.orders.values())
    everything = kept + Counter(risk.finished_earlier)
    replayed: Counter[str] = Counter()
    reducing: Counter[str] = Counter()
    for (status, reduce_only), count in everything.items():
        replayed[status] += count
        if reduce_only:
            reducing[status] += count
    if tables["orders"] != replayed:
        problems.append(f"read tables: orders by status {tables['orders']}, replayed {replayed}")
    if tables["reduce_only_orders"] != reducing:
        problems.append(
            f"read tables: reduce-only orders by status {tables['reduce_only_orders']},"
            f" replayed {reducing}"
        )
    return problems
