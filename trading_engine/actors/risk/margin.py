"""Margin: what margin orders need, positions moved by trades, their money, liquidation.

In a margin symbol an order needs margin instead of a hold, a trade moves
positions, and its money moves through the ``MarginSettled`` events this
actor writes to ``$accounts`` when the trade is durable (while replaying,
the journal's own; ``go_live`` writes those a crash lost). A new mark price
may liquidate a position (``Liquidated``, then a ``liq-<seq>`` reduce-only
market order). ``MarginSettled`` and ``Liquidated`` are applied by
``_apply_margin_settled`` and ``_apply_liquidated`` here: live by the code
that writes them, on replay through ``_apply_account`` (``funds.py``).

A mixin over ``RiskState`` (see ``state.py`` for why mixins): it calls only
``RiskState``'s helpers, and the other parts build on it.
"""

from __future__ import annotations

import time

from trading_engine.actors.answers import MarginProfile
from trading_engine.actors.messages import MatchCancelAll, MatchSubmit
from trading_engine.actors.risk.state import (
    LIQUIDATION_PREFIX,
    RiskState,
    SymbolState,
    log,
    trade_sides,
)
from trading_engine.core.account_events import Liquidated, MarginSettled
from trading_engine.core.enums import OrderType, Side, TimeInForce
from trading_engine.core.events import Trade
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, TradeId, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.margin import maintenance, order_margin_per_lot, unrealized
from trading_engine.core.orders import OrderSpec
from trading_engine.core.risk import protection_price
from trading_engine.core.views import OrderRecord

__all__ = ["MarginMixin"]


