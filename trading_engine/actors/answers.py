"""What the engine's queries answer beyond core's values: typed, in engine units.

Prices are ticks, quantities lots, money minor units and times nanoseconds,
as everywhere inside; the API renders them (``api/``). Each is a
``TypedDict``: the actors keep and pickle them as plain dicts (snapshots hold
tickers), and mypy checks every key that is read.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from trading_engine.core.algos import AlgoView
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.list_views import ListView
from trading_engine.core.views import OrderView

__all__ = ["Alert", "MarginProfile", "MarginReport", "OrdersSnapshot", "Ticker", "TradeStatus"]


class Ticker(TypedDict):
    """A symbol's reference prices and 24-hour statistics (None before the first trade)."""

    symbol: Symbol
    seq: int
    last: int | None
    best_bid: int | None
    best_ask: int | None
    bid_quantity: int
    """Lots at ``best_bid`` (0 for an empty side), as the book stood at ``seq``."""
    ask_quantity: int
    """Lots at ``best_ask`` (0 for an empty side), as the book stood at ``seq``."""
    last_quantity: int
    """Lots of the trade at ``last`` (0 before the first trade)."""
    mid: int | None
    micro_price: int | None
    ewma: int | None
    vwap: int | None
    mark: int | None
    open_24h: int | None
    high_24h: int | None
    low_24h: int | None
    volume_24h: int
    quote_volume_24h: int
    """In ticks x lots: a notional (``Instrument.notional``) before it is in minor units."""
    trades_24h: int
    change_24h: int | None
    """Ticks, negative for a fall."""


class MarginProfile(TypedDict):
    """A user's margin standing in one collateral asset, in its minor units."""

    collateral: int
    equity: int
    maintenance: int
    requirement: int
    margin_held: int


class MarginReport(TypedDict):
    positions: dict[Symbol, tuple[int, int]]
    """Per symbol ``(quantity, cost)``: lots (negative: short) and quote minor units."""
    assets: dict[str, MarginProfile]


class TradeStatus(TypedDict):
    """A trade's settlement; the details are known while the engine keeps the trade
    (or from the read tables), else only its key, symbol and status."""

    trade_id: str
    symbol: str
    status: str
    reason: str | None
    price: NotRequired[int]
    quantity: NotRequired[int]
    buyer: NotRequired[str]
    seller: NotRequired[str]
    ts: NotRequired[int]


class Alert(TypedDict):
    """A surveillance finding: a self-trade prevented, or a trade between linked accounts."""

    kind: str
    symbol: Symbol
    ts: int
    user_id: NotRequired[UserId]
    taker_order_id: NotRequired[int]
    maker_order_id: NotRequired[int]
    mode: NotRequired[str]
    quantity: NotRequired[int]
    owner: NotRequired[str]
    buyer: NotRequired[str]
    seller: NotRequired[str]
    trade_id: NotRequired[int]


class OrdersSnapshot(TypedDict):
    """What a user has working, for the ``orders`` channel's snapshot: the open orders
    (oldest first) and open lists (by id) as of ``seqs`` (per symbol, the ``seq`` of the
    last event they include), and the running or paused algorithms (oldest first) as of
    ``algos_seq`` (the last ``$algos`` event they include)."""

    seqs: dict[Symbol, int]
    orders: list[OrderView]
    lists: list[ListView]
    algos_seq: int
    algos: list[AlgoView]
