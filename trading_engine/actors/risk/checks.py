"""Pre-trade checks and holds of new orders, and what frees a hold.

Every new order passes here first. The actor checks it (all failing reasons,
``core.risk.check_order``), holds its funds (in a margin symbol, its margin),
gives it an id, and queues it for its symbol actor; a dry run
(``CheckOrder``) gives the same reasons and the hold it would take. A
reduce-only order needs no margin: it is checked here against the position
as far as it is durable (flat or on the order's side:
``reduce_only_would_increase``), and the matcher, which holds the position
as of its last trade, caps it and keeps it within the position.

A resend of a client order id the actor knows (its order open, among the
last ``keep_finished`` finished, or sent and not yet journaled) is compared
with its original, field by field as the client sent them: identical, it
gets the original (at once, or once the original is journaled); different,
it gets ``ClientIdReused`` naming each field, and nothing is placed.

An order that ends, or never reaches its book, frees its hold or margin
(``_release``); one that never reached it also frees its client order id and
fails the resends that waited for it (``_forget_pending``). ``_route`` finds
the symbol that a cancel or an amend of an order goes to, or refuses it.

A mixin over ``MarginMixin`` (a margin order's margin is its hold).
"""

from __future__ import annotations

from typing import Any

from trading_engine.actors.mailbox import EngineBusy
from trading_engine.actors.messages import (
    ClientIdReused,
    MatchSubmit,
    OrderRequest,
    OrderResult,
    Refused,
    Rejected,
    RiskCheck,
    SubmitOutcome,
)
from trading_engine.actors.risk.margin import MarginMixin
from trading_engine.actors.risk.state import LIQUIDATION_PREFIX
from trading_engine.core.algos import ALGO_CLIENT_PREFIX
from trading_engine.core.enums import OrderType, RejectReason, Side
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.orders import (
    PROTECTED,
    TRAILING,
    WITH_LIMIT,
    OrderSpec,
    trailing_stop_at,
)
from trading_engine.core.risk import (
    Figure,
    Hold,
    Rejection,
    Unit,
    check_order,
    hold_for,
    protection_price,
    shortfall,
)
from trading_engine.errors import InvalidInput
from trading_engine.storage.journal import StorageUnavailable

__all__ = ["PreTradeMixin"]


