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

Memory stays bounded: with ``keep_settled=N`` the actor keeps the records of
pending and failed trades and of the ``N`` most recently settled, and the
ledger remembers the ``N`` newest posting ids. A trade settled longer ago is
known by its id alone (a symbol's trade ids are dense: ``SYMBOL:n`` for every
``n`` up to the last one seen was a trade, and only settled records are
dropped), so a status query says ``settled`` without its details (the API
reads those from the read tables) and a trigger says ``already_settled``.
Nothing is ever posted twice without the ledger's own check: a trade is
recorded once (its id above the symbol's last), posted once (only while its
record is pending or failed), and a replayed ``Posted`` event is applied
unless replay has just made the same posting from its account event, which
is then still in ``unjournaled``.

Every posting is journaled as a ``Posted`` event on the ``$ledger`` stream
(it fills the ``ledger_entries`` read table and marks the trade settled
there); the answer to a trigger leaves once its postings are durable. On
recovery the ledger is rebuilt from those events; a posting the journal
never got (a crash between posting and journaling) is made again from its
trade or account event and journaled then.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, assert_never

import trio

from trading_engine.actors.answers import TradeStatus
from trading_engine.actors.mailbox import Reply, receive_batch
from trading_engine.actors.messages import (
    Commit,
    CommittedBatch,
    Query,
    SettlementMessage,
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
from trading_engine.errors import InvariantViolation, TradingEngineError

__all__ = ["SettlementActor", "parties", "trade_key"]

_SLICE = 200
PENDING = "pending"
SETTLED = "settled"
FAILED = "failed"


def parties(trade: Trade) -> tuple[str, str]:
    """The trade's buyer and seller: the taker is the buyer if the aggressor bought."""
    if str(trade.aggressor) == "buy":
        return trade.taker_user_id, trade.maker_user_id
    return trade.maker_user_id, trade.taker_user_id


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
    NOT_IN_SNAPSHOT = frozenset({"_inbox", "_journal", "_interval", "_keep_settled", "_replies"})
    """Channels, settings and replies; every other attribute is in engine snapshots."""

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[SettlementMessage],
        journal: trio.MemorySendChannel[Commit],
        *,
        interval: float = 1.0,
        keep_settled: int = 0,
    ) -> None:
        self._inbox = inbox
        self._journal = journal
        self._interval = interval
        self._keep_settled = keep_settled
        """Settled records (and posting ids) kept in memory; 0 keeps every one."""
        self.ledger = Ledger(keep_history=False, remember=keep_settled)
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
        self.last_trade: dict[str, int] = {}
        """Per symbol, the last trade id recorded: ids up to it were all trades."""
        self.trades = 0
        """Trades recorded, settled records dropped or not."""
        self.settled_keys: deque[str] = deque()
        """With ``keep_settled``: the settled records kept, in the order they settled."""

    async def run(self) -> None:
        self.ledger.remember_newest(self._keep_settled)  # the setting, not a snapshot's
        self._forget_settled()
        await self._journal_postings()  # what recovery posted, the journal never got
        due = trio.current_time() + self._interval
        while True:
            batch: list[SettlementMessage] | None = []
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

    def handle(self, message: SettlementMessage) -> None:
        match message:
            case CommittedBatch(commits=commits):
                for commit in commits:
                    self.apply(commit.stream, commit.events)
            case SettleTrades(trade_ids=trade_ids, party=party, reply=reply):
                self._replies.append((reply, self.settle(list(trade_ids), party)))
            case SymbolStatus(instrument=instrument):
                self.instruments[instrument.symbol] = instrument
            case Query(read=read, reply=reply):
                reply.send(read(self))
            case _:
                assert_never(message)

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
            if isinstance(event, Trade) and event.trade_id > self.last_trade.get(event.symbol, 0):
                self.last_trade[event.symbol] = event.trade_id
                self.trades += 1
                key = trade_key(event.symbol, event.trade_id)
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
        made = self.unjournaled.pop(posting.posting_id, None)
        if made is None:
            self.ledger.post(posting)
        elif made.key() != posting.key():
            raise InvariantViolation(
                f"posting {posting.posting_id} was journaled with other contents"
            )
        if event.kind == PostingKind.TRADE:
            key = event.posting_id.removeprefix(f"{PostingKind.TRADE}:")
            record = self.records.get(key)
            if record is not None and record.status != SETTLED:
                self._settled(key, record)

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
        del self.margin_posted[key]
        self._settled(key, record)

    def _settled(self, key: str, record: _Record) -> None:
        """``record`` is settled, for good: no status follows ``settled``."""
        record.status = SETTLED
        record.reason = None
        record.settled_ts = record.trade.ts
        self.pending.pop(key, None)
        if self._keep_settled:
            self.settled_keys.append(key)
            self._forget_settled()

    def _forget_settled(self) -> None:
        """Drop the oldest settled records beyond ``keep_settled``."""
        if not self._keep_settled:
            return
        while len(self.settled_keys) > self._keep_settled:
            del self.records[self.settled_keys.popleft()]

    def _forgotten(self, key: str) -> bool:
        """Whether ``key`` names a trade whose settled record was dropped."""
        symbol, _, number = key.rpartition(":")
        return (
            key not in self.records
            and number.isascii()  # isdigit alone passes "²", which int() refuses
            and number.isdigit()
            and 0 < int(number) <= self.last_trade.get(symbol, 0)
        )

    def settle(self, keys: list[str], party: str | None = None) -> dict[str, list[str]]:
        """Post the named trades; returns which settled now, were settled, failed, are unknown.

        With ``party``, a trade that user is not a party to is unknown (and not
        posted). One settled so long ago that its record is gone is already
        settled for anyone: its status says nothing of who traded.
        """
        result: dict[str, list[str]] = {
            "settled": [],
            "already_settled": [],
            "failed": [],
            "unknown": [],
        }
        for key in keys:
            record = self.records.get(key)
            if record is None:
                result["already_settled" if self._forgotten(key) else "unknown"].append(key)
                continue
            if party is not None and party not in parties(record.trade):
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
                self._settled(key, record)
                result["settled"].append(key)
            self.pending.pop(key, None)
        return result

    # ------------------------------------------------------------ queries

    def query_status(self, key: str) -> TradeStatus | None:
        """The trade's record; for one settled long ago only its key, symbol and status."""
        record = self.records.get(key)
        if record is None:
            if self._forgotten(key):
                symbol = key.rpartition(":")[0]
                return {"trade_id": key, "symbol": symbol, "status": SETTLED, "reason": None}
            return None
        trade = record.trade
        buyer, seller = parties(trade)
        return {
            "trade_id": key,
            "symbol": trade.symbol,
            "status": record.status,
            "reason": record.reason,
            "price": trade.price,
            "quantity": trade.quantity,
            "buyer": buyer,
            "seller": seller,
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
