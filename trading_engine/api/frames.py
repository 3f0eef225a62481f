"""WebSocket text frames written straight to the socket of a Hypercorn connection.

Hypercorn sends each ASGI ``websocket.send`` on its own way down: wsproto
frames it (and compresses it when the client offered permessage-deflate),
then ``TCPServer.protocol_send`` takes the connection's send lock, opens a
shielded cancel scope and awaits ``SocketStream.send_all``, which yields to
the scheduler around the system call. On this machine that is about 95 us a
send, against about 10 us for the system call alone; with hundreds of
subscribers it was the cost of the whole feed.

A server's frames are not masked, so a text message's frame is a short
header and the UTF-8 text (``text_frames``). ``SocketWriter`` writes such
bytes to the connection's socket itself, for an HTTP/1.1 WebSocket over
plain TCP served by Hypercorn's trio worker, the same bytes Hypercorn's
``H11Protocol`` would pass through untouched. It keeps to Hypercorn's rules:

- It writes only while holding the connection's send lock, the one
  ``protocol_send`` holds, so its frames never interleave with Hypercorn's
  pongs or close frame. Hypercorn's ``trio.Lock`` is swapped, once and while
  nobody holds it, for a ``trio.Semaphore(1, max_value=1)`` (the same
  ``async with`` interface, but no owner): a write that the socket took only
  in part keeps the lock, and the connection's own task, not the one that
  started it, finishes the write and releases it.
- It starts no frame once the stream is closed or a close frame was sent or
  received (``open``), as Hypercorn drops such sends, but finishes one it
  has begun for as long as the socket is open.
- Only whole, unfragmented messages, so wsproto's outbound state (which
  only tracks a fragmented message) stays right. They go out uncompressed
  even when permessage-deflate was negotiated: RFC 7692 (section 6) lets a
  sender leave any message uncompressed (RSV1 clear), and the compression
  context on either side only sees compressed messages, so Hypercorn may
  still send its own compressed ones on the same connection.

``Closer`` closes a connection once (Quart refuses a second close) and cuts
it if the close is not done within ``CLOSE_WAIT_SECONDS``, also when the
server stops; both WebSocket front ends (``api/ws.py``, the Binance streams)
end their connections with it.

A client that reads nothing leaves a write waiting for good: the socket's
buffers fill and it takes no more. A write that gets no byte into the
socket for ``stall`` seconds, or waits that long for the send lock (held by
a write of Hypercorn's that is as stuck), gives up and cuts the connection
(``abort``): no close frame could get through.

``socket_writer_for`` answers None for any other server or transport (TLS,
HTTP/2) or a Hypercorn whose internals moved; the caller then sends each
message the ordinary ASGI way.
"""

from __future__ import annotations

import contextlib
import os
import socket as stdlib_socket
import struct
from collections.abc import Sequence
from typing import Any

import trio
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.trio.tcp_server import TCPServer
from quart import Quart, websocket
from wsproto.connection import ConnectionState

__all__ = [
    "CLOSE_WAIT_SECONDS",
    "Closer",
    "SocketWriter",
    "current_socket_writer",
    "install_send_capture",
    "socket_writer_for",
    "text_frames",
]

_SEND = "trading_engine.asgi_send"
"""The scope key under which a WebSocket connection's ASGI ``send`` reaches its handler."""

_TEXT = 0x81
"""FIN and the text opcode: one whole, uncompressed text message."""


def text_frames(texts: Sequence[str]) -> bytes:
    """``texts`` as consecutive unmasked WebSocket text frames (RFC 6455, section 5.2)."""
    parts: list[bytes] = []
    for text in texts:
        payload = text.encode()
        size = len(payload)
        if size < 126:
            parts.append(bytes((_TEXT, size)))
        elif size < 1 << 16:
            parts.append(struct.pack("!BBH", _TEXT, 126, size))
        else:
            parts.append(struct.pack("!BBQ", _TEXT, 127, size))
        parts.append(payload)
    return b"".join(parts)