class PreTradeMixin(MarginMixin):
    """New orders: checked, held, numbered and queued; holds freed when they end."""

    def _submit(self, request: OrderRequest, reply: Any) -> SubmitOutcome | None:
        if not self.storage_available:
            raise StorageUnavailable("storage is unavailable: orders are not accepted")
        user_id = request.user_id
        if request.client_order_id is not None:
            state = self.symbols.get(request.symbol)
            if (
                state is not None
                and state.margin
                and request.client_order_id.startswith(LIQUIDATION_PREFIX)
            ):
                raise InvalidInput(
                    "client_order_id", f"the prefix {LIQUIDATION_PREFIX} is reserved"
                )
            if request.client_order_id.startswith(ALGO_CLIENT_PREFIX) and request.algo_id is None:
                raise InvalidInput(
                    "client_order_id",
                    f"the prefix {ALGO_CLIENT_PREFIX} is reserved for algorithms' child orders",
                )
            known = self.client_ids.get((user_id, request.client_order_id))
            if known is not None:
                record = self.orders.get(known)
                original = self._unconfirmed_specs.get(known)
                if record is not None:
                    original = (record.symbol, record.spec)
                if original is not None and (differs := self._differences(*original, request)):
                    return ClientIdReused(known, original[0], differs)
                if record is None:
                    self._waiting.setdefault(known, []).append(reply)
                    return None
                return OrderResult(record.view(), duplicate=True)
        spec, reasons = self._prepare(request, self.next_order_id)
        if reasons:
            return Rejected(tuple(reasons))
        assert spec is not None
        state = self.symbols[request.symbol]
        self.next_order_id += 1
        if state.margin:
            self._set_order_margin(state.instrument, spec, spec.quantity)
        else:
            self.accounts.hold(spec.order_id, user_id, hold_for(state.instrument, spec))
        if spec.client_order_id is not None:
            key = (user_id, spec.client_order_id)
            self.client_ids[key] = spec.order_id
            self._unconfirmed_ids[spec.order_id] = key
            self._unconfirmed_specs[spec.order_id] = (request.symbol, spec)
        self._queue(request.symbol, MatchSubmit(spec, reply))
        return None

    def _prepare(
        self, request: OrderRequest, order_id: int
    ) -> tuple[OrderSpec | None, list[Rejection]]:
        """The spec the order would get and every reason it fails, with the figures that
        show why; raises ``InvalidInput``."""
        user_id = request.user_id
        if user_id not in self.users:
            return None, [Rejection(RejectReason.UNKNOWN_USER)]
        state = self.symbols.get(request.symbol)
        if state is None:
            return None, [Rejection(RejectReason.SYMBOL_UNKNOWN)]
        if request.reduce_only and not state.margin:
            raise InvalidInput(
                "reduce_only", f"{request.symbol} trades spot: no position to reduce"
            )
        if request.quote_quantity and state.margin:
            raise InvalidInput("quote_quantity", "is for spot symbols only")
        if state.halted is not None:
            return None, [Rejection(RejectReason.SYMBOL_HALTED)]
        spec = OrderSpec.create(
            OrderId(order_id), user_id, request.side, request.type, request.quantity,
            request.price, request.stop_price, request.time_in_force, request.post_only,
            request.stp, request.client_order_id, request.expire_time, request.reduce_only,
            request.quote_quantity, request.trailing_delta, request.trailing_bps,
            request.activation_price, request.limit_offset, request.display_quantity,
        )  # fmt: skip
        instrument = state.instrument
        if spec.type is OrderType.MARKET:
            cap = protection_price(instrument, spec.side, state.reference)
            spec = spec._replace(price=cap or 0)
            if spec.quote_quantity and state.reference is not None:
                # The most lots it could fill: at the band's low edge a lot is cheapest.
                low = instrument.band_limits(state.reference)[0]
                buying = spec.side is Side.BUY
                lots = instrument.lots_for_quote(spec.quote_quantity, low, buying)
                spec = spec._replace(quantity=lots)
        elif spec.type in TRAILING:
            spec = spec._replace(price=_trailing_cap(instrument, spec, state.reference))
        elif spec.type in PROTECTED:
            cap = protection_price(instrument, spec.side, spec.stop_price)
            spec = spec._replace(price=cap or 0)
        held_asset = instrument.base_asset if spec.side is Side.SELL else instrument.quote_asset
        if state.margin:
            held_asset = instrument.quote_asset
        available, _ = self.accounts.balance(user_id, held_asset)
        open_orders = self.open_by_user.get(user_id, {})
        exposure = 0
        if state.limits.enabled and state.limits.max_position_lots is not None:
            exposure = sum(
                r.remaining
                for r in open_orders.values()
                if r.symbol == request.symbol and r.spec.side is spec.side
            )
        reasons = check_order(
            instrument,
            spec,
            limits=state.limits,
            reference=state.reference,
            available=None if state.margin else available,
            open_orders=len(open_orders),
            position=self.accounts.positions.get((user_id, request.symbol), 0),
            open_exposure=exposure,
        )
        if state.margin and spec.price > 0:
            margin = Hold(held_asset, self._order_margin(instrument, spec))
            if margin.amount > available:
                reasons.append(shortfall(RejectReason.INSUFFICIENT_MARGIN, margin, available))
        if spec.reduce_only:
            # It can't grow the position, so the position limit does not apply to it.
            reasons = [r for r in reasons if r.reason is not RejectReason.ABOVE_MAX_POSITION]
            position = self.margin.position(user_id, request.symbol).qty
            if not (position < 0 if spec.side is Side.BUY else position > 0):
                figure = Figure("position", position, Unit.QUANTITY)
                reasons.append(Rejection(RejectReason.REDUCE_ONLY_WOULD_INCREASE, (figure,)))
        return spec, reasons

    def _differences(
        self, symbol: Symbol, original: OrderSpec, request: OrderRequest
    ) -> tuple[tuple[str, object, object], ...]:
        """Each field the client sent that ``request`` changes from the order it resends
        (``original``, in ``symbol``): ``(name, original, resent)``; empty for an
        identical resend.

        The resend is read as the original was (``OrderSpec.create``: a market order's
        GTC is IOC), so it raises ``InvalidInput`` as a new order would. Prices and
        quantities are compared as the decimals they stand for (the symbols' grids may
        differ). The original's ``price`` is the client's only on a limit or stop-limit
        order (else the risk actor's protection price, which the client never sent).
        """
        resent = OrderSpec.create(
            original.order_id, request.user_id, request.side, request.type, request.quantity,
            request.price, request.stop_price, request.time_in_force, request.post_only,
            request.stp, request.client_order_id, request.expire_time, request.reduce_only,
            request.quote_quantity, request.trailing_delta, request.trailing_bps,
            request.activation_price, request.limit_offset, request.display_quantity,
        )  # fmt: skip
        if original.quote_quantity:
            resent = resent._replace(quantity=original.quantity)  # the engine's cap
        if original.type not in WITH_LIMIT:
            original = original._replace(price=0)
        was = self.symbols[symbol].instrument
        now = self.symbols[request.symbol].instrument if request.symbol in self.symbols else was
        differs = [("symbol", symbol, request.symbol)] if symbol != request.symbol else []
        for name in _RESENT:
            before, after = getattr(original, name), getattr(resent, name)
            if name in _SIZED:
                unit = _SIZED[name]
                same = before * getattr(was, unit) == after * getattr(now, unit)
            else:
                same = before == after
            if not same:
                differs.append((name, before, after))
        return tuple(differs)

    def _dry_run(self, request: OrderRequest) -> RiskCheck:
        spec, reasons = self._prepare(request, 0)
        hold = None
        if spec is not None and (spec.side is Side.SELL or spec.price > 0):
            state = self.symbols[request.symbol]
            if state.margin:
                if spec.price > 0:
                    margin = self._order_margin(state.instrument, spec)
                    hold = Hold(state.instrument.quote_asset, margin)
            else:
                hold = hold_for(state.instrument, spec)
        return RiskCheck(
            allowed=not reasons,
            rejections=tuple(reasons),
            hold_asset=hold.asset if hold else None,
            hold_amount=hold.amount if hold else 0,
        )

    def _route(self, order_id: OrderId, user_id: UserId | None) -> Symbol | Refused:
        record = self.orders.get(order_id)
        if record is None or (user_id is not None and record.spec.user_id != user_id):
            return Refused("unknown_order", f"no order {order_id}")
        if record.status.is_final:
            return Refused("order_not_open", f"order {order_id} is already {record.status}")
        state = self.symbols[record.symbol]
        if state.halted is not None:
            return Refused("symbol_halted", f"{record.symbol} is halted: {state.halted}")
        return record.symbol

    def _forget_submit(self, spec: OrderSpec) -> None:
        self._release(spec.order_id)
        self._forget_pending(spec.order_id)

    def _release(self, order_id: OrderId) -> None:
        """An order ended or never reached its book: free its hold or its margin. A leg
        of an OCO pair frees the pair's hold when it is the last leg left, else lowers it
        to what the legs left need."""
        if self.hold_groups and order_id in self.hold_groups:
            key = self.hold_groups.pop(order_id)
            self.group_specs.pop(order_id, None)
            legs = self.group_members[key]
            legs.remove(order_id)
            if legs:
                needed = self._group_need(key)
                if needed < self.accounts.holds[key][2]:
                    self.accounts.adjust_hold(key, needed)
                return
            del self.group_members[key]
            order_id = key
        self.accounts.release(order_id)
        if not self.margin.orders and not self._liquidation_orders:
            return  # no margin order anywhere: the spot path stops here
        ended = self.margin.remove_order(order_id)
        if ended is not None:
            self._refresh_margin(*ended)
        liquidation = self._liquidation_orders.pop(order_id, None)
        if liquidation is not None:
            self.liquidating.pop(liquidation, None)

    def _held_by(self, order_id: OrderId) -> OrderId:
        """The order id that ``order_id``'s hold is kept under: its OCO pair's, or its own."""
        groups = self.hold_groups
        return groups.get(order_id, order_id) if groups else order_id

    def _group_need(self, key: OrderId) -> int:
        """What the legs of the shared hold ``key`` still need: the most any one needs (one
        leg cancels the other before it trades), each at its price now for its remaining
        lots, or, not placed yet, as submitted."""
        needed = 0
        for leg in self.group_members[key]:
            record = self.orders.get(leg)
            if record is not None:
                if record.status.is_final:
                    continue
                symbol, remaining = record.symbol, record.remaining
                spec = record.spec._replace(price=record.price) if record.price else record.spec
            else:
                symbol, spec = self.group_specs[leg]
                remaining = spec.quantity
            instrument = self.symbols[symbol].instrument
            needed = max(needed, hold_for(instrument, spec, remaining).amount)
        return needed

    def _forget_client_id(self, key: tuple[UserId, ClientOrderId], order_id: OrderId) -> None:
        """``order_id`` is gone: its client order id (``key``) is free, unless it names
        another order by now."""
        if self.client_ids.get(key) == order_id:
            del self.client_ids[key]

    def _forget_pending(self, order_id: OrderId) -> None:
        self._unconfirmed_specs.pop(order_id, None)
        key = self._unconfirmed_ids.pop(order_id, None)
        if key is not None and order_id not in self.orders:
            self._forget_client_id(key, order_id)
        for waiter in self._waiting.pop(order_id, []):
            waiter.fail(EngineBusy("the original order did not reach the book: resend it"))


