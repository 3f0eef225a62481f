"""The user data stream's events, from the ``orders`` channel and the engine's views.

``Orders`` turns each message of a user's ``orders`` channel (``order`` updates,
``actors/marketdata.py``) into Binance's ``executionReport``: the order's
standing fields (side, type, price, quantity, client id, times) come from its
``OrderView``, asked of the engine once per order and again after an amend;
what changed (the execution type, status, last fill, cumulative quantity)
comes from the event. The cumulative quote quantity ``Z`` is the order's
notional when first seen plus each fill's since. A fill's commission ``n`` is
its fee, in the quote asset ``N`` (negative for a maker rebate), as ``myTrades``
shows it; other reports have ``n`` 0 and ``N`` null, as Binance's.

``account_position`` is ``outboundAccountPosition``: the current balances of
the assets an update touched (``free`` available, ``locked`` held);
``balance_update`` is ``balanceUpdate``, from the user's ``balances`` channel
(a deposit or a withdrawal).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from trading_engine.actors.facade import Engine
from trading_engine.api.binance.lists import list_status
from trading_engine.api.binance.payloads import now_ms, seconds_ms, trade_id
from trading_engine.api.binance.render import (
    EXPIRY_REASONS,
    binance_type,
    original_quantity,
    stop_price,
)
from trading_engine.api.binance.render import status as binance_status
from trading_engine.api.binance.symbols import Precision, fixed, joined, millis
from trading_engine.api.schemas import asset_decimals
from trading_engine.core.enums import OrderStatus
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.numbers import to_units
from trading_engine.core.views import OrderView

__all__ = ["Orders", "account_position", "assets_of", "balance_update", "list_status_event"]

_EXECUTION = {
    "OrderAccepted": ("NEW", "NEW"),
    "OrderRejected": ("REJECTED", "REJECTED"),
    "OrderFilled": ("TRADE", None),
    "OrderCancelled": ("CANCELED", "CANCELED"),
    "OrderExpired": ("EXPIRED", "EXPIRED"),
    "OrderAmended": ("REPLACED", None),
    "StopTriggered": ("NEW", "NEW"),
}
"""Our event to Binance's execution type and, where the event decides it, status."""
_ENDED = {
    "OrderRejected": OrderStatus.REJECTED,
    "OrderCancelled": OrderStatus.CANCELLED,
    "OrderExpired": OrderStatus.EXPIRED,
}
"""Our events that end an order, and its status then; Binance's status follows from it
and the event's reason as ``GET order`` shows it (``render.status``): an IOC's or a
market order's remainder, or an unfillable FOK, is EXPIRED, a self-trade prevented
EXPIRED_IN_MATCH."""
_ENDING = {"EXPIRED_IN_MATCH": "TRADE_PREVENTION", "FILLED": "EXPIRED"}
"""Binance's execution type for an ending status that is not its own name (a
quote-sized market order that filled what it could ends FILLED, by expiry)."""
_REJECTION = {
    "insufficient_funds": "INSUFFICIENT_BALANCES",
    "stop_would_trigger_immediately": "STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY",
    "post_only_would_take": "WOULD_MATCH_IMMEDIATELY",
}
"""Our reasons for a rejection to Binance's reject reason (``r``); another is shown in
capitals."""


class _Order:
    """An order's standing fields (``view``) and what the stream has told of its fills."""

    def __init__(self, view: OrderView, fresh: bool) -> None:
        self.view = view
        self.filled = 0 if fresh else view.filled
        """Cumulative filled lots."""
        self.quote = 0 if fresh else view.notional
        """Cumulative quote, in ticks x lots."""
        self.working: int | None = None
        """Since when (ms) it works on the book: None while a stop waits for its trigger,
        then the trigger's time (its creation's for one triggered before first seen)."""
        if view.status is not OrderStatus.PENDING_TRIGGER:
            self.working = millis(view.created_ts)


