"""The engine's exceptions: one tree, each class with a stable ``code``.

Expected outcomes (an order rejected by risk, nothing to cancel) are values,
not exceptions. These are for input that cannot be understood and for states
that should not happen::

    TradingEngineError                 base; never raised itself
    ├── InvalidInput                   a request field breaks a rule (HTTP 400)
    │   └── OffGridError               a price or quantity is not a multiple of its grid
    └── InvariantViolation             the engine's own state broke a rule: a bug (HTTP 500)
        └── InvalidTransition          an order status change the transition table forbids
"""

from __future__ import annotations

__all__ = [
    "InvalidInput",
    "InvalidTransition",
    "InvariantViolation",
    "OffGridError",
    "TradingEngineError",
]


class TradingEngineError(Exception):
    """Base of every exception this package raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(TradingEngineError):
    """Raised when a field of a request breaks a rule; ``field`` names it."""

    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class OffGridError(InvalidInput):
    """Raised when a price or quantity is not a whole multiple of its tick or lot size."""

    code = "off_grid"


class InvariantViolation(TradingEngineError):
    """Raised when the engine finds its own state inconsistent; always a bug."""

    code = "invariant_violation"


class InvalidTransition(InvariantViolation):
    """Raised when code asks for an order status change the transition table forbids."""

    code = "invalid_transition"
