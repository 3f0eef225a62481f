"""Errors as Binance shapes them: ``{"code": -NNNN, "msg": "..."}`` with its statuses.

Every error of the dialect is a ``BinanceError``; ``binance_error_of`` turns
what the shared code raises (``InvalidInput``, ``OffGridError``, ``ApiError``,
the mailbox's and storage's errors) into one. Codes and messages are
Binance's own where a client reads them: ccxt maps the code (``-2013`` to
``OrderNotFound``) or, for a few, the exact message (``-2010`` "Account has
insufficient balance for requested action." to ``InsufficientFunds``), so
those messages are kept word for word and details go elsewhere.

    BinanceError(status, code, msg)
    ├── 400  -1013 filter failure, -1111 too many decimals, -1112 no book for a market
    │        order, -1014 unsupported combination, -1021 timestamp,
    │        -1022 signature, -1100..-1106 parameters, -1115..-1131 bad values,
    │        -2010 order rejected (also what the engine lacks), -2011 cancel rejected,
    │        -2013 no such order, -2022 cancel-replace failed
    ├── 401  -2014 key format, -2015 unknown key
    ├── 409  -2021 cancel-replace partly failed (answered by trading.py, with ``data``)
    ├── 429  -1003 rate limit, -1015 an order to a symbol whose inbox is full (with
    │        Retry-After; the dialect's error handler)
    ├── 500  -1000 unexpected
    └── 503  -1001 internal, -1007 timeout, -1008 busy
"""

from __future__ import annotations

from quart import Response, jsonify

from trading_engine.actors.mailbox import ActorUnavailable, EngineBusy, ReplyTimeout
from trading_engine.api.errors import ApiError
from trading_engine.errors import InvalidInput, OffGridError
from trading_engine.storage.journal import StorageUnavailable

__all__ = [
    "BAD_SIGNATURE",
    "INSUFFICIENT_BALANCE",
    "NO_SUCH_ORDER",
    "BinanceError",
    "binance_error_of",
    "empty",
    "illegal",
    "invalid_symbol",
    "mandatory",
    "unsupported",
]

INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
NO_SUCH_ORDER = "Order does not exist."
BAD_SIGNATURE = "Signature for this request is not valid."


class BinanceError(Exception):
    """Raised by the dialect's handlers to answer ``{"code", "msg"}`` with ``status``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg

    def response(self) -> Response:
        response = jsonify({"code": self.code, "msg": self.msg})
        response.status_code = self.status
        return response


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def empty(name: str) -> BinanceError:
    return BinanceError(400, -1105, f"Parameter '{name}' was empty.")


def illegal(name: str) -> BinanceError:
    return BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")


def invalid_symbol() -> BinanceError:
    return BinanceError(400, -1121, "Invalid symbol.")


def unsupported() -> BinanceError:
    return BinanceError(400, -1014, "Unsupported order combination.")


_FILTERS = {
    "price": "PRICE_FILTER", "stop_price": "PRICE_FILTER", "activation_price": "PRICE_FILTER",
    "quantity": "LOT_SIZE", "display_quantity": "LOT_SIZE",
}  # fmt: skip
"""Which Binance filter an off-grid field of ours fails."""
_NAMES = {
    "price": "price", "stop_price": "stopPrice", "quantity": "quantity",
    "client_order_id": "newClientOrderId", "time_in_force": "timeInForce", "side": "side",
    "type": "type", "symbol": "symbol", "stp": "selfTradePreventionMode",
    "display_quantity": "icebergQty", "quote_quantity": "quoteOrderQty",
    "trailing_bps": "trailingDelta", "activation_price": "stopPrice",
}  # fmt: skip
"""Our field names to the dialect's, for messages."""
_POSITIVE = ("price", "stop_price", "quantity", "quote_quantity", "activation_price")
"""Fields whose value 0 is -1013 ("Invalid quantity."), as Binance answers it."""


def binance_error_of(exc: Exception) -> BinanceError:
    """The dialect's error for an exception a handler let through."""
    if isinstance(exc, BinanceError):
        return exc
    if isinstance(exc, OffGridError):
        if exc.field == "quote_quantity":
            return BinanceError(400, -1111, "Parameter 'quoteOrderQty' has too much precision.")
        return BinanceError(400, -1013, f"Filter failure: {_FILTERS.get(exc.field, 'LOT_SIZE')}")
    if isinstance(exc, InvalidInput) and exc.field in ("trailing_bps", "trailing_delta"):
        return BinanceError(400, -1013, "Filter failure: TRAILING_DELTA")
    if isinstance(exc, InvalidInput):
        name = _NAMES.get(exc.field, exc.field)
        message = exc.message.removeprefix(f"{exc.field}: ")
        if exc.field in _POSITIVE and "positive" in message:
            return BinanceError(400, -1013, f"Invalid {name}.")
        return BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; "
                                        f"{name} {message}.")  # fmt: skip
    if isinstance(exc, ApiError):
        return _api_error(exc)
    if isinstance(exc, ReplyTimeout):
        return BinanceError(
            503, -1007,
            "Timeout waiting for response from backend server. Send status unknown; "
            "execution status unknown.",
        )  # fmt: skip
    if isinstance(exc, EngineBusy):
        return BinanceError(503, -1008, "Server is currently overloaded with other requests. "
                                        "Please try again in a few minutes.")  # fmt: skip
    if isinstance(exc, StorageUnavailable | ActorUnavailable):
        return BinanceError(503, -1001, "Internal error; unable to process your request. "
                                        "Please try again.")  # fmt: skip
    return BinanceError(500, -1000, "An unknown error occurred while processing the request.")


def _api_error(exc: ApiError) -> BinanceError:
    if exc.code == "symbol_unknown":
        return invalid_symbol()
    if exc.code == "unknown_order":
        return BinanceError(400, -2013, NO_SUCH_ORDER)
    if exc.status == 401:
        return BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    if exc.status == 429:
        return BinanceError(429, -1003, exc.message)
    if exc.status == 503:
        return BinanceError(503, -1001, "Internal error; unable to process your request. "
                                        "Please try again.")  # fmt: skip
    return BinanceError(400, -1100, exc.message)