class Orders:
    """One user's orders as the stream has told them (see the module's docstring)."""

    def __init__(self, engine: Engine, user: UserId) -> None:
        self.engine = engine
        self.user = user
        self._orders: dict[OrderId, _Order] = {}
        self._seqs: dict[str, int] = {}

    async def seed(self) -> None:
        """Take the user's open orders; call once subscribed to ``orders``.

        An update at or below its symbol's ``seq`` of the snapshot, for an
        order in it, is already in it and is not reported again.
        """
        seqs, views = await self.engine.open_orders(self.user)
        self._seqs = {str(symbol): seq for symbol, seq in seqs.items()}
        for view in views:
            self._orders[view.order_id] = _Order(view, fresh=False)

    async def report(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The ``executionReport`` of one ``order`` update, or None for none."""
        kind = message.get("event")
        if message.get("type") != "order" or kind not in _EXECUTION:
            return None
        order_id = OrderId(int(message["order_id"]))
        known = self._orders.get(order_id)
        if known is not None and message["seq"] <= self._seqs.get(message["symbol"], 0):
            return None
        if known is None or kind == "OrderAmended":
            view = await self.engine.order(order_id)
            if view is None:
                return None
            if known is None:
                # First told of after the snapshot: every event of it is still to come.
                known = _Order(view, fresh=True)
                self._orders[order_id] = known
            else:
                known.view = view
        return self._render(known, kind, message)

    def _render(self, order: _Order, kind: str, message: dict[str, Any]) -> dict[str, Any]:
        view = order.view
        instrument = self.engine.instruments()[view.symbol]
        numbers = Precision(instrument)
        execution, status = _EXECUTION[kind]
        last_qty = last_price = commission = Decimal(0)
        commission_asset = None
        number = -1
        maker = False
        if kind == "OrderFilled":
            last_qty, last_price = Decimal(message["quantity"]), Decimal(message["price"])
            commission, commission_asset = Decimal(message["fee"]), instrument.quote_asset
            lot, tick = instrument.lot_size, instrument.tick_size
            order.filled = to_units(Decimal(message["filled_quantity"]), lot, field="z")
            last = to_units(last_price, tick, field="L") * to_units(last_qty, lot, field="l")
            order.quote += last
            status = binance_status(
                view._replace(status=OrderStatus(message["status"]), reason=None)
            )
            number = trade_id(message)
            maker = message.get("liquidity") == "maker"
        reason = message.get("reason")
        if kind in _ENDED:
            ended = view._replace(status=_ENDED[kind], reason=reason, filled=order.filled)
            status = binance_status(ended)
            execution = _ENDING.get(status, status)
        if status is None:
            status = "PARTIALLY_FILLED" if order.filled else "NEW"
        done = status in ("FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED")
        if done:
            self._orders.pop(view.order_id, None)
        kind_name = binance_type(view)
        client_id = view.client_order_id or str(view.order_id)
        created = millis(view.created_ts)
        if kind == "StopTriggered":
            order.working = seconds_ms(message["ts"])
        pending = order.working is None
        report: dict[str, Any] = {
            "e": "executionReport",
            "E": now_ms(),
            "s": joined(view.symbol),
            "c": client_id,
            "S": view.side.value.upper(),
            "o": kind_name,
            "f": "GTC" if kind_name == "LIMIT_MAKER" else str(view.time_in_force),
            "q": numbers.quantity(original_quantity(view)),
            "p": numbers.price(view.price),
            "P": numbers.price(stop_price(view)),
            "F": numbers.quantity(view.display_quantity),
            "g": view.list_id or -1,
            "C": client_id if kind == "OrderCancelled" else "",
            "x": execution,
            "X": status,
            "r": _rejection(reason) if execution == "REJECTED" else "NONE",
            "i": view.order_id,
            "l": fixed(last_qty, numbers.quantity_places),
            "z": numbers.quantity(order.filled),
            "L": fixed(last_price, numbers.price_places),
            "n": fixed(commission, numbers.quote_places),
            "N": commission_asset,
            "T": seconds_ms(message["ts"]),
            "t": number,
            "I": message["seq"],
            "w": not done and not pending,
            "m": maker,
            "M": False,
            "O": created,
            "Z": numbers.notional(order.quote),
            "Y": fixed(last_price * last_qty, numbers.quote_places),
            "Q": numbers.quote(view.quote_quantity),
            "W": -1 if order.working is None else order.working,
            "V": "NONE",
        }
        if view.trailing_bps:
            report["d"] = view.trailing_bps  # trailingDelta
        if execution == "EXPIRED" and reason in EXPIRY_REASONS:
            report["eR"] = EXPIRY_REASONS[reason]
        return report


def _rejection(reason: str | None) -> str:
    if reason is None:
        return "NONE"
    return _REJECTION.get(reason, reason.upper())


def assets_of(engine: Engine, symbols: Iterable[Symbol]) -> set[str]:
    """The base and quote assets of ``symbols``."""
    instruments = engine.instruments()
    return {
        asset
        for symbol in symbols
        if symbol in instruments
        for asset in (instruments[symbol].base_asset, instruments[symbol].quote_asset)
    }


def _money(engine: Engine, asset: str, units: int) -> str:
    places = asset_decimals(engine.instruments(), asset)
    return fixed(Decimal(units).scaleb(-places), places)


def balance_update(engine: Engine, message: dict[str, Any]) -> dict[str, Any] | None:
    """A ``balances`` message (a deposit or withdrawal) as ``balanceUpdate``."""
    if message.get("type") != "balance":
        return None
    return {
        "e": "balanceUpdate",
        "E": now_ms(),
        "a": message["asset"],
        "d": _money(engine, message["asset"], message["change"]),
        "T": seconds_ms(message["ts"]),
    }


async def account_position(engine: Engine, user: UserId, assets: set[str]) -> dict[str, Any] | None:
    """``outboundAccountPosition`` for ``assets``; None for none."""
    if not assets:
        return None
    balances = await engine.balances(user)
    rows = []
    for asset in sorted(assets):
        available, held = balances.get(asset, (0, 0))
        rows.append(
            {"a": asset, "f": _money(engine, asset, available), "l": _money(engine, asset, held)}
        )
    now = now_ms()
    return {"e": "outboundAccountPosition", "E": now, "u": now, "B": rows}


async def list_status_event(engine: Engine, message: dict[str, Any]) -> dict[str, Any] | None:
    """``listStatus`` for a ``list`` update that placed or ended a list (a member's own
    events are ``executionReport``s), from the list as the engine shows it then."""
    if message.get("event") not in ("OrderListPlaced", "OrderListUpdated"):
        return None
    view = await engine.order_list(int(message["list_id"]))
    if view is None:
        return None
    shown = list_status(view)
    if message["event"] == "OrderListPlaced":
        shown.update(listStatusType="EXEC_STARTED", listOrderStatus="EXECUTING")
    return {
        "e": "listStatus",
        "E": now_ms(),
        "s": shown["symbol"],
        "g": shown["orderListId"],
        "c": shown["contingencyType"],
        "l": shown["listStatusType"],
        "L": shown["listOrderStatus"],
        "r": "NONE",
        "C": shown["listClientOrderId"],
        "T": seconds_ms(message["ts"]),
        "O": [{"s": o["symbol"], "i": o["orderId"], "c": o["clientOrderId"]}
              for o in shown["orders"]],
    }  # fmt: skip