class SocketWriter:
    """Writes frames to one Hypercorn WebSocket connection's socket (see the module's docstring)."""

    def __init__(
        self, stream: WSStream, socket: trio.socket.SocketType, lock: trio.Semaphore, stall: float
    ):
        self._stream = stream
        self._socket = socket
        self._lock = lock
        self._stall = stall
        self.aborted = False
        """The connection was cut (``abort``)."""

    @property
    def open(self) -> bool:
        """Whether frames may still be sent: accepted, not cut, and no close sent or received."""
        stream = self._stream
        return (
            not self.aborted
            and not stream.closed
            and stream.state is ASGIWebsocketState.CONNECTED
            and stream.connection.state is ConnectionState.OPEN
            and self._socket.fileno() != -1
        )

    def try_write(self, data: bytes) -> bytes | None:
        """Write ``data`` now, without waiting, if nobody else is writing.

        Returns None if someone is (nothing was written), else the part the
        socket did not take: ``b""`` when it took everything (or the
        connection is no longer ``open``, where the frames are dropped). When
        a part is left, the send lock stays held: pass the part to ``finish``
        (or ``abandon`` it).
        """
        if not self.open:
            return b""
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            return None
        sent = self._send(data)
        if sent >= len(data):
            self._lock.release()
            return b""
        return data[sent:]

    async def finish(self, rest: bytes) -> None:
        """Write what ``try_write`` left, then release the send lock it kept."""
        try:
            await self._send_all(rest)
        finally:
            self._lock.release()

    def abandon(self) -> None:
        """Give up what ``try_write`` left (the connection is ending): release the send lock."""
        self._lock.release()

    async def write(self, data: bytes) -> None:
        """Write ``data``, waiting for the send lock and for the socket as needed.

        Cuts the connection (``abort``) if the lock is not free within the stall time.
        """
        with trio.move_on_after(self._stall) as waiting:
            await self._lock.acquire()
        if waiting.cancelled_caught:
            self.abort()
            return
        try:
            if self.open:
                await self._send_all(data)
        finally:
            self._lock.release()

    def abort(self) -> None:
        """Cut the connection: for a client that takes nothing, so that no close can reach it.

        Both directions are shut down at once: Hypercorn's reader sees the end of
        the stream and ends the connection, and every write fails at once (the
        waiting frames are given up). With ``SO_LINGER`` zero, closing the socket
        then resets the connection (RST) and drops what the socket still holds,
        rather than keep trying to deliver it to a client that does not read.
        """
        self.aborted = True
        with contextlib.suppress(OSError):  # already closed
            linger = struct.pack("ii", 1, 0)
            self._socket.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, linger)
            self._socket.shutdown(stdlib_socket.SHUT_RDWR)

    async def _send_all(self, data: bytes) -> None:
        # Shielded, as Hypercorn shields its own sends, and carried on after a close
        # frame came in: a frame cut short would corrupt everything after it. Only a
        # socket that takes nothing for the stall time ends it early, by cutting the
        # connection.
        with trio.CancelScope(shield=True):
            while data := data[self._send(data) :]:
                with trio.move_on_after(self._stall) as waiting:
                    try:
                        await trio.lowlevel.wait_writable(self._socket)
                    except trio.ClosedResourceError:
                        return  # Hypercorn closed the socket meanwhile
                if waiting.cancelled_caught:
                    self.abort()
                    return

    def _send(self, data: bytes) -> int:
        """Bytes the socket took now; all of ``data`` if the connection is gone."""
        # The descriptor is read afresh each time: once Hypercorn closes the socket
        # it is -1, never a number the system has given to another connection since.
        fd = self._socket.fileno()
        if fd == -1:
            return len(data)
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0
        except OSError:
            # The peer is gone; Hypercorn's reader sees it too and ends the connection.
            return len(data)


