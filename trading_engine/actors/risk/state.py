"""What the risk actor owns: its settings, its symbols, and all of its state.

``RiskState`` holds every attribute of the actor. The actor's code is split
by concern into mixins over it (the package's docstring draws them), rather
than into helper objects, for two reasons. The parts call one another at
every turn (an ended order frees its hold or margin, a mark price queues a
liquidation order, a fill syncs an order's margin), so helpers would each
need the others or a reference back to the actor. And a snapshot keeps an
actor's state as its attributes (``vars(actor)`` less ``NOT_IN_SNAPSHOT``,
see ``actors/snapshot.py``), which with mixins stays exactly what it was:
one flat set of attributes, all declared below, with no reference cycle for
pickle or the snapshot test to follow. Each mixin subclasses the parts it
calls, so the bases read as the dependencies and mypy checks every call.

A new attribute goes in ``RiskState.__init__``: it is then in snapshots
unless it is named in ``NOT_IN_SNAPSHOT``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from decimal import Decimal
from typing import Any

import attrs
import trio

from trading_engine.actors.answers import Alert
from trading_engine.actors.messages import Commit, RiskMessage, SymbolBatch, SymbolCommand
from trading_engine.core.account_events import AccountsStreamEvent
from trading_engine.core.dead_man import DeadManSwitches
from trading_engine.core.enums import Side
from trading_engine.core.events import Trade
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.list_views import ListRecord
from trading_engine.core.margin import MarginBook, MarginRates, Rate
from trading_engine.core.orders import OrderSpec
from trading_engine.core.risk import Accounts, RiskLimits
from trading_engine.core.views import OrderRecord

__all__ = [
    "DEFAULT_MARGIN_RATES",
    "LIQUIDATION_PREFIX",
    "RiskConfig",
    "RiskState",
    "SymbolState",
    "log",
    "trade_sides",
]

log = logging.getLogger("trading_engine.actors.risk")
"""The package's logger, whichever of its modules logs."""

_KEEP_USER_TRADES = 1_000
_KEEP_ALERTS = 10_000


