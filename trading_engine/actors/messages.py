"""Every message between actors: commands (imperative), replies, and batches of events.

All are frozen. A message that wants an answer carries a ``Reply``; the actor
that handles it answers exactly once, or the reply is closed and the asker
gets ``ActorUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs
import trio

from trading_engine.actors.answers import Ticker
from trading_engine.actors.mailbox import Reply
from trading_engine.core.algos import AlgoType, AlgoView
from trading_engine.core.enums import (
    CancelReason,
    ListStatus,
    ListType,
    OrderType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from trading_engine.core.events import Event, Journaled, Trade
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, UserId
from trading_engine.core.instruments import Instrument
from trading_engine.core.list_views import ListView
from trading_engine.core.orders import OrderSpec
from trading_engine.core.risk import Rejection
from trading_engine.core.views import OrderView

T = TypeVar("T")

# ---------------------------------------------------------------- requests and results


@attrs.frozen
class OrderRequest:
    """A new order as the front end hands it over: already in ticks and lots."""

    user_id: UserId
    symbol: Symbol
    side: Side
    type: OrderType
    quantity: int
    price: int = 0
    stop_price: int = 0
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stp: StpMode = StpMode.CANCEL_NEWEST
    client_order_id: ClientOrderId | None = None
    expire_time: int | None = None
    reduce_only: bool = False
    """Margin symbols only: may only reduce the user's position (``OrderSpec.reduce_only``)."""
    quote_quantity: int = 0
    """A market order on a spot symbol: the quote amount instead of ``quantity`` (then 0)."""
    trailing_delta: int = 0
    trailing_bps: int = 0
    activation_price: int = 0
    limit_offset: int = 0
    """A trailing stop's terms (``OrderSpec``)."""
    display_quantity: int = 0
    """An iceberg's slice, in lots (``OrderSpec.display_quantity``)."""
    algo_id: int | None = None
    """The algorithm whose child this is (set by its actor alone): only then may the
    ``client_order_id`` have the reserved prefix ``algo-`` (``core.algos``)."""


@attrs.frozen
class OrderResult:
    """An order after its command: its state and the trades the command made for it.

    ``duplicate`` is true when a resend with a known ``client_order_id``
    returned the original order instead of placing a new one.
    """

    order: OrderView
    trades: tuple[Trade, ...] = ()
    duplicate: bool = False


@attrs.frozen
class Rejected:
    """Risk refused the order before it reached the book, or the book refused it (then
    ``order`` is the rejected order, as journaled); ``rejections`` lists every failed
    check, each with the figures that show why."""

    rejections: tuple[Rejection, ...]
    order: OrderView | None = None

    @property
    def reasons(self) -> tuple[RejectReason, ...]:
        return tuple(rejection.reason for rejection in self.rejections)


@attrs.frozen
class ClientIdReused:
    """A resend of a known ``client_order_id`` that differs from its original: nothing placed.

    ``differs`` names each field the client sent that differs, in the order of
    ``OrderRequest``'s fields, with the original's value and the resend's, in
    engine units (ticks, lots, nanoseconds; 0 or None for a price or time not
    given). ``symbol`` is the original's.
    """

    order_id: OrderId
    symbol: Symbol
    differs: tuple[tuple[str, object, object], ...]


@attrs.frozen
class Refused:
    """A cancel, amend or admin command that did nothing; ``code`` says why."""

    code: str
    message: str


@attrs.frozen
class RiskCheck:
    """A dry run's answer: would the order pass, every failing reason, and the hold it needs."""

    allowed: bool
    rejections: tuple[Rejection, ...]
    hold_asset: str | None
    hold_amount: int

    @property
    def reasons(self) -> tuple[RejectReason, ...]:
        return tuple(rejection.reason for rejection in self.rejections)


SubmitOutcome = OrderResult | Rejected | ClientIdReused

# ---------------------------------------------------------------- symbol actor commands


@attrs.frozen
class MatchSubmit:
    spec: OrderSpec
    reply: Reply[SubmitOutcome] | None


@attrs.frozen
class MatchCancel:
    order_id: OrderId
    reason: str
    reply: Reply[OrderResult | Refused] | None


@attrs.frozen
class MatchAmend:
    order_id: OrderId
    price: int | None
    quantity: int | None
    reply: Reply[OrderResult | Refused] | None


@attrs.frozen
class MatchCancelAll:
    user_id: UserId
    reply: Reply[list[OrderView]] | None
    reason: CancelReason = CancelReason.MASS_CANCEL


@attrs.frozen
class Expire:
    """Expire GTD orders due by ``now``."""

    now: int


@attrs.frozen
class SetReference:
    price: int | None


@attrs.frozen
class BookSnapshot:
    """Answered with the L2 book: ``(seq, bids, asks)``."""

    depth: int | None
    reply: Reply[tuple[int, list[tuple[int, int]], list[tuple[int, int]]]]


@attrs.frozen
class ListRequest:
    """A new order list (``core.lists``) as the front end hands it over: its members, each
    on the list's one symbol, in the client's order."""

    user_id: UserId
    kind: ListType
    orders: tuple[OrderRequest, ...]


