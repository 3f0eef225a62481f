"""The pricing actor: reference prices per symbol from durable trades and book levels.

Per symbol it keeps a ``core.pricing.PriceState`` (last, best bid and ask,
mid, micro-price, EWMA, VWAP, 24-hour statistics, mark). The mark price is
the median of mid, last trade and EWMA (see ``core.pricing.mark_of``); it is
the reference for price bands and market-order protection (with no mark
yet, the best price of a one-sided book stands in). After each batch
it sends each changed reference to the risk actor and to the symbol's actor
at once, and each changed ticker to the market-data actor at most every
``TICKER_INTERVAL`` (0.1 s).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any, assert_never

import trio

from trading_engine.actors.answers import Ticker
from trading_engine.actors.mailbox import receive_batch
from trading_engine.actors.messages import (
    CommittedBatch,
    PricingMessage,
    Query,
    ReferencePrice,
    SetReference,
    SymbolBatch,
    SymbolStatus,
    TickerUpdate,
)
from trading_engine.core.events import BookLevel, Trade
from trading_engine.core.ids import Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.core.l2 import L2Book
from trading_engine.core.pricing import PriceState

__all__ = ["TICKER_INTERVAL", "PricingActor"]

TICKER_INTERVAL = 0.1
"""Seconds between ticker updates of a symbol to market data (references go at once)."""


class _Symbol:
    def __init__(self, instrument: Instrument, inbox: trio.MemorySendChannel[SymbolBatch]) -> None:
        self.instrument = instrument
        self.inbox = inbox
        self.prices = PriceState()
        self.book = L2Book()
        self.reference: int | None = None
        self.seq = 0

    def __getstate__(self) -> dict[str, object]:
        """A snapshot keeps no channel: the symbol's status gives ``inbox`` again."""
        return {name: value for name, value in vars(self).items() if name != "inbox"}


class PricingActor:
    NOT_IN_SNAPSHOT = frozenset({"_inbox", "_notify_risk", "_market_data", "_ticker_interval"})
    """Channels and settings; every other attribute is in engine snapshots."""

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[PricingMessage],
        notify_risk: Callable[[ReferencePrice], None],
        market_data: trio.MemorySendChannel[TickerUpdate],
        *,
        ticker_interval: float = TICKER_INTERVAL,
    ) -> None:
        self._inbox = inbox
        self._notify_risk = notify_risk
        self._market_data = market_data
        self._ticker_interval = ticker_interval
        self.symbols: dict[Symbol, _Symbol] = {}

    async def run(self) -> None:
        stale: set[Symbol] = set()
        """Symbols whose ticker changed since it was last sent to market data."""
        next_tickers = trio.current_time()
        while True:
            batch: list[PricingMessage] = []
            with trio.move_on_at(next_tickers if stale else math.inf):
                received = await receive_batch(self._inbox)
                if received is None:
                    return
                batch = received
            changed: set[Symbol] = set()
            for message in batch:
                self.handle(message, changed)
            for symbol in changed:
                self._publish_reference(self.symbols[symbol])
            stale |= changed
            # Tickers (24-hour statistics over minute buckets) cost far more than
            # the mark: send them at most every ticker_interval, references at once.
            if stale and trio.current_time() >= next_tickers:
                for symbol in stale:
                    self._publish_ticker(self.symbols[symbol])
                stale = set()
                next_tickers = trio.current_time() + self._ticker_interval

    def handle(self, message: PricingMessage, changed: set[Symbol]) -> None:
        match message:
            case CommittedBatch(commits=commits):
                for commit in commits:
                    state = self.symbols.get(Symbol(commit.stream))
                    if state is None:
                        continue
                    if self.apply(state, commit.events):
                        changed.add(state.instrument.symbol)
            case SymbolStatus(instrument=instrument, inbox=inbox):
                state = self.symbols.get(instrument.symbol)
                if state is None:
                    self.symbols[instrument.symbol] = _Symbol(instrument, inbox)
                else:
                    state.inbox = inbox
            case Query(read=read, reply=reply):
                reply.send(read(self))
            case _:
                assert_never(message)

    def apply(self, state: _Symbol, events: Any) -> bool:
        """Feed durable events; True if the symbol's prices changed."""
        touched = False
        book = state.book
        for event in events:
            if isinstance(event, Trade):
                state.prices.on_trade(event.price, event.quantity, event.ts)
                touched = True
            elif isinstance(event, BookLevel):
                book.set(event.side, event.price, event.quantity, event.seq)
                touched = True
            state.seq = event.seq
        if touched:
            bid = book.best_bid()
            ask = book.best_ask()
            state.prices.on_book(
                bid[0] if bid else None, bid[1] if bid else 0, ask[0] if ask else None,
                ask[1] if ask else 0,
            )  # fmt: skip
        return touched

    def publish_reference(self, symbol: Symbol) -> None:
        """Send the symbol's current reference price out (after recovery)."""
        state = self.symbols[symbol]
        state.reference = None
        self._publish(state)

    def _publish(self, state: _Symbol) -> None:
        self._publish_reference(state)
        self._publish_ticker(state)

    def _publish_reference(self, state: _Symbol) -> None:
        prices = state.prices
        # A one-sided book with no trades has no mark; its best price still
        # centres a band, as the matcher's own fallback does.
        reference = prices.reference() or prices.best_ask or prices.best_bid
        symbol = state.instrument.symbol
        if reference != state.reference:
            state.reference = reference
            self._notify_risk(ReferencePrice(symbol, reference))
            try:
                state.inbox.send_nowait(SymbolBatch((SetReference(reference),)))
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                state.reference = None  # try again after the next change

    def _publish_ticker(self, state: _Symbol) -> None:
        symbol = state.instrument.symbol
        # The market-data inbox is unbounded; it is closed only at shutdown.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            update = TickerUpdate(symbol, state.seq, self.query_ticker(symbol))
            self._market_data.send_nowait(update)

    def query_ticker(self, symbol: Symbol) -> Ticker | None:
        """Prices in ticks, quantities in lots; the front end renders them."""
        state = self.symbols.get(symbol)
        if state is None:
            return None
        prices = state.prices
        stats = prices.stats_24h()
        return {
            "symbol": symbol,
            "seq": state.seq,
            "last": prices.last,
            "best_bid": prices.best_bid,
            "best_ask": prices.best_ask,
            "bid_quantity": prices.bid_quantity,
            "ask_quantity": prices.ask_quantity,
            "last_quantity": prices.last_quantity,
            "mid": prices.mid,
            "micro_price": prices.micro_price,
            "ewma": prices.ewma,
            "vwap": prices.vwap(),
            "mark": prices.mark,
            "open_24h": stats.open if stats else None,
            "high_24h": stats.high if stats else None,
            "low_24h": stats.low if stats else None,
            "volume_24h": stats.volume if stats else 0,
            "quote_volume_24h": stats.quote_volume if stats else 0,
            "trades_24h": stats.trades if stats else 0,
            "change_24h": stats.change if stats else None,
        }