@attrs.frozen
class RiskConfig:
    """Limits in base-asset units (converted to each symbol's lots), from the environment."""

    enabled: bool = True
    max_order_size: Decimal | None = None
    """In the base asset (e.g. 10 BTC); None for no limit."""
    max_position_size: Decimal | None = None
    max_open_orders: int = 1000
    keep_finished: int = 100_000
    """Finished orders kept for their views and their client order ids (0: all)."""

    def limits_for(self, instrument: Instrument) -> RiskLimits:
        def lots(size: Decimal | None) -> int | None:
            return None if size is None else int(size // instrument.lot_size)

        return RiskLimits(
            enabled=self.enabled,
            max_order_lots=lots(self.max_order_size),
            max_position_lots=lots(self.max_position_size),
            max_open_orders=self.max_open_orders,
        )


@attrs.define
class SymbolState:
    """What risk knows of one symbol: its instrument, inbox, limits, status and reference."""

    instrument: Instrument
    inbox: trio.MemorySendChannel[SymbolBatch]
    limits: RiskLimits
    halted: str | None = None
    reference: int | None = None
    margin: bool = attrs.field(init=False)
    """Whether the symbol trades on margin: read on every order, so kept, not derived."""

    def __attrs_post_init__(self) -> None:
        self.margin = self.instrument.mode is Mode.MARGIN


_Party = tuple[UserId, OrderId, int]
"""One side of a trade: its user, order and fee."""


def trade_sides(trade: Trade) -> tuple[_Party, _Party]:
    """The buyer's and the seller's (user, order, fee) in ``trade``: the taker is the
    buyer if the aggressor bought, else the seller."""
    taker = (trade.taker_user_id, trade.taker_order_id, trade.taker_fee)
    maker = (trade.maker_user_id, trade.maker_order_id, trade.maker_fee)
    return (taker, maker) if trade.aggressor is Side.BUY else (maker, taker)


DEFAULT_MARGIN_RATES = MarginRates(Rate(1, 10), Rate(1, 20))
"""10% initial, 5% maintenance: the defaults of MARGIN_REQUIREMENT and LIQUIDATION_THRESHOLD."""
LIQUIDATION_PREFIX = "liq-"
"""Client order ids of liquidation orders (reserved in margin symbols; they need no margin)."""


class RiskState:
    """The risk actor's attributes, and two helpers of every part: ``_queue`` and
    ``_remember_trade``."""

    NOT_IN_SNAPSHOT = frozenset(
        {
            "_inbox",
            "_journal",
            "_config",
            "symbols",  # channels and limits: rebuilt from each symbol's status
            "_waiting",
            "_unconfirmed_ids",
            "_unconfirmed_specs",
            "_outgoing",
            "_amending",
            "_account_events",
            "_account_replies",
            "storage_available",
            "live",
            "_itself",
            "_tasks",
            "_clock",
            "_clock_wake",
        }
    )
    """Channels, settings, and what only the running actor has; every other
    attribute is in engine snapshots (``actors/snapshot.py``)."""

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[RiskMessage],
        journal: trio.MemorySendChannel[Commit],
        config: RiskConfig,
        margin_rates: MarginRates = DEFAULT_MARGIN_RATES,
        *,
        itself: trio.MemorySendChannel[RiskMessage],
    ) -> None:
        self._inbox = inbox
        self._journal = journal
        self._config = config
        self._itself = itself
        """The sending side of ``inbox``: how the actor's own tasks (its clock) reach it."""
        self.accounts = Accounts()
        self.users: dict[UserId, str | None] = {}
        self.keys: dict[str, UserId] = {}
        self.credentials: dict[UserId, dict[str, str]] = {}
        """Per user, the Binance dialect's signing credential of each scheme
        (``CredentialSet``): a sealed secret or a public key, never a plain secret."""
        self.symbols: dict[Symbol, SymbolState] = {}
        self.orders: dict[OrderId, OrderRecord] = {}
        self._final: OrderedDict[OrderId, None] = OrderedDict()
        self.open_by_user: dict[UserId, dict[OrderId, OrderRecord]] = {}
        self.client_ids: dict[tuple[UserId, ClientOrderId], OrderId] = {}
        """Client order ids of the orders in ``orders`` and of those on their way to
        their book: a resend within that window gets the original order."""
        self.finished_earlier: dict[tuple[str, bool], int] = {}
        """The finished orders dropped from ``orders``, counted per (final status,
        reduce-only), for the audit."""
        self._waiting: dict[OrderId, list[Any]] = {}
        self._unconfirmed_ids: dict[OrderId, tuple[UserId, ClientOrderId]] = {}
        """The client order ids of orders sent to their book and not yet journaled."""
        self._unconfirmed_specs: dict[OrderId, tuple[Symbol, OrderSpec]] = {}
        """The symbol and spec of each of those a client sent: what a resend of its client
        order id is compared with meanwhile."""
        self.user_trades: dict[UserId, deque[Trade]] = {}
        self.alerts: deque[Alert] = deque(maxlen=_KEEP_ALERTS)
        self.stp_counts: dict[UserId, int] = {}
        self.next_order_id = 1
        self.accounts_seq = 0
        self.applied_seq: dict[Symbol, int] = {}
        """Per symbol, the ``seq`` of the last durable event applied: how far the order
        views go (``query_open_orders``)."""
        self.storage_available = True
        self._outgoing: dict[Symbol, list[SymbolCommand]] = {}
        self._amending: dict[OrderId, int] = {}
        """Amends forwarded and not yet written, refused or lost, per order."""
        self._account_events: list[AccountsStreamEvent] = []
        self._account_replies: list[tuple[Any, object]] = []
        self.margin = MarginBook(margin_rates)
        self.liquidating: dict[tuple[UserId, Symbol], ClientOrderId] = {}
        """Per user and margin symbol under liquidation: the liquidation order's client id."""
        self._liquidation_orders: dict[OrderId, tuple[UserId, Symbol]] = {}
        self._unsettled: dict[tuple[Symbol, int], list[tuple[UserId, int, int]]] = {}
        """Replay: margin trades' sides (user, realized, fee) not yet met by their MarginSettled."""
        self.live = False
        """False while the journal is replayed: margin trades then wait for their MarginSettled."""
        self.switches = DeadManSwitches()
        """Each user's dead man's switch, as journaled (``switches.py``)."""
        self._tasks: trio.Nursery | None = None
        """The running actor's nursery: its clock, and the tasks that await a switch's cancels."""
        self._clock: trio.CancelScope | None = None
        """The scope the clock sleeps in; cancelled to wake it for an earlier deadline."""
        self._clock_wake: int | None = None
        """The deadline (ns) the clock sleeps until, None for none."""
        self.lists: dict[int, ListRecord] = {}
        """Order lists (``lists.py``), open and the newest ``keep_finished`` ended ones."""
        self._final_lists: OrderedDict[int, None] = OrderedDict()
        self.next_list_id = 1
        self.hold_groups: dict[OrderId, OrderId] = {}
        """Each leg of an OCO pair and the order id its pair's one hold is kept under."""
        self.group_members: dict[OrderId, list[OrderId]] = {}
        """Per shared hold, the legs it still covers."""
        self.group_specs: dict[OrderId, tuple[Symbol, OrderSpec]] = {}
        """Each leg of a shared hold, as submitted: what it needs before it is placed."""

    def _queue(self, symbol: Symbol, command: SymbolCommand) -> None:
        self._outgoing.setdefault(symbol, []).append(command)

    def _remember_trade(self, trade: Trade, buyer: UserId, seller: UserId) -> None:
        """Add ``trade`` to each side's own tape, buyer first (an order that replay and
        snapshots keep alike in every process, unlike a set's)."""
        for user in dict.fromkeys((buyer, seller)):
            tape = self.user_trades.get(user)
            if tape is None:
                tape = self.user_trades[user] = deque(maxlen=_KEEP_USER_TRADES)
            tape.append(trade)