@attrs.frozen
class ListResult:
    """A list as a command left it, with its members' trades."""

    order_list: ListView
    trades: tuple[Trade, ...] = ()


@attrs.frozen
class ListRefused:
    """A list the matcher refused, changing nothing: its member at ``position`` would be
    rejected (``reason``; ``post_only_would_take`` for an OCO leg that would trade at once)."""

    position: int
    reason: RejectReason


ListOutcome = ListResult | Rejected | ListRefused


@attrs.frozen
class ListCancelled:
    """What a list's cancel did: the members it changed, as they are now, and the list's
    new status (None if it had ended already)."""

    orders: tuple[OrderView, ...]
    status: ListStatus | None


@attrs.frozen
class MatchSubmitList:
    list_id: int
    kind: ListType
    specs: tuple[OrderSpec, ...]
    reply: Reply[ListOutcome] | None


@attrs.frozen
class MatchCancelList:
    """Cancel a list: an open one whole, an ended one's live members (``order_ids``)."""

    list_id: int
    order_ids: tuple[OrderId, ...]
    user_id: UserId | None
    reply: Reply[ListCancelled | Refused] | None


SymbolCommand = (
    MatchSubmit | MatchCancel | MatchAmend | MatchCancelAll | Expire | SetReference
    | BookSnapshot | MatchSubmitList | MatchCancelList
)  # fmt: skip


@attrs.frozen
class SymbolBatch:
    """Commands for one symbol actor, handled in order in one wake-up."""

    commands: tuple[SymbolCommand, ...]


# ---------------------------------------------------------------- risk actor commands


@attrs.frozen
class SubmitOrder:
    request: OrderRequest
    reply: Reply[SubmitOutcome]


@attrs.frozen
class SubmitList:
    request: ListRequest
    reply: Reply[ListOutcome]


@attrs.frozen
class CancelList:
    list_id: int
    user_id: UserId | None
    """Only that user's list; None for an admin's cancel."""
    reply: Reply[ListCancelled | Refused]


@attrs.frozen
class CheckOrder:
    """A dry run of the pre-trade checks; changes nothing."""

    request: OrderRequest
    reply: Reply[RiskCheck]


@attrs.frozen
class CancelOrder:
    order_id: OrderId
    user_id: UserId | None
    """The caller's user, or None for an admin (who may cancel anyone's order)."""
    reply: Reply[OrderResult | Refused]


@attrs.frozen
class AmendOrder:
    order_id: OrderId
    user_id: UserId | None
    price: int | None
    quantity: int | None
    reply: Reply[OrderResult | Refused]


@attrs.frozen
class CancelAllOrders:
    user_id: UserId
    symbol: Symbol
    reply: Reply[list[OrderView]]


@attrs.frozen
class CancelAllAfter:
    """Arm the user's dead man's switch: unless armed again within ``timeout_ms``, every
    open order of the user is cancelled; 0 disarms it (``core/dead_man.py``)."""

    user_id: UserId
    timeout_ms: int
    reply: Reply[Switch | Refused]


@attrs.frozen
class Switch:
    """A user's dead man's switch as set: ``now`` when it was set (ns), the ``timeout_ms``
    asked for, and the deadline ``cancel_at`` (ns), None when disarmed."""

    now: int
    timeout_ms: int
    cancel_at: int | None


@attrs.frozen
class FireSwitches:
    """From the risk actor's own clock: cancel the orders of every user whose switch is
    due; answered once they are sent on, so that the clock sleeps until the next."""

    reply: Reply[None]


@attrs.frozen
class SwitchFired:
    """The cancels of a due switch are done (``cancelled``) or failed: journal that it
    fired, or make it due again shortly."""

    user_id: UserId
    cancel_at: int
    cancelled: bool


@attrs.frozen
class CreateUser:
    """A new user, with its credentials (``SetCredential``'s ``(scheme, credential)``
    pairs) journaled with it, in the same write."""

    user_id: UserId
    owner: str | None
    api_key_hash: str
    reply: Reply[Refused | None]
    credentials: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class SetCredential:
    """Set a user's signing credential of ``scheme`` (``CredentialSet``), replacing any."""

    user_id: UserId
    scheme: str
    credential: str
    reply: Reply[Refused | None]


@attrs.frozen
class MoveFunds:
    """A deposit (``amount`` > 0 credited) or a withdrawal (``withdraw``: debited)."""

    user_id: UserId
    asset: str
    amount: int
    withdraw: bool
    reply: Reply[tuple[int, int] | Refused]


@attrs.frozen
class Query(Generic[T]):
    """A read of an actor's state: the actor answers ``read(itself)``, changing nothing.

    ``Engine`` builds each one from a ``query_*`` method of the actor and its
    arguments, so that mypy checks both and the answer's type (``T``).
    """

    read: Callable[[Any], T]
    reply: Reply[T]


# ---------------------------------------------------------------- algorithm supervisor


