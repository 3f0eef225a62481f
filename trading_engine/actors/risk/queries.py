"""Account queries and order views: the answers to ``Query(what, args)``.

``Query("balances", (user_id,), reply)`` is answered with
``query_balances(user_id)``, and so on: each ``query_<what>`` reads the
actor's state and changes nothing. They answer from memory, at once, as of
what the actor has applied so far.

A mixin over ``MarginMixin`` (``query_margin`` reports ``margin_profile``).
"""

from __future__ import annotations

from collections import deque

from trading_engine.actors.risk.margin import MarginMixin
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.views import OrderView

__all__ = ["QueriesMixin"]


class QueriesMixin(MarginMixin):
    """``query_<what>``: order views, trades, balances, positions, margin, alerts."""

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

    def query_open_orders(self, user_id: UserId) -> tuple[dict[Symbol, int], list[OrderView]]:
        """The user's open orders, oldest first, and per symbol the ``seq`` they are as of."""
        records = sorted(self.open_by_user.get(user_id, {}).values(), key=lambda r: r.spec.order_id)
        seqs = {symbol: self.applied_seq.get(symbol, 0) for symbol in self.symbols}
        return seqs, [r.view() for r in records]

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
