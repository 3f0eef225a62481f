"""Every error the API returns, in one shape, with the one table of statuses.

``{"error": {"code": "...", "message": "..."}}``: 400 bad input, 401/403
authentication, 404 unknown, 409 state conflict, 422 rejected by risk or the
book, 429 rate limit, 503 halted, busy or storage down. A command that
changes state and gets no answer in time (``ReplyTimeout``: the journal is
retrying a write, say) is a 503 ``outcome_unknown`` that says how to find
out (``outcome_unknown`` below); a query is a 503 ``timeout``: it changed nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from quart import Quart, Response, jsonify
from werkzeug.exceptions import HTTPException

from trading_engine.actors.mailbox import ActorUnavailable, EngineBusy, ReplyTimeout
from trading_engine.api.http_server import MAX_BODY_BYTES
from trading_engine.errors import InvalidInput, TradingEngineError
from trading_engine.storage.journal import StorageUnavailable

__all__ = [
    "ApiError",
    "answer_errors",
    "error_body",
    "error_of",
    "error_response",
    "outcome_unknown",
    "status_of",
]

# A refusal's code (from the engine) to its HTTP status.
_REFUSALS: dict[str, int] = {
    "unknown_order": 404,
    "unknown_user": 404,
    "symbol_unknown": 404,
    "order_not_open": 409,
    "user_exists": 409,
    "symbol_exists": 409,
    "symbol_trading": 409,
    "invalid_amend": 400,
    "post_only_would_take": 422,
    "insufficient_funds": 422,
    "insufficient_margin": 422,
    "rejected_by_risk": 422,
    "not_owner": 404,
    "symbol_halted": 503,
    "unknown_algo": 404,
    "algo_not_running": 409,
    "unknown_order_list": 404,
    "order_list_not_open": 409,
    "list_client_id_reused": 409,
}


class ApiError(Exception):
    """Raised by a handler to answer with ``status`` and the error shape."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        """The request field at fault, when there is one (shown as ``field``)."""


@contextlib.contextmanager
def outcome_unknown(what: str, find_out: str) -> Iterator[None]:
    """Turn a ``ReplyTimeout`` of a command into a 503 ``outcome_unknown``.

    The command was sent: it may still take effect (once storage is back, for
    example), so the answer says so and how to learn the outcome (``find_out``).
    """
    try:
        yield
    except ReplyTimeout as exc:
        message = f"{exc}: the outcome is unknown, {what} may still take effect; {find_out}"
        raise ApiError(503, "outcome_unknown", message) from None


def status_of(code: str) -> int:
    return _REFUSALS.get(code, 400)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message", ...}}``."""
    return {"error": {"code": code, "message": message, **extra}}


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    response = jsonify(error_body(code, message, **extra))
    response.status_code = status
    return response


def from_exception(exc: Exception) -> Response:
    """The response for an exception a handler let through."""
    status, body = error_of(exc)
    response = jsonify(body)
    response.status_code = status
    return response


def error_of(exc: Exception) -> tuple[int, dict[str, Any]]:
    """The status and error body of an exception, as ``from_exception`` answers it."""
    if isinstance(exc, ApiError):
        if exc.field is not None:
            return exc.status, error_body(exc.code, exc.message, field=exc.field)
        return exc.status, error_body(exc.code, exc.message)
    if isinstance(exc, InvalidInput):
        return 400, error_body(exc.code, exc.message, field=exc.field)
    if isinstance(exc, StorageUnavailable | EngineBusy | ActorUnavailable | ReplyTimeout):
        return 503, error_body(exc.code, str(exc))
    if isinstance(exc, TradingEngineError):
        return 500, error_body(exc.code, str(exc))
    return 500, error_body("internal_error", "internal error")


def answer_errors(app: Quart) -> None:
    """Make ``app`` answer every error in the shape: HTTP errors (404, 405, 413...) and the
    exceptions a handler lets through (``from_exception``; an unexpected one is logged)."""

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            # The client may still be sending the body: this connection carries no more
            # requests (api/http_server.py drops the rest of the body, then closes it).
            message = f"the request body is over {MAX_BODY_BYTES} bytes"
            response = error_response(413, "body_too_large", message)
            response.headers["Connection"] = "close"
            return response
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.code or 500, "http_error")
        return error_response(exc.code or 500, code, exc.description or code)

    @app.errorhandler(Exception)
    async def engine_error(exc: Exception) -> Response:
        if not isinstance(exc, Exception):  # pragma: no cover
            raise exc
        response = from_exception(exc)
        if response.status_code >= 500 and response.status_code != 503:
            app.logger.exception("unexpected error", exc_info=exc)
        return response