class MarginMixin(RiskState):
    """Margin orders, positions, their money and liquidations, over ``RiskState``."""

    def go_live(self) -> None:
        """Replay is over: journal the money of margin trades whose MarginSettled was lost,
        and end the liquidations whose order was lost (see ``_end_lost_liquidations``)."""
        if self.live:
            return
        self.live = True
        self._end_lost_liquidations()
        unsettled, self._unsettled = self._unsettled, {}
        for (symbol, trade_id), sides in unsettled.items():
            for user_id, realized, fee in sides:
                self._journal_margin_settled(symbol, trade_id, user_id, realized, fee)

    def _end_lost_liquidations(self) -> None:
        """Forget each liquidation whose order the journal does not hold as open.

        A ``Liquidated`` event is journaled beside its order, not with it: a
        crash between the two leaves a liquidation whose order never reached a
        book, and whose user would otherwise never be checked again. (A
        liquidation order is IOC, so after a replay none is open.) The next
        mark price checks the user again.
        """
        for key, client_id in list(self.liquidating.items()):
            order_id = self.client_ids.get((key[0], client_id))
            record = None if order_id is None else self.orders.get(order_id)
            if record is None or record.status.is_final:
                del self.liquidating[key]

    def _order_margin(
        self, instrument: Instrument, spec: OrderSpec, quantity: int | None = None
    ) -> int:
        """The margin ``quantity`` lots (default: all) of a margin order need; 0 for a
        reduce-only order (it can only release margin) or a liquidation."""
        if spec.reduce_only:
            return 0
        client_id = spec.client_order_id
        # Liquidations journaled before they were reduce-only are known by their client id.
        if client_id is not None and client_id.startswith(LIQUIDATION_PREFIX):
            return 0
        lots = spec.quantity if quantity is None else quantity
        return lots * order_margin_per_lot(instrument, spec.price, self.margin.rates.initial)

    def _set_order_margin(
        self,
        instrument: Instrument,
        spec: OrderSpec,
        quantity: int,
        amount: int | None = None,
    ) -> None:
        if amount is None:
            amount = self._order_margin(instrument, spec, quantity)
        asset = instrument.quote_asset
        self.margin.set_order(spec.order_id, spec.user_id, asset, amount)
        self._refresh_margin(spec.user_id, asset)

    def _sync_order_margin(self, record: OrderRecord, *, may_raise: bool, may_lower: bool) -> None:
        """Bring an open margin order's margin to what its committed state needs."""
        order_id = record.spec.order_id
        current = self.margin.order_margin(order_id)
        if current is None or record.status.is_final:
            return
        instrument = self.symbols[record.symbol].instrument
        spec = record.spec._replace(price=record.price) if record.price else record.spec
        needed = self._order_margin(instrument, spec, record.remaining)
        if (needed > current and may_raise) or (needed < current and may_lower):
            self._set_order_margin(instrument, spec, record.remaining, amount=needed)

    def _refresh_margin(self, user_id: UserId, asset: str) -> None:
        required = self.margin.requirement(user_id, asset)
        self.accounts.set_margin_requirement(user_id, asset, required)

    def _margin_trade(self, instrument: Instrument, trade: Trade) -> None:
        """A margin trade moves positions only; its money moves through ``MarginSettled``."""
        (buyer, _, buyer_fee), (seller, _, seller_fee) = trade_sides(trade)
        notional = instrument.notional(trade.price, trade.quantity)
        asset = instrument.quote_asset
        symbol = trade.symbol
        sides = []
        for user_id, buy, fee in ((buyer, True, buyer_fee), (seller, False, seller_fee)):
            realized = self.margin.fill(user_id, symbol, asset, buy, trade.quantity, notional)
            self.accounts.move_position(user_id, symbol, trade.quantity if buy else -trade.quantity)
            sides.append((user_id, realized, fee))
        for user_id in dict.fromkeys((buyer, seller)):
            self._refresh_margin(user_id, asset)
        self._remember_trade(trade, buyer, seller)
        if not self.live:
            self._unsettled.setdefault((symbol, trade.trade_id), []).extend(sides)
            return
        for user_id, realized, fee in sides:
            self._journal_margin_settled(symbol, trade.trade_id, user_id, realized, fee)

    def _journal_margin_settled(
        self, symbol: Symbol, trade_id: int, user_id: UserId, realized: int, fee: int
    ) -> None:
        asset = self.symbols[symbol].instrument.quote_asset
        after = self.accounts.collateral(user_id, asset) + realized - fee
        self.accounts_seq += 1
        event = MarginSettled(
            self.accounts_seq, time.time_ns(), symbol, TradeId(trade_id), user_id,
            realized, fee, max(0, -after),
        )  # fmt: skip
        self._apply_margin_settled(event)
        self._account_events.append(event)

    def _apply_margin_settled(self, event: MarginSettled) -> None:
        asset = self.symbols[event.symbol].instrument.quote_asset
        user_id = event.user_id
        if event.insurance:
            self.accounts.pay_insurance(user_id, asset, event.insurance)
        self.accounts.credit(user_id, asset, event.realized - event.fee)
        sides = self._unsettled.get((event.symbol, event.trade_id))
        if sides is not None:
            for index, side in enumerate(sides):
                if side[0] == user_id:
                    del sides[index]
                    break
            if not sides:
                del self._unsettled[(event.symbol, event.trade_id)]

    def _apply_liquidated(self, event: Liquidated) -> None:
        """The user's position in the symbol is being liquidated, unless its order ended."""
        client_id = ClientOrderId(f"{LIQUIDATION_PREFIX}{event.seq}")
        order_id = self.client_ids.get((event.user_id, client_id))
        record = None if order_id is None else self.orders.get(order_id)
        # On replay the order's own events may come first (another stream).
        if record is None or not record.status.is_final:
            self.liquidating[(event.user_id, event.symbol)] = client_id

    def margin_profile(self, user_id: UserId, asset: str) -> MarginProfile:
        """Collateral, equity (at the references), maintenance and requirement in ``asset``."""
        equity = self.accounts.collateral(user_id, asset)
        needed = 0
        for symbol, position in self.margin.positions.get(user_id, {}).items():
            state = self.symbols[symbol]
            if state.instrument.quote_asset != asset or not position.qty:
                continue
            mark = state.reference
            if mark is None:
                # No mark: value the position at its cost.
                mark = abs(position.cost) // state.instrument.notional(1, abs(position.qty)) or 1
            equity += unrealized(state.instrument, position, mark)
            needed += maintenance(
                state.instrument, position.qty, mark, self.margin.rates.maintenance
            )
        return {
            "collateral": self.accounts.collateral(user_id, asset),
            "equity": equity,
            "maintenance": needed,
            "requirement": self.margin.requirement(user_id, asset),
            "margin_held": self.accounts.margin_held.get((user_id, asset), 0),
        }

    def _check_liquidations(self, symbol: Symbol, mark: int) -> None:
        """Liquidate every position in ``symbol`` whose owner's equity fell below maintenance."""
        state = self.symbols[symbol]
        if state.halted is not None:
            return
        asset = state.instrument.quote_asset
        for user_id, positions in self.margin.positions.items():
            position = positions.get(symbol)
            if position is None or not position.qty or (user_id, symbol) in self.liquidating:
                continue
            profile = self.margin_profile(user_id, asset)
            if profile["equity"] < profile["maintenance"]:
                self._liquidate(state, user_id, position.qty, mark, profile)

    def _liquidate(
        self, state: SymbolState, user_id: UserId, qty: int, mark: int, profile: MarginProfile
    ) -> None:
        instrument = state.instrument
        side = Side.SELL if qty > 0 else Side.BUY
        cap = protection_price(instrument, side, state.reference)
        if cap is None:
            log.error("cannot liquidate %s in %s: no protection price", user_id, instrument.symbol)
            return
        symbol = instrument.symbol
        self.accounts_seq += 1
        seq = self.accounts_seq
        event = Liquidated(
            seq, time.time_ns(), user_id, symbol, abs(qty), mark,
            profile["equity"], profile["maintenance"],
        )  # fmt: skip
        self._apply_liquidated(event)
        self._account_events.append(event)
        client_id = ClientOrderId(f"{LIQUIDATION_PREFIX}{seq}")
        # Reduce-only: the matcher closes at most the position it holds, never reverses it.
        spec = OrderSpec.create(
            OrderId(self.next_order_id), user_id, side, OrderType.MARKET, abs(qty),
            time_in_force=TimeInForce.IOC, client_order_id=client_id, reduce_only=True,
        )._replace(price=cap)  # fmt: skip
        self.next_order_id += 1
        self._set_order_margin(instrument, spec, spec.quantity)
        self.client_ids[(user_id, client_id)] = spec.order_id
        self._unconfirmed_ids[spec.order_id] = (user_id, client_id)
        self._liquidation_orders[spec.order_id] = (user_id, symbol)
        self._queue(symbol, MatchCancelAll(user_id, None))
        self._queue(symbol, MatchSubmit(spec, None))
