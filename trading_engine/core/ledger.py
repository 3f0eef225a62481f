"""A double-entry ledger: every movement of an asset is a posting whose entries sum to zero.

An ``Entry`` moves ``amount`` minor units of ``asset`` into ``account``
(positive: a credit, the balance grows; negative: a debit). A ``Posting``
groups the entries of one business event (a trade, a deposit, a withdrawal)
and is only ever built balanced: for every asset its amounts sum to zero.
It follows that the sum of all balances of an asset over all accounts is
zero at all times, which ``Ledger.totals_by_asset`` shows and
``Ledger.verify`` checks, as exchange-core's ``isGlobalBalancesAllZero`` does.

Accounts are plain strings: ``user_account(user_id)`` (``"user:<id>"``) for
users, ``FEES`` for what the exchange earns, and ``EXTERNAL`` as the
counterpart of deposits and withdrawals (its balance is minus what users
hold of the asset in total, fees included). Margin symbols add ``CLEARING``,
the counterpart of realized profit and loss (its balance is minus the cost of
all open positions), and ``INSURANCE``, which pays users' shortfalls.

The ledger does not check funds: the risk actor holds funds before an order
may rest, so a negative user balance here is a bug elsewhere, reported by
``Ledger.negative_balances`` rather than refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple

import attrs

from trading_engine.core.enums import Side
from trading_engine.core.events import Trade
from trading_engine.core.instruments import Instrument
from trading_engine.errors import InvalidInput, InvariantViolation

__all__ = [
    "CLEARING",
    "EXTERNAL",
    "FEES",
    "INSURANCE",
    "USER_PREFIX",
    "AccountEntry",
    "Entry",
    "Ledger",
    "Posting",
    "PostingKind",
    "deposit_posting",
    "margin_posting",
    "trade_posting",
    "user_account",
    "withdrawal_posting",
]

FEES = "fees"
"""The exchange's fee income (maker rebates are paid from it)."""
EXTERNAL = "external"
"""The world outside the exchange: the counterpart of deposits and withdrawals."""
CLEARING = "clearing"
"""Margin mode: the counterpart of realized profit and loss."""
INSURANCE = "insurance"
"""Margin mode: the insurance fund, which covers a user's loss beyond their collateral."""
USER_PREFIX = "user:"


def user_account(user_id: str) -> str:
    """The account name of a user: ``"user:<user_id>"``."""
    return USER_PREFIX + user_id


class PostingKind(StrEnum):
    TRADE = "trade"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    MARGIN = "margin"


class Entry(NamedTuple):
    """``amount`` minor units of ``asset`` credited (> 0) or debited (< 0) to ``account``."""

    account: str
    asset: str
    amount: int

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its fields, rebuilt by ``tuple.__new__`` (snapshots hold many)."""
        return tuple.__new__, (Entry, tuple(self))


@attrs.frozen
class Posting:
    """One balanced set of entries, identified by ``posting_id``; build it with ``create``.

    Invariants: at least one entry; no entry of zero; for every asset the
    amounts sum to zero. ``kind`` is usually a ``PostingKind``; ``ts`` is in
    nanoseconds since the epoch.
    """

    posting_id: str
    kind: str
    entries: tuple[Entry, ...]
    ts: int

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its constructor's arguments: attrs' own state methods are slower."""
        return Posting, (self.posting_id, self.kind, self.entries, self.ts)

    @classmethod
    def create(cls, posting_id: str, kind: str, entries: Iterable[Entry], ts: int) -> Posting:
        """Build a posting and check its invariants.

        Raises ``InvariantViolation`` if ``posting_id`` or ``kind`` is empty,
        there are no entries, an amount is zero, or the amounts of some asset
        do not sum to zero.
        """
        posting = cls(posting_id=posting_id, kind=kind, entries=tuple(entries), ts=ts)
        posting.check()
        return posting

    def check(self) -> None:
        """Raise ``InvariantViolation`` unless the posting keeps the invariants above."""
        if not self.posting_id or not self.kind:
            raise InvariantViolation("a posting needs a posting_id and a kind")
        if not self.entries:
            raise InvariantViolation(f"posting {self.posting_id} has no entries")
        sums: dict[str, int] = {}
        for entry in self.entries:
            if entry.amount == 0:
                raise InvariantViolation(
                    f"posting {self.posting_id}: an entry of zero for {entry.account}"
                )
            sums[entry.asset] = sums.get(entry.asset, 0) + entry.amount
        unbalanced = {asset: total for asset, total in sums.items() if total != 0}
        if unbalanced:
            raise InvariantViolation(
                f"posting {self.posting_id} does not balance: {sorted(unbalanced.items())}"
            )

    def key(self) -> tuple[str, str, tuple[tuple[str, str, int], ...], int]:
        """Every field as plain values, for comparing postings (``kind`` as its string)."""
        entries = tuple((entry.account, entry.asset, entry.amount) for entry in self.entries)
        return (self.posting_id, str(self.kind), entries, self.ts)

    def deltas(self) -> dict[tuple[str, str], int]:
        """The net change of each ``(account, asset)`` this posting touches (zeros kept)."""
        out: dict[tuple[str, str], int] = {}
        for entry in self.entries:
            key = (entry.account, entry.asset)
            out[key] = out.get(key, 0) + entry.amount
        return out


