"""The engine's vocabulary: sides, order types, statuses and reason codes.

Every member's value is the string the API and the journal use, so an enum
member and its wire form never disagree.
"""

from enum import StrEnum

__all__ = [
    "CancelReason",
    "Liquidity",
    "ListStatus",
    "ListType",
    "OrderStatus",
    "OrderType",
    "RefusalReason",
    "RejectReason",
    "Side",
    "StpMode",
    "TimeInForce",
]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    STOP = "stop"
    """Waits for its stop price, then becomes a market order."""
    STOP_LIMIT = "stop_limit"
    """Waits for its stop price, then becomes a limit order."""
    TAKE_PROFIT = "take_profit"
    """Waits for the price to reach its stop price in its favour, then becomes a market order."""
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    """Waits as a take-profit does, then becomes a limit order."""
    TRAILING_STOP = "trailing_stop"
    """A stop whose stop price follows the last trade price in its favour; market when
    triggered."""
    TRAILING_STOP_LIMIT = "trailing_stop_limit"
    """A trailing stop that becomes a limit order ``limit_offset`` beyond its stop price."""


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"


class OrderStatus(StrEnum):
    PENDING_TRIGGER = "pending_trigger"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class StpMode(StrEnum):
    """Self-trade prevention; the taker's mode decides, as on Binance and Coinbase."""

    CANCEL_NEWEST = "cancel_newest"
    """Cancel the incoming (taker) order's remainder; the resting order stays."""
    CANCEL_OLDEST = "cancel_oldest"
    """Cancel the resting (maker) order and keep matching."""
    CANCEL_BOTH = "cancel_both"
    """Cancel both the resting order and the taker's remainder."""
    DECREMENT = "decrement"
    """Reduce both by the smaller remaining quantity; an order reduced to zero is cancelled."""
    NONE = "none"
    """Allow the user to trade with themselves."""


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class RejectReason(StrEnum):
    """Why an order was rejected: by the matcher, or by risk before it reached the book."""

    DUPLICATE_ORDER_ID = "duplicate_order_id"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    INVALID_ORDER = "invalid_order"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    FOK_NOT_FILLABLE = "fok_not_fillable"
    STOP_WOULD_TRIGGER_IMMEDIATELY = "stop_would_trigger_immediately"
    ALREADY_EXPIRED = "already_expired"
    # Pre-trade risk checks (the risk actor).
    SYMBOL_UNKNOWN = "symbol_unknown"
    SYMBOL_HALTED = "symbol_halted"
    OFF_GRID = "off_grid"
    BELOW_MIN_QUANTITY = "below_min_quantity"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    OUTSIDE_PRICE_BAND = "outside_price_band"
    ABOVE_MAX_ORDER_SIZE = "above_max_order_size"
    ABOVE_MAX_POSITION = "above_max_position"
    TOO_MANY_OPEN_ORDERS = "too_many_open_orders"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    REDUCE_ONLY_WOULD_INCREASE = "reduce_only_would_increase"
    """A reduce-only order with no position to reduce: the user is flat or on its side."""
    NO_REFERENCE_PRICE = "no_reference_price"
    """A market or stop order needs a reference price and a band for its protection price."""
    UNKNOWN_USER = "unknown_user"
    BUSY = "busy"
    """The symbol's inbox is full: back off and resend with the same client_order_id."""


class CancelReason(StrEnum):
    USER = "user"
    MASS_CANCEL = "mass_cancel"
    UNFILLED_IOC = "unfilled_ioc"
    NO_LIQUIDITY = "no_liquidity"
    """A market order's remainder: the other side of the book ran out."""
    PRICE_BAND = "price_band"
    """A market order's remainder: the next price was outside the band."""
    QUOTE_QUANTITY_REACHED = "quote_quantity_reached"
    """A quote-sized market order's remainder: the next lot would pass its quote amount."""
    SELF_TRADE_PREVENTION = "self_trade_prevention"
    REDUCE_ONLY = "reduce_only"
    """A reduce-only order cut to its user's position: the position shrank, closed or turned."""
    LIQUIDATION = "liquidation"
    ADMIN = "admin"
    CANCEL_ALL_AFTER = "cancel_all_after"
    """The user's dead man's switch fired (``POST /orders/cancel-all-after``)."""
    OCO = "oco"
    """The other leg of its one-cancels-the-other pair traded or triggered."""
    ORDER_LIST = "order_list"
    """Another member of its order list ended unfilled, or the list was cancelled."""


class RefusalReason(StrEnum):
    """Why a cancel or amend did nothing: an expected outcome, returned as a value."""

    UNKNOWN_ORDER = "unknown_order"
    ORDER_NOT_OPEN = "order_not_open"
    NOT_OWNER = "not_owner"
    INVALID_AMEND = "invalid_amend"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"


class ListType(StrEnum):
    """An order list's kind (``POST /order-lists``)."""

    OCO = "oco"
    """Two orders, one cancels the other: a take-profit leg, then a stop-loss leg."""
    OTO = "oto"
    """A working order, then a pending order placed once the working one has filled."""
    OTOCO = "otoco"
    """A working order, then an OCO of a take-profit and a stop-loss once it has filled."""


class ListStatus(StrEnum):
    """An order list's status: ``open`` until it resolves or is cut short."""

    OPEN = "open"
    DONE = "done"
    """It did what it was made for: an OCO leg traded or triggered and the other was
    cancelled; an OTO's pending order was placed; an OTOCO's pair was placed and resolved."""
    CANCELLED = "cancelled"
    """A member ended unfilled before that (cancelled, expired), or the list was cancelled."""
    REJECTED = "rejected"
    """A pending member was rejected by the matcher when its turn came."""

    @property
    def is_final(self) -> bool:
        return self is not ListStatus.OPEN
