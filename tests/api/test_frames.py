"""Frames written straight to a Hypercorn connection's socket, read by a real client.

The server is Hypercorn's trio worker serving a bare ASGI app that writes
some messages through ``SocketWriter`` and some the ASGI way, so that
Hypercorn frames (and, with permessage-deflate, compresses) those itself:
the client must read them all, in order, whether or not it negotiated
compression, and get the pong Hypercorn owes it whole, even while a direct
write is only partly done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
from wsproto.events import Ping, Pong, TextMessage
from wsproto.frame_protocol import FrameDecoder, Opcode

from tests.api.conftest import serve
from tests.api.rawws import raw_client
from trading_engine.api.frames import SocketWriter, socket_writer_for, text_frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frames_decode_as_the_same_messages_at_every_length_boundary(size: int) -> None:
    texts = ["x" * size, "é" * (size // 2), "{}"]
    decoder = FrameDecoder(client=True)
    decoder.receive_bytes(text_frames(texts))
    frames = [decoder.process_buffer() for _ in texts]
    assert [(f.opcode, f.message_finished) for f in frames if f] == [(Opcode.TEXT, True)] * 3
    assert [f.payload for f in frames if f] == [text.encode() for text in texts]
    assert decoder.process_buffer() is None


@attrs.define
class Script:
    """What the app did: whether it got a writer, and whether a write was left in part."""

    writer: bool | None = None
    partial: bool = False


BIG = 2_000_000


def make_app(script: Script) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.startup"
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        writer = socket_writer_for(send, stall=30.0)
        script.writer = writer is not None
        assert writer is not None
        assert (await receive())["text"] == "go"
        await _asgi(send, "a1")
        await _direct(writer, ["b1", "b2"], script)
        await _asgi(send, "a2")
        assert (await receive())["text"] == "big"
        await _direct(writer, ["c" * BIG, "b3"], script)
        await _asgi(send, "a3")
        while (await receive())["type"] != "websocket.disconnect":
            pass

    return app


async def _asgi(send: Any, text: str) -> None:
    await send({"type": "websocket.send", "text": text})


async def _direct(writer: SocketWriter, texts: list[str], script: Script) -> None:
    frames = text_frames(texts)
    rest = writer.try_write(frames)
    if rest is None:  # Hypercorn is writing (the pong, say): wait for it
        await writer.write(frames)
    elif rest:
        script.partial = True
        await writer.finish(rest)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Script]]:
    script = Script()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await serve(nursery, make_app(script), stop)
        yield url.replace("http", "ws", 1) + "/", script
        stop.set()


@pytest.mark.parametrize("deflate", [False, True])
async def test_direct_frames_interleave_with_hypercorns_own_in_order(
    server: tuple[str, Script], deflate: bool
) -> None:
    url, script = server
    # A small receive buffer: the big message does not fit, so its write is left in
    # part and finished as we read, while Hypercorn wants to answer our ping.
    async with raw_client(url, deflate=deflate, receive_buffer=4096) as client:
        assert client.deflate is deflate
        await client.send_text("go")
        with trio.fail_after(10):
            texts = [await client.text() for _ in range(4)]
            await client.send_text("big")
            await trio.sleep(0.2)  # the server is stuck in the big write by now
            await client.send(Ping(payload=b"mid-write"))
            pongs = []
            while len(texts) < 7:
                event = await client.event()
                if isinstance(event, TextMessage):
                    texts.append(str(event.data))
                elif isinstance(event, Pong):
                    pongs.append(bytes(event.payload))
    assert script.writer is True
    assert script.partial is True
    assert texts == ["a1", "b1", "b2", "a2", "c" * BIG, "b3", "a3"]
    assert pongs == [b"mid-write"]