def install_send_capture(app: Quart) -> None:
    """Keep each WebSocket connection's ASGI ``send`` in its scope: Quart keeps it behind
    its websocket object, and ``current_socket_writer`` needs it to find the connection's
    socket. Quart's way to add ASGI middleware."""
    inner = app.asgi_app

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope[_SEND] = send
        await inner(scope, receive, send)

    app.asgi_app = asgi_app  # type: ignore[method-assign]


def current_socket_writer(*, stall: float) -> SocketWriter | None:
    """``socket_writer_for`` the WebSocket connection being handled (an app with
    ``install_send_capture``)."""
    return socket_writer_for(websocket.scope.get(_SEND), stall=stall)


def socket_writer_for(send: object, *, stall: float) -> SocketWriter | None:
    """A writer for the connection behind an ASGI ``send``, or None if it does not qualify.

    Call it once the WebSocket is accepted. It qualifies when ``send`` is a
    Hypercorn ``WSStream``'s, over ``H11Protocol`` and Hypercorn's trio
    ``TCPServer`` on a plain ``trio.SocketStream``, whose send lock is free.
    A write that gets nowhere for ``stall`` seconds cuts the connection.
    """
    stream = getattr(send, "__self__", None)
    if not isinstance(stream, WSStream) or not hasattr(stream, "connection"):
        return None
    protocol = getattr(stream.send, "__self__", None)
    if not isinstance(protocol, H11Protocol):
        return None
    server = getattr(protocol.send, "__self__", None)
    if not isinstance(server, TCPServer):
        return None
    transport: object = server.stream  # annotated as an SSLStream, a SocketStream without TLS
    if not isinstance(transport, trio.SocketStream):
        return None
    lock: object = server.send_lock
    if isinstance(lock, trio.Lock):
        if lock.locked() or lock.statistics().tasks_waiting:
            return None
        lock = trio.Semaphore(1, max_value=1)
        server.send_lock = lock  # type: ignore[assignment]  # the same `async with`, no owner
    if not isinstance(lock, trio.Semaphore):
        return None
    return SocketWriter(stream, transport.socket, lock, stall)


CLOSE_WAIT_SECONDS = 1.0
"""How long a close may take before the connection is cut."""


class Closer:
    """Ends one WebSocket connection: a close frame once, then a cut if the client does
    not answer it within ``CLOSE_WAIT_SECONDS``.

    ``nursery`` is the connection's: cancelling it ends the connection (Quart-Trio
    cancels the handler itself once the client's answering close arrives, before
    that). A client that does not answer is cut, as is one that reads nothing,
    whose socket would not even take the close frame (``writer.abort``).
    """

    def __init__(self, writer: SocketWriter | None, nursery: trio.Nursery) -> None:
        self.writer = writer
        self.nursery = nursery
        self.closed = False
        """A close frame was sent."""

    async def close(self, code: int, reason: str = "") -> None:
        """Close the connection unless it was."""
        if not self.closed:
            self.closed = True
            await websocket.close(code, reason)

    def cut_later(self) -> None:
        """Cut the connection ``CLOSE_WAIT_SECONDS`` from now if it is still there."""
        self.nursery.start_soon(self._cut_after, CLOSE_WAIT_SECONDS)

    async def end(self, code: int, reason: str = "") -> None:
        """Close, and cut the connection ``CLOSE_WAIT_SECONDS`` later if still there."""
        self.cut_later()
        await self.close(code, reason)

    async def going_away(self, closing: trio.Event) -> None:
        """When ``closing`` is set (the server stops): end the connection with 1001."""
        await closing.wait()
        await self.end(1001, "the server is shutting down")

    async def _cut_after(self, seconds: float) -> None:
        await trio.sleep(seconds)
        if self.writer is not None:
            self.writer.abort()
        self.nursery.cancel_scope.cancel()
