"""Committed events: what the journal made durable, applied to orders, funds and positions.

An order's events come back from the journal once durable and move the
funds: an accepted order is recorded (and held, on replay: live, ``checks.py``
held it already), a spot trade pays both sides at once, a margin trade moves
positions (``margin.py``), a partial fill, a reduction or an amend brings the
order's hold or margin to what is left of it, and an end releases
the rest. State changes only through these events, live or replayed:
recovery feeds the journal through ``apply`` too, so a restart rebuilds the
same accounts. Ended orders are kept for their views, the newest
``RiskConfig.keep_finished``, and their client order ids with them (a resend
within that window gets the original order; older ones are counted by status
in ``finished_earlier``); a self-trade prevented and a trade between two
accounts of one owner raise an alert.

A mixin over ``AmendMixin`` and ``FundsMixin``, the parts whose holds and
events it settles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from trading_engine.actors.messages import OrderResult
from trading_engine.actors.risk.funds import FundsMixin
from trading_engine.actors.risk.lists import ListsMixin
from trading_engine.actors.risk.state import LIQUIDATION_PREFIX, trade_sides
from trading_engine.core.account_events import ACCOUNTS_STREAM
from trading_engine.core.events import (
    BookLevel,
    Event,
    IcebergRefilled,
    Journaled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderDeferred,
    OrderExpired,
    OrderFilled,
    OrderListPlaced,
    OrderListUpdated,
    OrderReduced,
    OrderRejected,
    SelfTradePrevented,
    StopMoved,
    StopTriggered,
    Trade,
)
from trading_engine.core.ids import OrderId, Symbol
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.risk import hold_for
from trading_engine.core.views import OrderRecord

__all__ = ["CommittedMixin"]


class CommittedMixin(ListsMixin, FundsMixin):
    """Durable events of every stream applied: the live path and recovery alike."""

    def apply(self, stream: str, events: Sequence[Journaled]) -> None:
        """Apply durable events of ``stream``: the live path and recovery alike.

        A stream's name says what it holds, as its one writer typed it:
        ``$accounts`` risk's ``AccountsStreamEvent``, a symbol's stream its
        matcher's ``Event``. mypy cannot follow a name to a type, hence the
        two ignores below.
        """
        if stream == ACCOUNTS_STREAM:
            for event in events:
                if event.seq > self.accounts_seq:
                    self._apply_account(event)  # type: ignore[arg-type]
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
                apply(instrument, event)  # type: ignore[arg-type]
        if events:
            self.applied_seq[instrument.symbol] = events[-1].seq

    def _apply_order_event(self, instrument: Instrument, event: Event) -> None:
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
                elif spec.list_id:
                    self._apply_list_event(instrument, event)
                elif order_id not in accounts.holds:
                    accounts.hold(order_id, spec.user_id, hold_for(instrument, spec))
                if spec.client_order_id is not None:
                    self.client_ids[(spec.user_id, spec.client_order_id)] = order_id
                    self._unconfirmed_ids.pop(order_id, None)
                    self._unconfirmed_specs.pop(order_id, None)
                self.next_order_id = max(self.next_order_id, order_id + 1)
                self._answer_waiting(order_id, record)
            case OrderRejected(spec=spec):
                if spec.list_id:
                    self._apply_list_event(instrument, event)
                record = OrderRecord.rejected(event)
                self.orders[spec.order_id] = record
                self._unconfirmed_ids.pop(spec.order_id, None)
                self._unconfirmed_specs.pop(spec.order_id, None)
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
                else:
                    # An amend under way raised the hold for itself: its end sets it.
                    self._sync_hold(
                        record, may_raise=False, may_lower=order_id not in self._amending
                    )
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
            case OrderReduced(order_id=order_id) | StopTriggered(order_id=order_id):
                if order_id in self.orders:
                    record = self.orders[order_id]
                    record.apply(event)
                    if order_id in self.margin.orders:
                        # A triggered trailing stop-limit's limit may be above the protection
                        # price its margin was taken at (a sell's); margin is held up to the
                        # collateral, so raising it never fails.
                        triggered = isinstance(event, StopTriggered)
                        self._sync_order_margin(record, may_raise=triggered, may_lower=True)
                    elif self._held_by(order_id) in accounts.holds:
                        self._sync_hold(
                            record, may_raise=False, may_lower=order_id not in self._amending
                        )
            case StopMoved(order_id=order_id) | IcebergRefilled(order_id=order_id):
                self.orders[order_id].apply(event)
            case OrderListPlaced() | OrderDeferred() | OrderListUpdated():
                self._apply_list_event(instrument, event)
            case BookLevel():
                pass  # ``apply`` skips them: a level's quantity is no order's state
            case _:
                assert_never(event)

    def _settle_trade(self, instrument: Instrument, trade: Trade) -> None:
        accounts = self.accounts
        notional = instrument.notional(trade.price, trade.quantity)
        base = instrument.base_units(trade.quantity)
        (buyer, buyer_order, buyer_fee), (seller, seller_order, seller_fee) = trade_sides(trade)
        if self.hold_groups:  # an OCO leg spends from its pair's one hold
            buyer_order = self._held_by(buyer_order)
            seller_order = self._held_by(seller_order)
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
        keep = self._config.keep_finished
        while keep and len(self._final) > keep:
            self._drop_finished(self._final.popitem(last=False)[0])

    def _drop_finished(self, order_id: OrderId) -> None:
        """Forget a finished order, and its client order id; count it by status."""
        dropped = self.orders.pop(order_id, None)
        if dropped is None:
            return
        key = (str(dropped.status), dropped.spec.reduce_only)
        self.finished_earlier[key] = self.finished_earlier.get(key, 0) + 1
        client_id = dropped.spec.client_order_id
        if client_id is not None:
            self._forget_client_id((dropped.spec.user_id, client_id), order_id)

    def _answer_waiting(self, order_id: OrderId, record: OrderRecord) -> None:
        for waiter in self._waiting.pop(order_id, []):
            waiter.send(OrderResult(record.view(), duplicate=True))
