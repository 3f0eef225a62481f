"""Events of the ``accounts`` stream: users, deposits, withdrawals and symbols.

They share ``EventBase`` with the matcher's events and have their own ``seq``
(the stream's). Replaying them rebuilds the users, the instruments, and with
the symbols' events, every balance.
"""

from __future__ import annotations

from typing import ClassVar, Final, final

from trading_engine.core.events import EventBase
from trading_engine.core.ids import Symbol, UserId
from trading_engine.core.instruments import Instrument

__all__ = [
    "ACCOUNTS_STREAM",
    "SYMBOLS_STREAM",
    "AccountEvent",
    "Deposited",
    "InstrumentListed",
    "SymbolHalted",
    "SymbolResumed",
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


AccountEvent = UserCreated | Deposited | Withdrawn | InstrumentListed | SymbolHalted | SymbolResumed

SYMBOLS_STREAM: Final = "$symbols"
