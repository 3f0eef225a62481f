"""A WebSocket client on wsproto over a plain trio socket, for what trio-websocket can't do.

It can offer permessage-deflate and shrink its socket's receive buffer (a
client that reads slowly), it reports pings and closes as they come, and it
tells, without reading, whether the server ended or cut the connection.
``refused_handshake`` reads the answer to a handshake the server refuses, and closes the
socket (trio-websocket's ``ConnectionRejected`` leaves it open).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import socket as stdlib_socket
import struct
import termios
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

__all__ = ["RawClient", "Refusal", "raw_client", "refused_handshake"]

_TCP_ESTABLISHED = 1
"""``tcpi_state`` of an open connection (``include/net/tcp_states.h``)."""


class RawClient:
    def __init__(self, sock: trio.socket.SocketType, ws: WSConnection) -> None:
        self._sock = sock
        self._ws = ws
        self._events: deque[Event] = deque()
        self._text: list[str] = []
        self.deflate = False
        self.answers_close = True
        """Whether ``event`` answers the server's close frame, as a client should."""

    async def send(self, event: Event) -> None:
        await self._sock.send(self._ws.send(event))

    async def send_text(self, text: str) -> None:
        await self.send(TextMessage(data=text))

    async def event(self) -> Event:
        """The next event; a text message comes whole, as a ``TextMessage``."""
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Message):
                    self._text.append(str(event.data))
                    if not event.message_finished:
                        continue
                    event = TextMessage(data="".join(self._text))
                    self._text.clear()
                elif isinstance(event, Ping) or (
                    isinstance(event, CloseConnection) and self.answers_close
                ):
                    await self.send(event.response())
                return event
            data = await self._sock.recv(65536)
            self._ws.receive_data(data or None)
            self._events.extend(self._ws.events())

    def cut(self) -> None:
        """Drop the connection as a network failure does: a TCP reset, no close frame."""
        self._sock.setsockopt(
            stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self._sock.close()

    def ended_by_server(self) -> bool:
        """Whether the server closed (FIN) or reset (RST) the connection, read from the
        kernel's view of the socket (Linux's ``TCP_INFO``) without reading a byte."""
        info = self._sock.getsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_INFO, 1)
        return info[0] != _TCP_ESTABLISHED

    def unread(self) -> int:
        """Bytes the socket has received that the client has not read (``FIONREAD``)."""
        raw = fcntl.ioctl(self._sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
        count: int = struct.unpack("i", raw)[0]
        return count

    async def end_of_stream(self) -> None:
        """Wait for the server to close the TCP connection, discarding what comes before."""
        while await self._sock.recv(65536):
            pass

    async def text(self) -> str:
        """The next text message, answering pings on the way; fails on anything else."""
        while True:
            event = await self.event()
            if isinstance(event, TextMessage):
                return str(event.data)
            assert isinstance(event, Ping | Pong), f"expected a text message, got {event!r}"


@asynccontextmanager
async def raw_client(
    url: str, *, deflate: bool = False, receive_buffer: int | None = None
) -> AsyncIterator[RawClient]:
    """A connected client of ``url`` (``ws://host:port/path``)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    sock = trio.socket.socket()
    if receive_buffer is not None:
        # Before connecting, so that the window the server sees is small from the start.
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, receive_buffer)
    with sock:
        await sock.connect((parts.hostname, parts.port))
        ws = WSConnection(ConnectionType.CLIENT)
        client = RawClient(sock, ws)
        extensions = [PerMessageDeflate()] if deflate else []
        await client.send(Request(host=parts.netloc, target=parts.path, extensions=extensions))
        accepted = await client.event()
        assert isinstance(accepted, AcceptConnection), accepted
        client.deflate = any(isinstance(e, PerMessageDeflate) for e in accepted.extensions)
        yield client
        if ws.state.name == "OPEN" and sock.fileno() != -1:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # cut by the server
                await client.send(CloseConnection(code=1000))


@attrs.frozen
class Refusal:
    """The server's answer to a handshake it refused: an HTTP response, not an upgrade."""

    status: int
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def refused_handshake(url: str, headers: Sequence[tuple[str, str]] = ()) -> Refusal:
    """The answer to a handshake for ``url`` (``ws://host:port/path?query``) sent with
    ``headers``; fails if the server accepts it."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    extra = [(name.encode(), value.encode()) for name, value in headers]
    with trio.fail_after(5), trio.socket.socket() as sock:
        await sock.connect((parts.hostname, parts.port))
        ws = WSConnection(ConnectionType.CLIENT)
        await sock.send(ws.send(Request(host=parts.netloc, target=target, extra_headers=extra)))
        status, answer_headers, body = 0, {}, b""
        while True:
            data = await sock.recv(65536)
            ws.receive_data(data or None)
            for event in ws.events():
                assert not isinstance(event, AcceptConnection), "the server upgraded"
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    answer_headers = {n.decode().lower(): v.decode() for n, v in event.headers}
                    if not event.has_body:
                        return Refusal(status, answer_headers, body)
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        return Refusal(status, answer_headers, body)
            assert data, "the server closed the connection without an answer"
