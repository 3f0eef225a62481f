"""Distinct id types, so that an order id is never passed where a user id belongs.

Ids that come from outside keep to a safe character set, so that every one of
them can stand in a URL path (``/users/{id}/...``), a log line or a Redis key
name as it is: user ids (``USER_ID_RULE``) and client order ids
(``CLIENT_ORDER_ID_RULE``).
"""

import re
from typing import NewType

from trading_engine.errors import InvalidInput

__all__ = [
    "CLIENT_ORDER_ID_PATTERN",
    "CLIENT_ORDER_ID_RULE",
    "USER_ID_PATTERN",
    "USER_ID_RULE",
    "ClientOrderId",
    "OrderId",
    "Symbol",
    "TradeId",
    "UserId",
    "parse_client_order_id",
    "parse_user_id",
]

OrderId = NewType("OrderId", int)
TradeId = NewType("TradeId", int)
UserId = NewType("UserId", str)
Symbol = NewType("Symbol", str)
ClientOrderId = NewType("ClientOrderId", str)

USER_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
USER_ID_RULE = "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
CLIENT_ORDER_ID_PATTERN = r"[A-Za-z0-9_.:/\-]{1,64}"
CLIENT_ORDER_ID_RULE = "1 to 64 letters, digits, '_', '.', ':', '/' or '-'"
_USER_ID = re.compile(USER_ID_PATTERN)
_CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID_PATTERN)


def parse_user_id(raw: object, *, field: str = "user_id") -> UserId:
    """A user id as a request gives it; raises ``InvalidInput`` unless it keeps to the rule."""
    if not isinstance(raw, str) or not _USER_ID.fullmatch(raw):
        raise InvalidInput(field, f"must be {USER_ID_RULE}")
    return UserId(raw)


def parse_client_order_id(raw: object, *, field: str = "client_order_id") -> ClientOrderId:
    """A client order id; raises ``InvalidInput`` unless it keeps to the rule."""
    if not isinstance(raw, str) or not _CLIENT_ORDER_ID.fullmatch(raw):
        raise InvalidInput(field, f"must be {CLIENT_ORDER_ID_RULE}")
    return ClientOrderId(raw)
