"""Hypercorn as the API's HTTP/1.1 server: its settings, and the answers it gives itself.

``server_config(bind)`` makes Hypercorn's settings, for its trio worker.
``trading-engine serve`` and the tests' servers both use it, so that a test
server refuses what production refuses.

Limits: a request's line and headers together may take ``MAX_HEADER_BYTES``
(Hypercorn's ``h11_max_incomplete_size``), more is a 431
``header_too_large``; its body may take ``MAX_BODY_BYTES`` (the app's
``MAX_CONTENT_LENGTH``), more is a 413 ``body_too_large`` from the app.

Hypercorn's own answers. h11 parses each request before the app sees it,
and Hypercorn answers what h11 refuses by itself
(``H11Protocol._send_error_response``): 400 for a request line or header it
cannot parse (a NUL in a header value, say), 431 for a header block over the
limit, 501 for a transfer coding other than chunked; upstream, with an empty
body. Hypercorn has no hook for these answers and builds its HTTP/1.1
protocol by name (``hypercorn.protocol.ProtocolWrapper`` calls that module's
``H11Protocol``), so ``server_config`` points that one name at
``_h11_protocol``: a connection of a server configured by ``server_config``
gets ``ApiH11Protocol``, any other server Hypercorn's own class, unchanged.
``ApiH11Protocol`` gives those answers in the API's error shape, with
``Connection: close``. Over cleartext HTTP/2 (h2c) there is no answer to
shape: on a frame or header it cannot parse, the ``h2`` library closes the
connection's state, and Hypercorn sends GOAWAY and closes.

Closing. Left to Hypercorn, a connection that may carry no further request
(the client asked, with ``Connection: close`` or HTTP/1.0, or the answer
said so) is closed from the app's task, which Quart-Trio cancels as soon as
the answer is out: the close is lost, and the connection stays open without
reading another request. A client reading to the end of the connection then
waits for its own timeout, as does the next request of a client answered
before its body has all arrived (a 413 on a declared length over the limit,
a 401 before the body is read), which cannot go on the same connection.
``ApiH11Protocol`` closes under a shield. It marks an answer given before
the body ``Connection: close``, then reads and drops the rest of the body
(so that the client reads the answer, not a reset) and closes when the body
ends, or after ``keep_alive_timeout`` seconds (5) if it does not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from typing import Any

import h11
import hypercorn.config
import hypercorn.protocol
import trio
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import Response
from hypercorn.protocol.h11 import H11Protocol

__all__ = ["MAX_BODY_BYTES", "MAX_HEADER_BYTES", "ApiH11Protocol", "ServerConfig", "server_config"]

log = logging.getLogger("trading_engine.http")

MAX_HEADER_BYTES = 16 * 1024
"""The request line and headers together, at most (Hypercorn's default)."""
MAX_BODY_BYTES = 1024 * 1024
"""A request body, at most: the largest the API takes (1,000 trade ids to settle) is
under 100 KB, and a chunked body is held in memory until it ends or passes this."""


_REFUSALS = {
    400: ("bad_request", "the request line or a header is malformed"),
    431: ("header_too_large", "the request line and headers take more than {limit} bytes"),
    501: ("not_implemented", "the Transfer-Encoding is not supported: only chunked is"),
}
"""Hypercorn's own refusals (the status h11 hints), as the API's code and message."""


class ServerConfig(hypercorn.config.Config):
    """Hypercorn's settings for the API: its HTTP/1.1 connections speak ``ApiH11Protocol``."""


def server_config(bind: str) -> ServerConfig:
    """Hypercorn's settings for the API listening on ``bind`` (``host:port``)."""
    # The one name Hypercorn builds its HTTP/1.1 protocol by (see the module's docstring).
    hypercorn.protocol.H11Protocol = _h11_protocol  # type: ignore[attr-defined,assignment]
    config = ServerConfig()
    config.bind = [bind]
    config.accesslog = None
    # A logger, not Hypercorn's default "-": its lines then go through the root
    # logger's JSON handler like every other, not also to stderr in its own format.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 10.0
    config.h11_max_incomplete_size = MAX_HEADER_BYTES
    # Thousands of WebSocket clients connect at once when a gateway goes and its clients
    # come to the others: Hypercorn's backlog of 100 drops their SYNs, and each dropped
    # one waits a second or more to be tried again.
    config.backlog = 2048
    return config


def _h11_protocol(app: Any, config: hypercorn.config.Config, *args: Any) -> H11Protocol:
    protocol = ApiH11Protocol if isinstance(config, ServerConfig) else H11Protocol
    return protocol(app, config, *args)


class ApiH11Protocol(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol, answering in the error shape and closing after an
    answer that came before the body (see the module's docstring)."""

    _dropping_body = False
    """Answered before the body ended: read and drop the rest, then close."""

    async def stream_send(self, event: StreamEvent) -> None:
        # A request without a body is already at its end (DONE) here: Hypercorn reads
        # the end of an empty body before the app it started for it gets to run.
        if (
            isinstance(event, Response)
            and event.status_code >= 200
            and self.connection.their_state is h11.SEND_BODY
            and not any(
                name.lower() == b"connection" and b"close" in value.lower()
                for name, value in event.headers
            )
        ):
            event = dataclasses.replace(event, headers=[*event.headers, (b"connection", b"close")])
        await super().stream_send(event)

    async def _maybe_recycle(self) -> None:
        if self.connection.our_state is not h11.MUST_CLOSE:
            await super()._maybe_recycle()
            return
        await self._close_stream()
        # Shielded: this runs in the app's task, which Quart-Trio cancels once the
        # answer is out (see the module's docstring).
        with trio.CancelScope(shield=True):
            if self.connection.their_state is h11.SEND_BODY:
                self._dropping_body = True
                await self.send(Updated(idle=True))  # closes it after keep_alive_timeout
            else:
                await self.can_read.set()
                await self.send(Closed())

    async def handle(self, event: Event) -> None:
        if not (self._dropping_body and isinstance(event, RawData)):
            await super().handle(event)
            return
        self.connection.receive_data(event.data)
        with contextlib.suppress(h11.RemoteProtocolError):  # a broken body ends it too
            while self.connection.their_state is h11.SEND_BODY:
                if self.connection.next_event() is h11.NEED_DATA:
                    return
        self._dropping_body = False
        await self.send(Closed())
        await self.send(Updated(idle=False))

    async def _send_error_response(self, status_code: int) -> None:
        code, message = _REFUSALS.get(status_code, ("http_error", "the request could not be read"))
        message = message.format(limit=self.config.h11_max_incomplete_size)
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *self.config.response_headers("h11"),
        ]
        await self._send_h11_event(h11.Response(status_code=status_code, headers=headers))
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())
        client = self.client[0] if self.client else None
        log.info("refused", extra={"fields": {"status": status_code, "client": client}})