@attrs.frozen
class AlgoRequest:
    """A new algorithm as the front end hands it over: lots, ticks, nanoseconds.

    ``limit_price`` 0: market children (bounded by the price band); ``participation``
    is a VWAP's share of the traded volume as a fraction (ignored by a TWAP).
    """

    user_id: UserId
    symbol: Symbol
    kind: AlgoType
    side: Side
    quantity: int
    slices: int
    duration_ns: int
    limit_price: int = 0
    participation: tuple[int, int] = (1, 10)


@attrs.frozen
class StartAlgo:
    request: AlgoRequest
    reply: Reply[AlgoView | Refused]


@attrs.frozen
class StopAlgo:
    """Stop an algorithm and cancel its working child; answered once it is cancelled."""

    algo_id: int
    user_id: UserId | None
    """The caller's user, or None for an admin."""
    reply: Reply[AlgoView | Refused]


# ---------------------------------------------------------------- journal


@attrs.frozen
class Commit:
    """Events to make durable, and what to release once they are.

    ``replies`` are answered with their values only after the commit, so no
    client hears of an order the journal does not hold.
    """

    stream: str
    events: Sequence[Journaled]
    replies: tuple[tuple[Reply[Any], object], ...] = ()


@attrs.frozen
class Committed:
    """Events of one stream that are now durable, fanned out by the journal actor."""

    stream: str
    events: Sequence[Journaled]


@attrs.frozen
class CommittedBatch:
    """Everything one journal transaction made durable, in commit order."""

    commits: tuple[Committed, ...]


@attrs.frozen
class ReleaseHolds:
    """Commands that never reached the book or the journal: undo their holds.

    ``order_ids``: submits whose symbol actor crashed; their holds are released.
    ``amended``: amends refused or lost; the hold raised for each may come down
    to what the order's committed state needs.
    """

    order_ids: tuple[OrderId, ...]
    amended: tuple[OrderId, ...] = ()


@attrs.frozen
class SymbolStatus:
    """The supervisor's word on a symbol: listed and trading, or halted (with the reason)."""

    instrument: Instrument
    inbox: trio.MemorySendChannel[SymbolBatch]
    halted: bool
    reason: str = ""


@attrs.frozen
class ReferencePrice:
    symbol: Symbol
    price: int | None


@attrs.frozen
class TickerUpdate:
    """The pricing actor's latest ticker for a symbol, for market-data subscribers."""

    symbol: Symbol
    seq: int
    ticker: Ticker | None


@attrs.frozen
class SettleTrades:
    """Settle these trades now; answered with the ids settled, already settled, and unknown.

    With ``party``, only trades that user bought or sold in are settled; the
    others are answered as unknown, as if they did not exist.
    """

    trade_ids: tuple[str, ...]
    party: UserId | None
    reply: Reply[dict[str, list[str]]]


@attrs.frozen
class StorageStatus:
    """The journal actor's word: can events be written right now?"""

    available: bool
    detail: str = ""


# ---------------------------------------------------------------- inboxes
# What each actor's inbox carries; its ``handle`` matches every member and ends
# in ``assert_never``, so mypy names any member left unhandled and any sender of
# a message the actor does not take. (Market data's: ``marketdata.MarketDataMessage``.)

RiskMessage = (
    SubmitOrder | CheckOrder | CancelOrder | AmendOrder | CancelAllOrders | CreateUser | MoveFunds
    | SetCredential | Query[Any] | CommittedBatch | SymbolStatus | ReferencePrice | ReleaseHolds
    | StorageStatus | CancelAllAfter | FireSwitches | SwitchFired | SubmitList | CancelList
)  # fmt: skip
AlgoMessage = StartAlgo | StopAlgo | Query[Any]
PricingMessage = CommittedBatch | SymbolStatus | Query[Any]
SettlementMessage = CommittedBatch | SymbolStatus | SettleTrades | Query[Any]
SupervisorNotice = SymbolStatus | ReleaseHolds
"""What the supervisor and its symbol actors tell the others: a status goes to every
actor that tracks symbols, holds to release to risk."""


__all__ = [
    "AlgoMessage",
    "AlgoRequest",
    "AmendOrder",
    "BookSnapshot",
    "CancelAllAfter",
    "CancelAllOrders",
    "CancelOrder",
    "CheckOrder",
    "ClientIdReused",
    "Commit",
    "Committed",
    "CommittedBatch",
    "CreateUser",
    "Event",
    "Expire",
    "FireSwitches",
    "MatchAmend",
    "MatchCancel",
    "MatchCancelAll",
    "MatchSubmit",
    "MoveFunds",
    "OrderRequest",
    "OrderResult",
    "PricingMessage",
    "Query",
    "ReferencePrice",
    "Refused",
    "Rejected",
    "ReleaseHolds",
    "RiskCheck",
    "RiskMessage",
    "SetCredential",
    "SetReference",
    "SettleTrades",
    "SettlementMessage",
    "StartAlgo",
    "StopAlgo",
    "StorageStatus",
    "SubmitOrder",
    "SubmitOutcome",
    "SupervisorNotice",
    "Switch",
    "SwitchFired",
    "SymbolBatch",
    "SymbolCommand",
    "SymbolStatus",
    "TickerUpdate",
]