def _trailing_cap(instrument: Instrument, spec: OrderSpec, reference: int | None) -> int:
    """A trailing stop's protection price (0 if none): the band's edge around the stop price
    it would have if armed at its activation price, else at the reference price; for a
    stop-limit, around its limit then. A buy's stop only falls once armed, so its hold
    covers it; a stop-limit's limit is kept within it (``trailing_limit``)."""
    anchor = spec.activation_price or reference
    if anchor is None:
        return 0
    trigger = trailing_stop_at(spec, anchor)
    if spec.side is Side.BUY:
        trigger += spec.limit_offset
    else:
        trigger = max(trigger - spec.limit_offset, 1)
    return protection_price(instrument, spec.side, trigger) or 0


_RESENT: tuple[str, ...] = (
    "side", "type", "quantity", "price", "stop_price", "time_in_force", "expire_time",
    "post_only", "stp", "reduce_only", "quote_quantity", "trailing_delta", "trailing_bps",
    "activation_price", "limit_offset", "display_quantity",
)  # fmt: skip
"""What a client sends of an order besides its symbol: a resend must repeat each."""
_SIZED = {
    "quantity": "lot_size", "price": "tick_size", "stop_price": "tick_size",
    "trailing_delta": "tick_size", "activation_price": "tick_size", "limit_offset": "tick_size",
    "display_quantity": "lot_size",
}  # fmt: skip
"""The fields in lots or ticks, and the instrument's size of one."""