class AccountEntry(NamedTuple):
    """One line of an account's history: an entry, its posting, and the balance after it."""

    posting_id: str
    kind: str
    ts: int
    asset: str
    amount: int
    balance: int
    """The account's balance of ``asset`` right after this entry."""


class Ledger:
    """Balances per ``(account, asset)``, changed only by balanced postings.

    Invariants: ``totals_by_asset()`` is all zeros; each posting id is
    applied at most once. Posting is idempotent by id, so replaying a
    journal or retrying a settlement is harmless. With ``remember=N`` only the
    ``N`` newest ids are known: an older one posted again is applied again,
    so the caller must never repeat one (the settlement actor doesn't).
    """

    def __init__(self, *, keep_history: bool = True, remember: int = 0) -> None:
        self._postings: dict[str, Posting] = {}
        self._balances: dict[tuple[str, str], int] = {}
        self._history: dict[str, list[AccountEntry]] = {}
        self._keep_history = keep_history
        """Off in the settlement actor: the history lives in storage, not in memory."""
        self._remember = remember
        """How many of the newest postings are kept, to refuse a repeated id (0: all).
        The settlement actor keeps a bounded number: it never posts an id twice by
        construction, and a running engine must not grow with every trade."""
        self._newest: deque[str] = deque()
        """With ``remember``: the ids kept, oldest first."""
        self._applied = 0

    def post(self, posting: Posting) -> bool:
        """Apply ``posting``; return ``True``, or ``False`` if this very posting was applied.

        Raises ``InvariantViolation`` if a different posting was applied under
        the same id, or if ``posting`` does not balance (it was built around
        ``Posting.create``). Nothing changes when it raises or returns ``False``.
        """
        known = self._postings.get(posting.posting_id)
        if known is not None:
            # Compared by value explicitly: compiled by mypyc, ``!=`` between attrs
            # instances falls back to identity.
            if known.key() != posting.key():
                raise InvariantViolation(
                    f"posting {posting.posting_id} was already applied with other contents"
                )
            return False
        posting.check()
        self._postings[posting.posting_id] = posting
        self._applied += 1
        if self._remember:
            self._newest.append(posting.posting_id)
            self._forget_oldest()
        for entry in posting.entries:
            key = (entry.account, entry.asset)
            balance = self._balances.get(key, 0) + entry.amount
            self._balances[key] = balance
            if not self._keep_history:
                continue
            line = AccountEntry(
                posting_id=posting.posting_id,
                kind=posting.kind,
                ts=posting.ts,
                asset=entry.asset,
                amount=entry.amount,
                balance=balance,
            )
            self._history.setdefault(entry.account, []).append(line)
        return True

    def remember_newest(self, count: int) -> None:
        """From now on keep the ``count`` newest posting ids (0: every one from now on)."""
        if count and not self._remember:
            self._newest = deque(self._postings)
        self._remember = count
        if count:
            self._forget_oldest()
        else:
            self._newest.clear()

    def _forget_oldest(self) -> None:
        """Drop the oldest posting ids beyond ``remember``."""
        while len(self._newest) > self._remember:
            del self._postings[self._newest.popleft()]

    def __contains__(self, posting_id: object) -> bool:
        """Whether ``posting_id`` was applied (among the ``remember`` newest, if set)."""
        return posting_id in self._postings

    def __len__(self) -> int:
        """The number of postings applied."""
        return self._applied

    def posting(self, posting_id: str) -> Posting | None:
        """The posting applied under ``posting_id`` (among the ``remember`` newest, if
        set), or ``None``."""
        return self._postings.get(posting_id)

    def balance(self, account: str, asset: str) -> int:
        """The balance of ``asset`` in ``account``; 0 for one never posted to."""
        return self._balances.get((account, asset), 0)

    def balances(self) -> dict[tuple[str, str], int]:
        """Every non-zero balance, keyed by ``(account, asset)``; a copy."""
        return {key: value for key, value in self._balances.items() if value != 0}

    def totals_by_asset(self) -> dict[str, int]:
        """The sum of each asset's balances over all accounts: zero for every asset ever posted."""
        totals: dict[str, int] = {}
        for (_, asset), value in self._balances.items():
            totals[asset] = totals.get(asset, 0) + value
        return totals

    def verify(self) -> None:
        """Raise ``InvariantViolation`` if some asset's balances do not sum to zero."""
        wrong = {asset: total for asset, total in self.totals_by_asset().items() if total}
        if wrong:
            raise InvariantViolation(f"ledger totals are not zero: {sorted(wrong.items())}")

    def entries(self, account: str, asset: str | None = None) -> list[AccountEntry]:
        """The history of ``account`` (of one ``asset`` if given), oldest first; a copy."""
        lines = self._history.get(account, [])
        if asset is None:
            return list(lines)
        return [line for line in lines if line.asset == asset]

    def negative_balances(self) -> list[tuple[str, str, int]]:
        """User balances below zero as ``(account, asset, balance)``, sorted; should be empty.

        ``FEES`` may go negative through rebates and ``EXTERNAL`` is negative by
        design, so only user accounts are listed.
        """
        return sorted(
            (account, asset, value)
            for (account, asset), value in self._balances.items()
            if value < 0 and account.startswith(USER_PREFIX)
        )


