"""Events of the ``accounts`` stream: users, deposits, withdrawals, margin, dead man's
switches, and symbols.

They share ``EventBase`` with the matcher's events and have their own ``seq``
(the stream's). Replaying them rebuilds the users, the instruments, and with
the symbols' events, every balance.
"""

from __future__ import annotations

from typing import ClassVar, Final, final

from trading_engine.core.events import EventBase
from trading_engine.core.ids import Symbol, TradeId, UserId
from trading_engine.core.instruments import Instrument

__all__ = [
    "ACCOUNTS_STREAM",
    "LEDGER_STREAM",
    "SYMBOLS_STREAM",
    "AccountEvent",
    "AccountsStreamEvent",
    "CancelAllAfterFired",
    "CancelAllAfterSet",
    "CredentialSet",
    "Deposited",
    "InstrumentListed",
    "Liquidated",
    "MarginSettled",
    "Posted",
    "SymbolHalted",
    "SymbolResumed",
    "SymbolsStreamEvent",
    "UserCreated",
    "Withdrawn",
]

ACCOUNTS_STREAM: Final = "$accounts"


@final
class UserCreated(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "user_id", "owner", "api_key_hash")
    __slots__ = FIELDS

    def __init__(
        self, seq: int, ts: int, user_id: UserId, owner: str | None, api_key_hash: str
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.user_id: Final = user_id
        self.owner: Final = owner
        """Accounts with the same owner are linked (for wash-trade surveillance)."""
        self.api_key_hash: Final = api_key_hash


@final
class CredentialSet(EventBase):
    """A user's signing credential for the Binance dialect, of one ``scheme``; a later one
    of the same scheme replaces it.

    ``hmac-sha256``: the API secret sealed with the server key (``api/secrets.py``),
    never the secret itself; ``ed25519``: a public key, base64 of its 32 raw bytes.
    """

    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "user_id", "scheme", "credential")
    __slots__ = FIELDS

    def __init__(self, seq: int, ts: int, user_id: UserId, scheme: str, credential: str) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.user_id: Final = user_id
        self.scheme: Final = scheme
        self.credential: Final = credential


@final
class Deposited(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "user_id", "asset", "amount")
    __slots__ = FIELDS

    def __init__(self, seq: int, ts: int, user_id: UserId, asset: str, amount: int) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.user_id: Final = user_id
        self.asset: Final = asset
        self.amount: Final = amount
        """Minor units; positive."""


@final
class Withdrawn(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "user_id", "asset", "amount")
    __slots__ = FIELDS

    def __init__(self, seq: int, ts: int, user_id: UserId, asset: str, amount: int) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.user_id: Final = user_id
        self.asset: Final = asset
        self.amount: Final = amount


@final
class InstrumentListed(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "instrument")
    __slots__ = FIELDS

    def __init__(self, seq: int, ts: int, instrument: Instrument) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.instrument: Final = instrument


@final
class SymbolHalted(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "symbol", "reason")
    __slots__ = FIELDS

    def __init__(self, seq: int, ts: int, symbol: Symbol, reason: str) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.reason: Final = reason


@final
class SymbolResumed(EventBase):
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "symbol")
    __slots__ = FIELDS

    def __init__(self, seq: int, ts: int, symbol: Symbol) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol


@final
class MarginSettled(EventBase):
    """The money of one side of a margin trade, in the symbol's quote asset (the collateral).

    The user's collateral changes by ``realized - fee + insurance``; ``insurance``
    (>= 0) is what the insurance fund paid so that the user ends at zero, not below.
    A trade has one per side (two, for a self-trade, with the same user).
    """

    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq", "ts", "symbol", "trade_id", "user_id", "realized", "fee", "insurance",
    )  # fmt: skip
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        symbol: Symbol,
        trade_id: TradeId,
        user_id: UserId,
        realized: int,
        fee: int,
        insurance: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.symbol: Final = symbol
        self.trade_id: Final = trade_id
        self.user_id: Final = user_id
        self.realized: Final = realized
        self.fee: Final = fee
        self.insurance: Final = insurance


@final
class Liquidated(EventBase):
    """A user's equity fell below maintenance: their ``symbol`` position is being closed.

    ``quantity`` lots (the position's size) go to the market, with client order
    id ``liq-<seq>``; ``equity`` and ``maintenance`` are in quote minor units.
    """

    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq", "ts", "user_id", "symbol", "quantity", "mark", "equity", "maintenance",
    )  # fmt: skip
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        user_id: UserId,
        symbol: Symbol,
        quantity: int,
        mark: int,
        equity: int,
        maintenance: int,
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.user_id: Final = user_id
        self.symbol: Final = symbol
        self.quantity: Final = quantity
        self.mark: Final = mark
        self.equity: Final = equity
        self.maintenance: Final = maintenance


@final
class CancelAllAfterSet(EventBase):
    """A user armed their dead man's switch (``core/dead_man.py``) or disarmed it.

    Armed: unless set again before ``cancel_at`` (ns since the epoch), every open
    order of the user is cancelled then; ``timeout_ms`` is what the user asked for.
    Disarmed: ``timeout_ms`` 0 and ``cancel_at`` None.
    """

    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "user_id", "timeout_ms", "cancel_at")
    __slots__ = FIELDS

    def __init__(
        self, seq: int, ts: int, user_id: UserId, timeout_ms: int, cancel_at: int | None
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.user_id: Final = user_id
        self.timeout_ms: Final = timeout_ms
        self.cancel_at: Final = cancel_at


@final
class CancelAllAfterFired(EventBase):
    """The user's switch for ``cancel_at`` fired and is disarmed: the cancels of every
    open order of the user were journaled before it, in the symbols' streams."""

    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "user_id", "cancel_at")
    __slots__ = FIELDS

    def __init__(self, seq: int, ts: int, user_id: UserId, cancel_at: int) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.user_id: Final = user_id
        self.cancel_at: Final = cancel_at


AccountsStreamEvent = (
    UserCreated | CredentialSet | Deposited | Withdrawn | MarginSettled | Liquidated
    | CancelAllAfterSet | CancelAllAfterFired
)  # fmt: skip
"""What the ``$accounts`` stream holds: the risk actor alone writes it."""
SymbolsStreamEvent = InstrumentListed | SymbolHalted | SymbolResumed
"""What the ``$symbols`` stream holds: the supervisor alone writes it."""
AccountEvent = AccountsStreamEvent | SymbolsStreamEvent

SYMBOLS_STREAM: Final = "$symbols"


LEDGER_STREAM: Final = "$ledger"


@final
class Posted(EventBase):
    """A ledger posting the settlement actor made, journaled on the ``$ledger`` stream.

    ``entries`` are ``(account, asset, amount)`` triples that sum to zero per
    asset (``core.ledger.Posting``); ``kind`` is ``trade``, ``deposit``,
    ``withdrawal`` or ``margin``, and a trade's ``posting_id`` is
    ``trade:<symbol>:<trade_id>``. Replaying these rebuilds the ledger as it
    was posted, and they fill the ``ledger_entries`` read table.
    """

    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "ts", "posting_id", "kind", "entries")
    __slots__ = FIELDS

    def __init__(
        self,
        seq: int,
        ts: int,
        posting_id: str,
        kind: str,
        entries: tuple[tuple[str, str, int], ...],
    ) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.posting_id: Final = posting_id
        self.kind: Final = kind
        self.entries: Final = entries
