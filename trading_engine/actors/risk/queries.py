"""Account queries and order views: the answers to ``Query``.

``Engine`` asks for ``query_balances(user_id)`` and the rest by naming the
method on the actor's class (``Engine._read``); the actor runs it on its own
state. Each ``query_<what>`` reads the state and changes nothing; they answer
from memory, at once, as of what the actor has applied so far.
``query_check`` (``Engine.check_invariants``) checks the accounts, and that
every user's held balance is what their open orders need
(``hold_mismatches``, which ``trading-engine audit`` reports too).

A mixin over ``MarginMixin`` (``query_margin`` reports ``margin_profile``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from trading_engine.actors.answers import Alert, MarginReport
from trading_engine.actors.risk.margin import MarginMixin
from trading_engine.core.enums import ListStatus
from trading_engine.core.events import Trade
from trading_engine.core.holds import (
    HoldMismatch,
    OpenOrder,
    expected_held,
    hold_mismatches,
    margin_requirements,
    pending_hold,
    spot_holds,
)
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, UserId
from trading_engine.core.list_views import ListView
from trading_engine.core.views import OrderView
from trading_engine.errors import InvariantViolation

__all__ = ["QueriesMixin"]


class QueriesMixin(MarginMixin):
    """``query_<what>``: order views, trades, balances, positions, margin, alerts."""

    def query_switch(self, user_id: UserId) -> tuple[int, int] | None:
        """The user's armed dead man's switch, ``(cancel_at, timeout_ms)`` (ns, ms), or None."""
        return self.switches.get(user_id)

    def query_order(self, order_id: OrderId) -> OrderView | None:
        record = self.orders.get(order_id)
        return record.view() if record else None

    def query_order_list(self, list_id: int) -> ListView | None:
        record = self.lists.get(list_id)
        return None if record is None else record.view(self.orders)

    def query_list_by_client_id(self, user_id: UserId, list_client_id: str) -> ListView | None:
        list_id = self.list_client_ids.get((user_id, list_client_id))
        return None if list_id is None else self.query_order_list(list_id)

    def query_open_by_client_id(self, user_id: UserId, client_order_id: str) -> OrderView | None:
        """The user's open order with ``client_order_id``, if there is one."""
        order_id = self.client_ids.get((user_id, ClientOrderId(client_order_id)))
        record = None if order_id is None else self.orders.get(order_id)
        return None if record is None or record.status.is_final else record.view()

    def query_user_orders(self, user_id: UserId, open_only: bool, limit: int) -> list[OrderView]:
        if open_only:
            records = list(self.open_by_user.get(user_id, {}).values())
        else:
            records = [r for r in self.orders.values() if r.spec.user_id == user_id]
        records.sort(key=lambda r: r.spec.order_id, reverse=True)
        return [r.view() for r in records[:limit]]

    def query_open_orders(self, user_id: UserId) -> tuple[dict[Symbol, int], list[OrderView]]:
        """The user's open orders, oldest first, and per symbol the ``seq`` they are as of."""
        records = sorted(self.open_by_user.get(user_id, {}).values(), key=lambda r: r.spec.order_id)
        seqs = {symbol: self.applied_seq.get(symbol, 0) for symbol in self.symbols}
        return seqs, [r.view() for r in records]

    def query_orders_snapshot(
        self, user_id: UserId
    ) -> tuple[dict[Symbol, int], list[OrderView], list[ListView]]:
        """``query_open_orders``, and the user's open lists (by id) as of the same ``seq``s:
        an open list always has an open member, its working order or a leg."""
        seqs, views = self.query_open_orders(user_id)
        lists = []
        for list_id in sorted({view.list_id for view in views if view.list_id}):
            record = self.lists.get(list_id)
            if record is not None and record.status is ListStatus.OPEN:
                lists.append(record.view(self.orders))
        return seqs, views, lists

    def query_user_trades(self, user_id: UserId, limit: int) -> list[Trade]:
        tape = self.user_trades.get(user_id, deque())
        return list(reversed(tape))[:limit]

    def query_order_fills(
        self, user_id: UserId, order_ids: tuple[OrderId, ...]
    ) -> dict[OrderId, list[Trade]]:
        """The trades of the user's own tape that fill any of ``order_ids``, oldest first."""
        wanted = set(order_ids)
        fills: dict[OrderId, list[Trade]] = {}
        for trade in self.user_trades.get(user_id, ()):
            for order_id in (trade.maker_order_id, trade.taker_order_id):
                if order_id in wanted:
                    fills.setdefault(order_id, []).append(trade)
        return fills

    def query_balances(self, user_id: UserId) -> dict[str, tuple[int, int]]:
        return {
            asset: self.accounts.balance(user_id, asset) for asset in self.accounts.assets(user_id)
        }

    def query_user_exists(self, user_id: UserId) -> bool:
        return user_id in self.users

    def query_key(self, key_hash: str) -> UserId | None:
        return self.keys.get(key_hash)

    def query_credentials(self, user_id: UserId) -> dict[str, str]:
        """The user's signing credentials by scheme (``CredentialSet``)."""
        return dict(self.credentials.get(user_id, {}))

    def query_positions(self, user_id: UserId) -> dict[Symbol, int]:
        return {s: q for (u, s), q in self.accounts.positions.items() if u == user_id and q}

    def query_margin(self, user_id: UserId) -> MarginReport:
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

    def query_alerts(self, limit: int) -> list[Alert]:
        return list(reversed(self.alerts))[:limit]

    def query_stp_counts(self) -> dict[UserId, int]:
        return dict(self.stp_counts)

    def query_check(self, holds: bool = True) -> bool:
        """Raise ``InvariantViolation`` if the accounts are inconsistent (``Accounts.check``)
        or, with ``holds``, a user's held balance is not what their open orders need
        (``hold_mismatches``); True otherwise."""
        self.accounts.check()
        mismatches = self.hold_mismatches() if holds else []
        if mismatches:
            shown = "; ".join(str(m) for m in mismatches[:10])
            more = f" (and {len(mismatches) - 10} more)" if len(mismatches) > 10 else ""
            raise InvariantViolation(f"held is not what the open orders need: {shown}{more}")
        return True

    def hold_mismatches(self, orders: Iterable[OpenOrder] | None = None) -> list[HoldMismatch]:
        """Every user and asset whose held balance is not what their open orders and
        positions need, computed from the orders' state (``core.holds``), apart from
        the hold bookkeeping. ``orders``: the open orders to compute from (the audit
        gives the books' own); by default this actor's records of them.

        An order with a command under way counts at what it holds now, since its
        committed state does not say yet: a submit not yet journaled (held, not yet in
        ``orders``) and an amend not yet written, refused or lost (its hold or margin
        raised first). After a recovery there are none: every hold is computed. A list's
        members waiting for their working order need ``_deferred_holds``.
        """
        kept = (self.accounts.holds, self.margin.orders)
        if orders is None:
            instruments = {symbol: state.instrument for symbol, state in self.symbols.items()}
            orders = [
                (instruments[r.symbol], r.spec, r.price, r.remaining)
                for by_user in self.open_by_user.values()
                for r in by_user.values()
            ]
        orders = list(orders)
        pending = self._deferred_holds({order[1].order_id: order[3] for order in orders})
        under_way = set(self._amending)
        under_way.update(
            o for holds in kept for o in holds if o not in self.orders and o not in pending
        )
        if under_way:
            orders = [order for order in orders if order[1].order_id not in under_way]
        spot = spot_holds(orders, self.hold_groups)
        for user_id, asset, amount in pending.values():
            spot[(user_id, asset)] = spot.get((user_id, asset), 0) + amount
        positions = [
            (user_id, self.symbols[symbol].instrument.quote_asset, position.cost)
            for user_id, by_symbol in self.margin.positions.items()
            for symbol, position in by_symbol.items()
        ]
        requirements = margin_requirements(orders, positions, self.margin.rates.initial)
        for holds, needed in zip(kept, (spot, requirements), strict=True):
            for order_id in under_way.intersection(holds):
                user_id, asset, amount = holds[order_id]
                needed[(user_id, asset)] = needed.get((user_id, asset), 0) + amount
        collateral = {key: self.accounts.collateral(*key) for key in requirements}
        expected = expected_held(spot, requirements, collateral)
        return hold_mismatches(expected, self.accounts.held)

    def _deferred_holds(
        self, remaining: Mapping[OrderId, int]
    ) -> dict[OrderId, tuple[UserId, str, int]]:
        """What the members of open lists waiting for their working order need, by the
        order id their hold is kept under (an OCO pair's one: the larger): ``pending_hold``
        for the lots the working order has left (``remaining``; none if it is not there)."""
        needed: dict[OrderId, tuple[UserId, str, int]] = {}
        for record in self.lists.values():
            if record.status is not ListStatus.OPEN or not record.deferred:
                continue
            working = self.orders[record.members[0]].spec
            instrument = self.symbols[record.symbol].instrument
            left = remaining.get(working.order_id, 0)
            for spec in record.deferred.values():
                key = self.hold_groups.get(spec.order_id, spec.order_id)
                hold = pending_hold(instrument, working, left, spec)
                if key not in needed or hold.amount > needed[key][2]:
                    needed[key] = (spec.user_id, hold.asset, hold.amount)
        return needed