def trade_posting(trade: Trade, instrument: Instrument) -> Posting:
    """The posting that settles ``trade``: id ``"trade:<symbol>:<trade_id>"``, kind ``trade``.

    The buyer (the taker if the aggressor bought, else the maker) receives
    ``base_units(quantity)`` of the base asset and pays ``notional + its fee``
    of the quote asset; the seller delivers the base and receives
    ``notional - its fee``; ``FEES`` receives ``maker_fee + taker_fee``
    (negative if a rebate exceeded the taker fee, which instruments forbid
    but this does not assume). Entries of zero (no fee) are left out. A
    self-trade posts both sides to the same account and still balances.

    Raises ``InvariantViolation`` if the trade is for another symbol or its
    price or quantity is not positive.
    """
    if trade.symbol != instrument.symbol:
        raise InvariantViolation(
            f"trade {trade.trade_id} is for {trade.symbol}, not {instrument.symbol}"
        )
    if trade.price <= 0 or trade.quantity <= 0:
        raise InvariantViolation(f"trade {trade.trade_id} has a non-positive price or quantity")
    if trade.aggressor == Side.BUY:
        buyer, buyer_fee = trade.taker_user_id, trade.taker_fee
        seller, seller_fee = trade.maker_user_id, trade.maker_fee
    else:
        buyer, buyer_fee = trade.maker_user_id, trade.maker_fee
        seller, seller_fee = trade.taker_user_id, trade.taker_fee
    base = instrument.base_units(trade.quantity)
    notional = instrument.notional(trade.price, trade.quantity)
    base_asset, quote_asset = instrument.base_asset, instrument.quote_asset
    candidates = [
        Entry(user_account(buyer), base_asset, base),
        Entry(user_account(seller), base_asset, -base),
        Entry(user_account(buyer), quote_asset, -(notional + buyer_fee)),
        Entry(user_account(seller), quote_asset, notional - seller_fee),
        Entry(FEES, quote_asset, trade.maker_fee + trade.taker_fee),
    ]
    return Posting.create(
        posting_id=f"trade:{trade.symbol}:{trade.trade_id}",
        kind=PostingKind.TRADE,
        entries=[entry for entry in candidates if entry.amount != 0],
        ts=trade.ts,
    )


def deposit_posting(posting_id: str, user_id: str, asset: str, amount: int, ts: int) -> Posting:
    """Credit ``amount`` of ``asset`` to the user, debiting ``EXTERNAL``; kind ``deposit``.

    Raises ``InvalidInput`` unless ``amount`` is positive and ``posting_id``,
    ``user_id`` and ``asset`` are non-empty. (``amount`` is an ``int`` parsed at
    the edge, where bools and floats are refused.)
    """
    _check_transfer(posting_id, user_id, asset, amount)
    return Posting.create(
        posting_id,
        PostingKind.DEPOSIT,
        (Entry(user_account(user_id), asset, amount), Entry(EXTERNAL, asset, -amount)),
        ts,
    )


def withdrawal_posting(posting_id: str, user_id: str, asset: str, amount: int, ts: int) -> Posting:
    """Debit ``amount`` of ``asset`` from the user, crediting ``EXTERNAL``; kind ``withdrawal``.

    Raises ``InvalidInput`` as ``deposit_posting`` does. Whether the user
    holds enough is the risk actor's check, not this one's.
    """
    _check_transfer(posting_id, user_id, asset, amount)
    return Posting.create(
        posting_id,
        PostingKind.WITHDRAWAL,
        (Entry(user_account(user_id), asset, -amount), Entry(EXTERNAL, asset, amount)),
        ts,
    )


def margin_posting(
    posting_id: str,
    user_id: str,
    asset: str,
    realized: int,
    fee: int,
    insurance: int,
    ts: int,
) -> Posting | None:
    """One side of a margin trade: realized against ``CLEARING``, the fee to ``FEES``,
    insurance from ``INSURANCE``; kind ``margin``. None when every amount is zero.
    """
    user = user_account(user_id)
    candidates = [
        Entry(user, asset, realized),
        Entry(CLEARING, asset, -realized),
        Entry(user, asset, -fee),
        Entry(FEES, asset, fee),
        Entry(user, asset, insurance),
        Entry(INSURANCE, asset, -insurance),
    ]
    entries = [entry for entry in candidates if entry.amount != 0]
    if not entries:
        return None
    return Posting.create(posting_id, PostingKind.MARGIN, entries, ts)


def _check_transfer(posting_id: str, user_id: str, asset: str, amount: int) -> None:
    if amount <= 0:
        raise InvalidInput("amount", "must be positive")
    for field, value in (("posting_id", posting_id), ("user_id", user_id), ("asset", asset)):
        if not value:
            raise InvalidInput(field, "must not be empty")
