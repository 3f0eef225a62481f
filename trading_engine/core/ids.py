"""Distinct id types, so that an order id is never passed where a user id belongs."""

from typing import NewType

__all__ = ["ClientOrderId", "OrderId", "Symbol", "TradeId", "UserId"]

OrderId = NewType("OrderId", int)
TradeId = NewType("TradeId", int)
UserId = NewType("UserId", str)
Symbol = NewType("Symbol", str)
ClientOrderId = NewType("ClientOrderId", str)
