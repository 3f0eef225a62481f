"""Amends: the checks an amended order passes, and the hold it needs.

An amend is checked as what is left of the order would be (the limits; a
partly filled order may already be below the minimum size), its hold or
margin is raised before it is forwarded if it needs more, and once it is
written, refused or lost ``_amend_ended`` brings the hold to what the order's
committed state needs (``_sync_hold``, which fills and reductions use too).
``_amending`` counts each order's amends in flight, so that one amend ending
never lowers a hold another one raised.

A mixin over ``PreTradeMixin`` (an amend is routed as a cancel is).
"""

from __future__ import annotations

from trading_engine.actors.messages import AmendOrder, MatchAmend, Refused
from trading_engine.actors.risk.checks import PreTradeMixin
from trading_engine.core.enums import RejectReason
from trading_engine.core.ids import OrderId, Symbol
from trading_engine.core.orders import OrderSpec
from trading_engine.core.risk import check_order, hold_for
from trading_engine.core.views import OrderRecord
from trading_engine.errors import InvariantViolation

__all__ = ["AmendMixin"]


class AmendMixin(PreTradeMixin):
    """Amends: checked, their holds raised first and settled when they end."""

    def _amend(self, message: AmendOrder) -> None:
        routed = self._route(message.order_id, message.user_id)
        if isinstance(routed, Refused):
            message.reply.send(routed)
            return
        record = self.orders[message.order_id]
        if record.spec.list_id:
            message.reply.send(
                Refused("invalid_amend", "an order list's members cannot be amended")
            )
            return
        instrument = self.symbols[routed].instrument
        price = record.price if message.price is None else message.price
        quantity = record.quantity if message.quantity is None else message.quantity
        remaining = quantity - record.filled - record.cancelled
        if remaining <= 0:
            message.reply.send(Refused("invalid_amend", "quantity must exceed the filled quantity"))
            return
        spec = record.spec._replace(price=price) if price else record.spec
        reasons = self._amend_limits(routed, record, spec._replace(quantity=remaining))
        if reasons:
            message.reply.send(Refused("rejected_by_risk", ", ".join(reasons)))
            return
        order_id = record.spec.order_id
        if self.symbols[routed].margin:
            needed = self._order_margin(instrument, spec, remaining)
            current = self.margin.order_margin(order_id) or 0
            available, _ = self.accounts.balance(spec.user_id, instrument.quote_asset)
            if needed - current > available:
                message.reply.send(
                    Refused("insufficient_margin", "the new order needs more margin")
                )
                return
            if needed > current:
                self._set_order_margin(instrument, spec, remaining, amount=needed)
            self._amending[order_id] = self._amending.get(order_id, 0) + 1
            self._queue(
                routed, MatchAmend(message.order_id, message.price, message.quantity, message.reply)
            )
            return
        needed = hold_for(instrument, spec, remaining).amount
        if needed > self.accounts.holds[order_id][2] and not self.accounts.adjust_hold(
            order_id, needed
        ):
            message.reply.send(Refused("insufficient_funds", "the new order needs a larger hold"))
            return
        self._amending[order_id] = self._amending.get(order_id, 0) + 1
        self._queue(
            routed, MatchAmend(message.order_id, message.price, message.quantity, message.reply)
        )

    def _amend_limits(self, symbol: Symbol, record: OrderRecord, spec: OrderSpec) -> list[str]:
        """The limit checks an amended order must pass (funds are checked by its hold)."""
        state = self.symbols[symbol]
        user_id = spec.user_id
        exposure = 0
        if state.limits.enabled and state.limits.max_position_lots is not None:
            exposure = sum(
                r.remaining
                for r in self.open_by_user.get(user_id, {}).values()
                if r.symbol == symbol and r.spec.side is spec.side and r is not record
            )
        reasons = check_order(
            state.instrument,
            spec,
            limits=state.limits,
            reference=state.reference,
            available=None,
            open_orders=0,
            position=self.accounts.positions.get((user_id, symbol), 0),
            open_exposure=exposure,
        )
        # A partly filled order may have less left than the minimum: that is not new.
        ignore = {RejectReason.BELOW_MIN_QUANTITY, RejectReason.BELOW_MIN_NOTIONAL}
        if spec.reduce_only:
            ignore.add(RejectReason.ABOVE_MAX_POSITION)  # the matcher keeps it within the position
        return [str(r.reason) for r in reasons if r.reason not in ignore]

    def _amend_ended(self, order_id: OrderId, *, committed: bool) -> None:
        """An amend was written, refused or lost: bring the order's hold to what it needs.

        While other amends of the order are in flight the hold only rises (they
        raised it for themselves); once none is, it is exactly what the order's
        committed state needs, which is what replaying the journal computes.
        A refused or lost amend only ever lowers it.
        """
        pending = self._amending.get(order_id, 0)
        if pending:
            pending -= 1
            if pending:
                self._amending[order_id] = pending
            else:
                del self._amending[order_id]
        record = self.orders.get(order_id)
        if record is None:
            return
        if order_id in self.margin.orders:
            self._sync_order_margin(record, may_raise=committed, may_lower=not pending)
        else:
            self._sync_hold(record, may_raise=committed, may_lower=not pending)

    def _sync_hold(self, record: OrderRecord, *, may_raise: bool, may_lower: bool) -> None:
        """Bring an open spot order's hold to what its committed state needs: ``hold_for``
        its remaining lots at its price.

        A fill or a reduction lowers it so (``committed.py``): what a fill cost less
        than the hold covered (a better price than the order's, a fee below the
        worst) and what a reduction took off are free at once, so that the hold
        depends on the order's events alone and replay rebuilds it whatever
        happened live in between. Raises ``InvariantViolation`` if a rise finds too
        little available: the amend that needs it raised the hold beforehand.
        """
        order_id = self._held_by(record.spec.order_id)
        entry = self.accounts.holds.get(order_id)
        if entry is None or record.status.is_final:
            return
        if order_id in self.group_members:
            needed = self._group_need(order_id)  # an OCO leg: its pair's one hold
        else:
            instrument = self.symbols[record.symbol].instrument
            spec = record.spec._replace(price=record.price) if record.price else record.spec
            needed = hold_for(instrument, spec, record.remaining).amount
        current = entry[2]
        if needed > current and may_raise:
            if not self.accounts.adjust_hold(order_id, needed):
                raise InvariantViolation(f"order {order_id}: no funds for its amended hold")
        elif needed < current and may_lower:
            self.accounts.adjust_hold(order_id, needed)
