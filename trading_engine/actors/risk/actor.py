"""The risk actor: users, balances, holds, positions, pre-trade checks, and order views.

Every new order passes here first. The actor checks it (all failing reasons,
``core.risk.check_order``), holds its funds, gives it an id, and forwards it
to its symbol actor; the order's events come back from the journal once
durable and move the funds (a fill pays the counterparty at once, an end
releases what is left of the hold). The commands of one wake-up go to each
symbol in one ``SymbolBatch``.

State changes only through events, live or replayed: ``replay`` feeds the
journal through the same code, so restarting rebuilds the same accounts.
Deposits and withdrawals are applied when requested (so two withdrawals can
never both spend the same funds) and written to the ``$accounts`` stream,
which this actor alone writes.

Margin symbols: an order needs margin instead of a hold, a trade moves
positions, and its money moves through the ``MarginSettled`` events this
actor writes to ``$accounts`` when the trade is durable (while replaying,
the journal's own; ``go_live`` writes those a crash lost). A new mark price
may liquidate a position (``Liquidated``, then a ``liq-<seq>`` reduce-only
market order). A reduce-only order needs no margin: it is checked here
against the position as far as it is durable (flat or on the order's side:
``reduce_only_would_increase``), and the matcher, which holds the position
as of its last trade, caps it and keeps it within the position.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import trio

from trading_engine.actors.mailbox import EngineBusy, receive_batch
from trading_engine.actors.messages import (
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    CheckOrder,
    Commit,
    CommittedBatch,
    CreateUser,
    MatchAmend,
    MatchCancel,
    MatchCancelAll,
    MatchSubmit,
    MoveFunds,
    OrderResult,
    Query,
    ReferencePrice,
    Refused,
    ReleaseHolds,
    StorageStatus,
    SubmitOrder,
    SymbolBatch,
    SymbolCommand,
    SymbolStatus,
)
from trading_engine.actors.risk.amends import AmendMixin
from trading_engine.actors.risk.funds import FundsMixin
from trading_engine.actors.risk.state import (
    LIQUIDATION_PREFIX,
    SymbolState,
    log,
)
from trading_engine.core.account_events import (
    ACCOUNTS_STREAM,
)
from trading_engine.core.enums import Side
from trading_engine.core.events import (
    BookLevel,
    Journaled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    SelfTradePrevented,
    Trade,
)
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.risk import (
    hold_for,
)
from trading_engine.core.views import OrderRecord, OrderView
from trading_engine.errors import InvariantViolation, TradingEngineError

__all__ = ["RiskActor"]

_KEEP_FINAL_ORDERS = 100_000


class RiskActor(AmendMixin, FundsMixin):
    """Owns accounts and order views; reached only through ``inbox``."""

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        self.go_live()
        await self._flush()
        while (batch := await receive_batch(self._inbox)) is not None:
            for message in batch:
                self.handle(message)
            await self._flush()

    async def _flush(self) -> None:
        for symbol, commands in self._outgoing.items():
            state = self.symbols[symbol]
            try:
                state.inbox.send_nowait(SymbolBatch(tuple(commands)))
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._bounce(symbol, commands)
        self._outgoing = {}
        if self._account_events or self._account_replies:
            commit = Commit(ACCOUNTS_STREAM, self._account_events, tuple(self._account_replies))
            self._account_events = []
            self._account_replies = []
            await self._journal.send(commit)

    def _bounce(self, symbol: Symbol, commands: list[SymbolCommand]) -> None:
        """The symbol's inbox is full or gone: undo and refuse every command of the batch."""
        for command in commands:
            if isinstance(command, MatchSubmit):
                self._forget_submit(command.spec)
            elif isinstance(command, MatchAmend):
                self._amend_ended(command.order_id, committed=False)
            reply = getattr(command, "reply", None)
            if reply is not None:
                reply.fail(EngineBusy(f"{symbol} is busy: retry shortly"))

    def handle(self, message: object) -> None:
        """Handle one message; replies that need no journal are answered at once."""
        match message:
            case SubmitOrder(request=request, reply=reply):
                with _AnswerErrors(reply):
                    outcome = self._submit(request, reply)
                    if outcome is not None:
                        reply.send(outcome)
            case CommittedBatch(commits=commits):
                for committed in commits:
                    self.apply(committed.stream, committed.events)
            case CancelOrder(order_id=order_id, user_id=user_id, reply=reply):
                refused = self._route(order_id, user_id)
                if isinstance(refused, Refused):
                    reply.send(refused)
                else:
                    self._queue(refused, MatchCancel(order_id, "user", reply))
            case AmendOrder():
                self._amend(message)
            case CancelAllOrders(user_id=user_id, symbol=symbol, reply=reply):
                if symbol not in self.symbols:
                    reply.send([])
                else:
                    self._queue(symbol, MatchCancelAll(user_id, reply))
            case CheckOrder(request=request, reply=reply):
                with _AnswerErrors(reply):
                    reply.send(self._dry_run(request))
            case MoveFunds():
                self._move_funds(message)
            case CreateUser():
                self._create_user(message)
            case Query(what=what, args=args, reply=reply):
                with _AnswerErrors(reply):
                    reply.send(getattr(self, f"query_{what}")(*args))
            case SymbolStatus(instrument=instrument, inbox=inbox, halted=halted, reason=reason):
                state = self.symbols.get(instrument.symbol)
                if state is None:
                    limits = self._config.limits_for(instrument)
                    state = self.symbols[instrument.symbol] = SymbolState(instrument, inbox, limits)
                state.inbox = inbox
                state.halted = reason or "halted" if halted else None
            case ReferencePrice(symbol=symbol, price=price):
                if symbol in self.symbols:
                    self.symbols[symbol].reference = price
                    if price is not None and self.symbols[symbol].margin:
                        self._check_liquidations(symbol, price)
            case ReleaseHolds(order_ids=order_ids, amended=amended):
                for order_id in order_ids:
                    if order_id not in self.orders:
                        self._release(order_id)
                        self._forget_pending(order_id)
                for order_id in amended:
                    self._amend_ended(order_id, committed=False)
            case StorageStatus(available=available):
                self.storage_available = available
            case _:
                log.error("risk actor: unexpected message %r", message)

    # ------------------------------------------------------------ committed events

    def apply(self, stream: str, events: Sequence[Journaled]) -> None:
        """Apply durable events of ``stream``: the live path and recovery alike."""
        if stream == ACCOUNTS_STREAM:
            for event in events:
                if event.seq > self.accounts_seq:
                    self._apply_account(event)
                    self.accounts_seq = event.seq
            return
        state = self.symbols.get(Symbol(stream))
        if state is None:
            return
        instrument = state.instrument
        apply = self._apply_order_event
        for event in events:
            # Book levels are most of a symbol's events and change nothing here.
            if type(event) is not BookLevel:
                apply(instrument, event)

    def _apply_order_event(self, instrument: Instrument, event: Journaled) -> None:
        accounts = self.accounts
        match event:
            case OrderAccepted(spec=spec):
                record = OrderRecord.accepted(event)
                order_id = spec.order_id
                self.orders[order_id] = record
                self.open_by_user.setdefault(spec.user_id, {})[order_id] = record
                if instrument.mode is Mode.MARGIN:
                    if order_id not in self.margin.orders:
                        self._set_order_margin(instrument, spec, spec.quantity)
                elif order_id not in accounts.holds:
                    accounts.hold(order_id, spec.user_id, hold_for(instrument, spec))
                if spec.client_order_id is not None:
                    self.client_ids[(spec.user_id, spec.client_order_id)] = order_id
                self.next_order_id = max(self.next_order_id, order_id + 1)
                self._answer_waiting(order_id, record)
            case OrderRejected(spec=spec):
                record = OrderRecord.rejected(event)
                self.orders[spec.order_id] = record
                self._release(spec.order_id)
                self.next_order_id = max(self.next_order_id, spec.order_id + 1)
                self._finish(record)
                self._answer_waiting(spec.order_id, record)
            case Trade():
                if instrument.mode is Mode.MARGIN:
                    self._margin_trade(instrument, event)
                else:
                    self._settle_trade(instrument, event)
            case OrderFilled(order_id=order_id):
                record = self.orders[order_id]
                record.apply(event)
                if not event.remaining:
                    self._release(order_id)
                    self._finish(record)
                elif order_id in self.margin.orders:
                    self._sync_order_margin(record, may_raise=False, may_lower=True)
            case OrderCancelled(order_id=order_id) | OrderExpired(order_id=order_id):
                record = self.orders[order_id]
                record.apply(event)
                self._release(order_id)
                self._finish(record)
            case OrderAmended(order_id=order_id):
                self.orders[order_id].apply(event)
                self._amend_ended(order_id, committed=True)
            case SelfTradePrevented(user_id=user_id):
                self.stp_counts[user_id] = self.stp_counts.get(user_id, 0) + 1
                self.alerts.append(
                    {"kind": "self_trade_prevented", "symbol": event.symbol, "user_id": user_id,
                     "taker_order_id": event.taker_order_id, "maker_order_id": event.maker_order_id,
                     "mode": str(event.mode), "quantity": event.quantity, "ts": event.ts}
                )  # fmt: skip
            case _:
                record_event = getattr(event, "order_id", None)
                if record_event is not None and record_event in self.orders:
                    record = self.orders[record_event]
                    record.apply(event)  # type: ignore[arg-type]
                    if record_event in self.margin.orders:
                        self._sync_order_margin(record, may_raise=False, may_lower=True)

    def _settle_trade(self, instrument: Instrument, trade: Trade) -> None:
        accounts = self.accounts
        notional = instrument.notional(trade.price, trade.quantity)
        base = instrument.base_units(trade.quantity)
        if trade.aggressor is Side.BUY:
            buyer, buyer_order, buyer_fee = (
                trade.taker_user_id,
                trade.taker_order_id,
                trade.taker_fee,
            )
            seller, seller_order, seller_fee = (
                trade.maker_user_id,
                trade.maker_order_id,
                trade.maker_fee,
            )
        else:
            buyer, buyer_order, buyer_fee = (
                trade.maker_user_id,
                trade.maker_order_id,
                trade.maker_fee,
            )
            seller, seller_order, seller_fee = (
                trade.taker_user_id,
                trade.taker_order_id,
                trade.taker_fee,
            )
        accounts.consume(buyer_order, notional + buyer_fee)
        accounts.credit(buyer, instrument.base_asset, base)
        accounts.consume(seller_order, base)
        accounts.credit(seller, instrument.quote_asset, notional - seller_fee)
        accounts.move_position(buyer, trade.symbol, trade.quantity)
        accounts.move_position(seller, trade.symbol, -trade.quantity)
        self._remember_trade(trade, buyer, seller)
        owners = (self.users.get(buyer), self.users.get(seller))
        if buyer != seller and owners[0] is not None and owners[0] == owners[1]:
            self.alerts.append(
                {"kind": "linked_accounts_trade", "symbol": trade.symbol, "owner": owners[0],
                 "buyer": buyer, "seller": seller, "trade_id": trade.trade_id, "ts": trade.ts}
            )  # fmt: skip

    def _finish(self, record: OrderRecord) -> None:
        order_id = record.spec.order_id
        client_id = record.spec.client_order_id
        if client_id is not None and client_id.startswith(LIQUIDATION_PREFIX):
            key = (record.spec.user_id, record.symbol)
            if self.liquidating.get(key) == client_id:
                del self.liquidating[key]
        self.open_by_user.get(record.spec.user_id, {}).pop(order_id, None)
        self._final[order_id] = None
        if len(self._final) > _KEEP_FINAL_ORDERS:
            old, _ = self._final.popitem(last=False)
            self.orders.pop(old, None)

    def _answer_waiting(self, order_id: OrderId, record: OrderRecord) -> None:
        for waiter in self._waiting.pop(order_id, []):
            waiter.send(OrderResult(record.view(), duplicate=True))

    # ------------------------------------------------------------ queries (Query.what)

    def query_order(self, order_id: OrderId) -> OrderView | None:
        record = self.orders.get(order_id)
        return record.view() if record else None

    def query_user_orders(self, user_id: UserId, open_only: bool, limit: int) -> list[OrderView]:
        if open_only:
            records = list(self.open_by_user.get(user_id, {}).values())
        else:
            records = [r for r in self.orders.values() if r.spec.user_id == user_id]
        records.sort(key=lambda r: r.spec.order_id, reverse=True)
        return [r.view() for r in records[:limit]]

    def query_user_trades(self, user_id: UserId, limit: int) -> list[Trade]:
        tape = self.user_trades.get(user_id, deque())
        return list(reversed(tape))[:limit]

    def query_balances(self, user_id: UserId) -> dict[str, tuple[int, int]]:
        return {
            asset: self.accounts.balance(user_id, asset) for asset in self.accounts.assets(user_id)
        }

    def query_key(self, key_hash: str) -> UserId | None:
        return self.keys.get(key_hash)

    def query_positions(self, user_id: UserId) -> dict[Symbol, int]:
        return {s: q for (u, s), q in self.accounts.positions.items() if u == user_id and q}

    def query_margin(self, user_id: UserId) -> dict[str, object]:
        """Positions ``{symbol: (qty, cost)}`` and, per collateral asset, ``margin_profile``."""
        positions = {
            symbol: (position.qty, position.cost)
            for symbol, position in self.margin.positions.get(user_id, {}).items()
            if position.qty or position.cost
        }
        assets = {asset for (user, asset) in self.accounts.margin_required if user == user_id}
        return {
            "positions": positions,
            "assets": {asset: self.margin_profile(user_id, asset) for asset in sorted(assets)},
        }

    def query_alerts(self, limit: int) -> list[dict[str, object]]:
        return list(reversed(self.alerts))[:limit]

    def query_stp_counts(self) -> dict[UserId, int]:
        return dict(self.stp_counts)

    def query_check(self) -> bool:
        """Raise ``InvariantViolation`` if the accounts are inconsistent; True otherwise."""
        self.accounts.check()
        return True


class _AnswerErrors:
    """Fail ``reply`` with an engine error raised inside the block, instead of crashing."""

    def __init__(self, reply: Any) -> None:
        self._reply = reply

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, TradingEngineError) and not isinstance(exc, _BUGS):
            self._reply.fail(exc)
            return True
        return False


# An invariant violation is a bug: let it crash the actor (and the engine) loudly.
_BUGS: tuple[type[Exception], ...] = (InvariantViolation,)
