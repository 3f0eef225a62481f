"""Cancel-on-disconnect: the orders placed through one WebSocket connection, cancelled
when it closes.

A connection that authenticates with ``"cancel_on_disconnect": true`` keeps
the reply of every order it places from then on. When it closes, for any
reason (the client closes it, the network drops it, a write stalls, the
server stops), the replies still in flight are waited for, then every order
among them still open is cancelled through the risk actor, journaled as any
cancel. An order placed before the flag was given, or through another
connection, is left alone.

The replies kept are pruned as they pile up: once there are twice as many
as after the last pruning, those whose order is no longer open (asked of
the engine, one query per user) are dropped, so that a connection that has
placed millions of orders keeps about as many as are open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from trading_engine.actors.facade import Engine
from trading_engine.actors.mailbox import ActorUnavailable, Reply
from trading_engine.actors.messages import (
    ListCancelled,
    ListOutcome,
    ListResult,
    OrderResult,
    Refused,
    SubmitOutcome,
)
from trading_engine.core.enums import OrderStatus
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.views import OrderView

__all__ = ["Placements"]

log = logging.getLogger(__name__)

PRUNE_AT = 1024
"""Replies kept before the first pruning."""


class Placements:
    """The orders one connection placed while armed, to cancel when it closes."""

    def __init__(self, engine: Engine, prune_at: int = PRUNE_AT) -> None:
        self._engine = engine
        self.armed = False
        """Whether orders placed from now on are cancelled when the connection closes."""
        self._replies: list[Reply[SubmitOutcome]] = []
        self._lists: list[Reply[ListOutcome]] = []
        """The replies of the order lists placed: few, kept until the connection closes."""
        self._least = self._prune_at = prune_at

    def __len__(self) -> int:
        """The replies kept."""
        return len(self._replies)

    def sent(self, replies: Iterable[Reply[SubmitOutcome]]) -> None:
        """Keep the replies of orders just handed to the engine, if armed."""
        if self.armed:
            self._replies.extend(replies)

    def sent_list(self, reply: Reply[ListOutcome]) -> None:
        """Keep the reply of an order list just handed to the engine, if armed."""
        if self.armed:
            self._lists.append(reply)

    async def prune(self) -> None:
        """Drop the replies of orders no longer open, once enough have piled up."""
        if len(self._replies) < self._prune_at:
            return
        answered = [view for view in map(_answered, self._replies) if view is not None]
        still_open: set[OrderId] = set()
        for user in {view.user_id for view in answered}:
            _, views = await self._engine.open_orders(user)
            still_open.update(view.order_id for view in views)
        self._replies = [
            reply
            for reply in self._replies
            if not reply.done or ((view := _answered(reply)) and view.order_id in still_open)
        ]
        self._prune_at = max(self._least, 2 * len(self._replies))

    async def cancel(self) -> int:
        """Cancel every order kept that is still open, once those in flight are answered;
        the number of cancels that took effect. Run shielded: the engine's reply deadline
        bounds every wait."""
        replies, self._replies = self._replies, []
        owners: dict[OrderId, UserId] = {}
        for reply in replies:
            try:
                await reply.wait()
            except Exception:  # noqa: BLE001, S112 - not placed, or not known: nothing to cancel
                continue
            view = _answered(reply)
            if view is not None:
                owners[view.order_id] = view.user_id
        lists: dict[int, UserId] = {}
        for list_reply in self._lists:
            try:
                outcome = await list_reply.wait()
            except Exception:  # noqa: BLE001, S112 - not placed, or not known
                continue
            if isinstance(outcome, ListResult):
                lists[outcome.order_list.list_id] = outcome.order_list.user_id
        self._lists = []
        cancels: list[Reply[OrderResult | Refused]] = []
        list_cancels: list[Reply[ListCancelled | Refused]] = []
        try:
            for list_id, user in lists.items():
                list_cancels.append(self._engine.cancel_list_soon(list_id, user))
            for order_id, user in owners.items():
                cancels.append(self._engine.cancel_soon(order_id, user))
        except ActorUnavailable:
            log.warning("the engine stopped: %d orders left to cancel", len(owners) - len(cancels))
        cancelled = 0
        for cancel in cancels:
            try:
                cancelled += isinstance(await cancel.wait(), OrderResult)
            except Exception:
                log.exception("cancel on disconnect failed")
        for list_cancel in list_cancels:
            try:
                answer = await list_cancel.wait()
            except Exception:
                log.exception("cancel on disconnect failed")
                continue
            if isinstance(answer, ListCancelled):
                cancelled += sum(view.status is OrderStatus.CANCELLED for view in answer.orders)
        return cancelled


def _answered(reply: Reply[SubmitOutcome]) -> OrderView | None:
    """The order a reply placed, if it is answered and the order was open then."""
    if not reply.done:
        return None
    try:
        outcome = reply.result()
    except Exception:  # noqa: BLE001 - not placed, or not known
        return None
    if isinstance(outcome, OrderResult) and not outcome.order.status.is_final:
        return outcome.order
    return None
