"""The PostgreSQL adapter's errors, and the driver's errors translated into them (see the
package's docstring for the tree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import asyncpg
import asyncpg.exceptions
import attrs

from trading_engine.errors import TradingEngineError
from trading_engine.storage.bridge import BridgeClosed
from trading_engine.storage.journal import StorageUnavailable

if TYPE_CHECKING:
    pass

__all__ = ["Backlog", "JournalConflict", "JournalError", "ReadTablesBehind"]


class JournalError(TradingEngineError):
    """Raised when PostgreSQL refuses a journal call for a reason other than reachability."""

    code = "journal_error"


class ReadTablesBehind(JournalError):
    """Raised when the read tables lack commits of the journal and projecting them fails.

    The journal is unharmed: every commit is there, and the projection is retried.
    """

    code = "read_tables_behind"


@attrs.frozen
class Backlog:
    """How far the read tables are behind the journal."""

    projected_id: int
    """Every journal id up to this one is in the read tables."""
    last_id: int
    """The journal's last id."""
    oldest_ts: int | None
    """When the oldest event not in the read tables happened (ns since the epoch), if any."""


class JournalConflict(JournalError):
    """Raised when a batch does not follow on from its stream's last event.

    A gap or an overlap in ``seq``, or another writer that took the same
    seqs first. Nothing of the batch was written.
    """

    code = "journal_conflict"


# ---------------------------------------------------------------- error translation

_UNAVAILABLE: Final = (
    OSError,  # refused, reset, unreachable, and the socket errors under them
    TimeoutError,  # connect_timeout or command_timeout ran out
    BridgeClosed,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and a connection that is gone
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutting down, starting up, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    # The client's side of a connection the server dropped mid-command ("cannot switch
    # to state 12; another operation (2) is in progress"): the pool's reset on release
    # fails and terminates it, and the retry takes a fresh one.
    asyncpg.InternalClientError,
)


_DRIVER_ERRORS: Final = (*_UNAVAILABLE, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What ``_translate`` turns into ours; anything else (ours included) passes through as it is."""


def _translate(exc: Exception) -> TradingEngineError:
    """The package's own exception for a driver error (one of ``_DRIVER_ERRORS``)."""
    if isinstance(exc, _UNAVAILABLE):
        return StorageUnavailable(f"PostgreSQL is unavailable: {_describe(exc)}")
    if isinstance(exc, asyncpg.UniqueViolationError):
        return JournalConflict(f"another writer took these seqs first: {exc}")
    if isinstance(exc, asyncpg.InterfaceError) and _is_closed(exc):
        return StorageUnavailable(f"PostgreSQL is unavailable: {exc}")
    return JournalError(f"PostgreSQL refused the call: {_describe(exc)}")


def _is_closed(exc: asyncpg.InterfaceError) -> bool:
    # asyncpg has no subclass for these: "pool is closed", "pool is closing",
    # "connection is closed", "cannot perform operation: connection is closed".
    message = str(exc)
    return "closed" in message or "closing" in message


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
