"""The settlement actor: durable trades become double-entry ledger postings.

Each trade arrives ``pending``. Every ``interval`` seconds, and at once for
the trades named in a ``SettleTrades`` trigger, pending trades are posted
(buyer, seller and fee account; every posting sums to zero per asset) and
become ``settled``; a trade that cannot be posted becomes ``failed`` with
the reason. Posting is idempotent by trade id. Deposits and withdrawals are
posted against the external account as soon as they are durable.

Margin symbols post no base asset: a margin trade's money is the two
``MarginSettled`` events risk writes to the ``$accounts`` stream (realized
against ``CLEARING``, the fee to ``FEES``, insurance from ``INSURANCE``),
posted as soon as they are durable; the trade is ``settled`` once both are.

Trade ids outside the engine are ``SYMBOL:N`` (``BTC_AIT:42``).

Every posting is journaled as a ``Posted`` event on the ``$ledger`` stream
(it fills the ``ledger_entries`` read table and marks the trade settled
there); the answer to a trigger leaves once its postings are durable. On
recovery the ledger is rebuilt from those events; a posting the journal
never got (a crash between posting and journaling) is made again from its
trade or account event and journaled then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from trading_engine.actors.mailbox import Reply, receive_batch
from trading_engine.actors.messages import (
    Commit,
    CommittedBatch,
    Query,
    SettleTrades,
    SymbolStatus,
)
from trading_engine.core.account_events import (
    ACCOUNTS_STREAM,
    LEDGER_STREAM,
    Deposited,
    MarginSettled,
    Posted,
    Withdrawn,
)
from trading_engine.core.events import Journaled, Trade
from trading_engine.core.ids import Symbol
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.ledger import (
    Entry,
    Ledger,
    Posting,
    PostingKind,
    deposit_posting,
    margin_posting,
    trade_posting,
    user_account,
    withdrawal_posting,
)
from trading_engine.errors import TradingEngineError

__all__ = ["SettlementActor", "trade_key"]

_SLICE = 200
PENDING = "pending"
SETTLED = "settled"
FAILED = "failed"


def trade_key(symbol: str, trade_id: int) -> str:
    return f"{symbol}:{trade_id}"


class _Record:
    __slots__ = ("margin", "reason", "settled_ts", "status", "trade")

    def __init__(self, trade: Trade, *, margin: bool = False) -> None:
        self.trade = trade
        self.margin = margin
        """A margin trade: settled by its two MarginSettled postings, not by ``settle``."""
        self.status = PENDING
        self.reason: str | None = None
        self.settled_ts: int | None = None


class SettlementActor:
    NOT_IN_SNAPSHOT = frozenset({"_inbox", "_journal", "_interval", "_replies"})
    """Channels, settings and replies; every other attribute is in engine snapshots."""

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[Any],
        journal: trio.MemorySendChannel[Commit],
        *,
        interval: float = 1.0,
    ) -> None:
        self._inbox = inbox
        self._journal = journal
        self._interval = interval
        self.ledger = Ledger(keep_history=False)
        self.seq = 0
        """The last seq of the ``$ledger`` stream."""
        self.unjournaled: dict[str, Posting] = {}
        """Postings made but not yet handed to the journal, in the order made."""
        self._replies: list[tuple[Reply[Any], object]] = []
        self.instruments: dict[Symbol, Instrument] = {}
        self.records: dict[str, _Record] = {}
        self.pending: dict[str, _Record] = {}
        self.margin_posted: dict[str, int] = {}
        """Per margin trade key: how many of its MarginSettled events are posted."""

    async def run(self) -> None:
        await self._journal_postings()  # what recovery posted, the journal never got
        due = trio.current_time() + self._interval
        while True:
            batch: list[Any] | None = []
            with trio.move_on_at(due):
                batch = await receive_batch(self._inbox)
                if batch is None:
                    return
            for message in batch or ():
                self.handle(message)
            await self._journal_postings()
            if trio.current_time() >= due:
                # In slices, one journal write each: a second's worth of trades
                # would stall the other actors of this thread, and its postings in
                # one transaction would hold up every order committed behind it.
                pending = list(self.pending)
                for start in range(0, len(pending), _SLICE):
                    self.settle(pending[start : start + _SLICE])
                    await self._journal_postings(wait=True)
                due = trio.current_time() + self._interval

    async def _journal_postings(self, *, wait: bool = False) -> None:
        """Hand what was posted since the last call to the journal, with the replies
        that wait for it; the journal actor answers them once it is durable.

        ``wait``: return only once it is durable.
        """
        if not self.unjournaled and not self._replies:
            await trio.lowlevel.checkpoint()
            return
        if wait:
            durable: Reply[None] = Reply()
            self._replies.append((durable, None))
        events = []
        for posting in self.unjournaled.values():
            self.seq += 1
            entries = tuple((e.account, e.asset, e.amount) for e in posting.entries)
            events.append(Posted(self.seq, posting.ts, posting.posting_id, posting.kind, entries))
        replies = tuple(self._replies)
        self.unjournaled.clear()
        self._replies.clear()
        await self._journal.send(Commit(LEDGER_STREAM, events, replies))
        if wait:
            await durable.wait()

    def _post(self, posting: Posting) -> bool:
        """Post to the ledger; a new posting waits to be journaled."""
        if not self.ledger.post(posting):
            return False
        self.unjournaled[posting.posting_id] = posting
        return True

    def handle(self, message: object) -> None:
        match message:
            case CommittedBatch(commits=commits):
                for commit in commits:
                    self.apply(commit.stream, commit.events)
            case SettleTrades(trade_ids=trade_ids, reply=reply):
                self._replies.append((reply, self.settle(list(trade_ids))))
            case SymbolStatus(instrument=instrument):
                self.instruments[instrument.symbol] = instrument
            case Query(what=what, args=args, reply=reply):
                reply.send(getattr(self, f"query_{what}")(*args))

    def apply(self, stream: str, events: Sequence[Journaled]) -> None:
        if stream == LEDGER_STREAM:
            for event in events:
                assert isinstance(event, Posted)
                self._replay(event)
            return
        if stream == ACCOUNTS_STREAM:
            for event in events:
                if isinstance(event, Deposited):
                    posting_id = f"deposit:{event.seq}"
                    self._post(
                        deposit_posting(
                            posting_id, event.user_id, event.asset, event.amount, event.ts
                        )
                    )
                elif isinstance(event, Withdrawn):
                    posting_id = f"withdrawal:{event.seq}"
                    self._post(
                        withdrawal_posting(
                            posting_id, event.user_id, event.asset, event.amount, event.ts
                        )
                    )
                elif isinstance(event, MarginSettled):
                    self._post_margin(event)
            return
        for event in events:
            if isinstance(event, Trade):
                key = trade_key(event.symbol, event.trade_id)
                if key not in self.records:
                    instrument = self.instruments.get(event.symbol)
                    margin = instrument is not None and instrument.mode is Mode.MARGIN
                    record = self.records[key] = _Record(event, margin=margin)
                    self.pending[key] = record
                    if margin:
                        self._margin_settled(key)

    def _replay(self, event: Posted) -> None:
        """A journaled posting: into the ledger as it was made (if replay has not
        made it already from its account event), and its trade is settled."""
        self.seq = event.seq
        entries = [Entry(*entry) for entry in event.entries]
        posting = Posting.create(event.posting_id, event.kind, entries, event.ts)
        self.ledger.post(posting)
        self.unjournaled.pop(posting.posting_id, None)
        if event.kind == PostingKind.TRADE:
            record = self.records.get(event.posting_id.removeprefix(f"{PostingKind.TRADE}:"))
            if record is not None and record.status != SETTLED:
                record.status = SETTLED
                record.reason = None
                record.settled_ts = record.trade.ts
                self.pending.pop(trade_key(record.trade.symbol, record.trade.trade_id), None)

    def _post_margin(self, event: MarginSettled) -> None:
        instrument = self.instruments[event.symbol]
        posting = margin_posting(
            f"margin:{event.seq}", event.user_id, instrument.quote_asset,
            event.realized, event.fee, event.insurance, event.ts,
        )  # fmt: skip
        if posting is not None and not self._post(posting):
            return  # posted before: counted before
        key = trade_key(event.symbol, event.trade_id)
        self.margin_posted[key] = self.margin_posted.get(key, 0) + 1
        self._margin_settled(key)

    def _margin_settled(self, key: str) -> None:
        """A margin trade whose both sides are posted becomes settled."""
        record = self.records.get(key)
        if record is None or record.status == SETTLED or self.margin_posted.get(key, 0) < 2:
            return
        record.status = SETTLED
        record.settled_ts = record.trade.ts
        self.pending.pop(key, None)
        del self.margin_posted[key]

    def settle(self, keys: list[str]) -> dict[str, list[str]]:
        """Post the named trades; returns which settled now, were settled, failed, are unknown."""
        result: dict[str, list[str]] = {
            "settled": [],
            "already_settled": [],
            "failed": [],
            "unknown": [],
        }
        for key in keys:
            record = self.records.get(key)
            if record is None:
                result["unknown"].append(key)
                continue
            if record.status == SETTLED:
                result["already_settled"].append(key)
                continue
            if record.margin:
                continue  # its MarginSettled events settle it, once durable
            trade = record.trade
            try:
                instrument = self.instruments[trade.symbol]
                self._post(trade_posting(trade, instrument))
            except (KeyError, TradingEngineError) as exc:
                record.status = FAILED
                record.reason = f"{type(exc).__name__}: {exc}"
                result["failed"].append(key)
            else:
                record.status = SETTLED
                record.reason = None
                record.settled_ts = trade.ts
                result["settled"].append(key)
            self.pending.pop(key, None)
        return result

    # ------------------------------------------------------------ queries

    def query_status(self, key: str) -> dict[str, object] | None:
        record = self.records.get(key)
        if record is None:
            return None
        trade = record.trade
        return {
            "trade_id": key,
            "symbol": trade.symbol,
            "status": record.status,
            "reason": record.reason,
            "price": trade.price,
            "quantity": trade.quantity,
            "buyer": trade.taker_user_id if str(trade.aggressor) == "buy" else trade.maker_user_id,
            "seller": trade.maker_user_id if str(trade.aggressor) == "buy" else trade.taker_user_id,
            "ts": trade.ts,
        }

    def query_totals(self) -> dict[str, int]:
        """Sum over every account per asset: zero for every asset, always."""
        return self.ledger.totals_by_asset()

    def query_balance(self, user_id: str, asset: str) -> int:
        return self.ledger.balance(user_account(user_id), asset)

    def query_counts(self) -> dict[str, int]:
        counts = {PENDING: 0, SETTLED: 0, FAILED: 0}
        for record in self.records.values():
            counts[record.status] += 1
        return counts
