"""The HTTP edge over real sockets: what Hypercorn refuses before the app, in the error
shape, and a connection that answered before the body never holds the client's next
request."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import attrs
import hypercorn.trio
import pytest
import trio

from tests.api.conftest import Server
from tests.api.test_rest import ALICE, order
from trading_engine.api.app import create_app
from trading_engine.api.http_server import MAX_BODY_BYTES, MAX_HEADER_BYTES, server_config

ORDERS = "/api/v1/trading/orders"


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/json"
        error: dict[str, Any] = json.loads(self.body)["error"]
        return error


def parse(data: bytes) -> tuple[Answer, bytes]:
    """The first response in ``data`` (with a content-length), and what follows it."""
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    size = int(headers["content-length"])
    return Answer(int(status_line.split()[1]), headers, rest[:size]), rest[size:]


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while True:
        try:
            chunk = await stream.receive_some()
        except trio.BrokenResourceError:  # a reset after the answer: closed all the same
            return received
        if not chunk:
            return received
        received += chunk


async def read_answer(stream: trio.SocketStream) -> Answer:
    """One whole response, the connection left open."""
    received = b""
    while True:
        chunk = await stream.receive_some()
        assert chunk, "closed before a whole answer"
        received += chunk
        if b"\r\n\r\n" in received:
            answer, after = parse(received)
            if len(answer.body) == int(answer.headers["content-length"]):
                assert after == b""
                return answer


async def connect(url: str) -> trio.SocketStream:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(port))


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"NOT AN HTTP REQUEST LINE\r\n\r\n", 400, "bad_request"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Note: a\x00b\r\n\r\n", 400, "bad_request"),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Note: " + b"a" * 100_000 + b"\r\n\r\n",
            431,
            "header_too_large",
        ),
        (
            b"POST /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "not_implemented",
        ),
    ],
    ids=["request-line", "nul-in-header", "100kb-header", "transfer-coding"],
)
async def test_requests_hypercorn_refuses_get_the_error_shape_and_a_closed_connection(
    server: Server,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    status: int,
    code: str,
) -> None:
    caplog.set_level(logging.INFO, "trading_engine.http")
    with trio.fail_after(5):
        async with await connect(server.url) as stream:
            # Refused before it was all read, the send may break: the answer is there.
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.send_all(request_bytes)
            answer, rest = parse(await read_until_closed(stream))
    assert (answer.status, answer.headers["connection"], rest) == (status, "close", b"")
    error = answer.error()
    assert error["code"] == code
    refused = [r for r in caplog.records if r.getMessage() == "refused"]
    assert [r.__dict__["fields"] for r in refused] == [{"status": status, "client": "127.0.0.1"}]
    if code == "header_too_large":
        limit = f"the request line and headers take more than {MAX_HEADER_BYTES} bytes"
        assert error["message"] == limit


async def test_a_body_over_the_limit_is_a_413_that_closes_and_the_next_request_goes_through(
    server: Server,
) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        with trio.fail_after(5):
            refused = await alice.post("/orders", content=b"x" * (MAX_BODY_BYTES + 1))
            assert refused.status_code == 413
            assert refused.headers["connection"] == "close"
            assert refused.json()["error"] == {
                "code": "body_too_large",
                "message": f"the request body is over {MAX_BODY_BYTES} bytes",
            }
            placed = await alice.post("/orders", json=order("buy", "0.1", "30000"))
        assert placed.status_code == 201, placed.text


async def test_an_answer_before_a_big_body_closes_and_the_next_request_goes_through(
    server: Server,
) -> None:
    """A 401 (no key) is answered before the body is read, as a 413 is."""
    async with server.client() as anonymous:
        with trio.fail_after(5):
            refused = await anonymous.post("/orders", content=b"x" * (MAX_BODY_BYTES // 2))
            assert (refused.status_code, refused.headers["connection"]) == (401, "close")
            health = await anonymous.get("/health")
        assert health.status_code == 200


async def test_after_an_early_413_the_rest_of_the_body_is_read_then_the_connection_closes(
    server: Server,
) -> None:
    """The client still sending its body reads the 413, not a reset; once the body ends the
    connection closes at once (not after the 5 s keep-alive timeout), and what the client
    sends after the body is never taken for a request."""
    head = (
        f"POST {ORDERS} HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.keys[ALICE]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    async with await connect(server.url) as stream:
        await stream.send_all(head + b"x" * 1000)
        with trio.fail_after(5):
            answer = await read_answer(stream)
        assert (answer.status, answer.headers["connection"]) == (413, "close")
        assert answer.error()["code"] == "body_too_large"
        with trio.fail_after(2):
            await stream.send_all(b"x" * (MAX_BODY_BYTES + 1 - 1000))
            await stream.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await read_until_closed(stream) == b""


@attrs.frozen
class Quick:
    url: str
    keep_alive_timeout: float


@pytest.fixture
async def quick_timeout(server: Server) -> AsyncIterator[Quick]:
    """The app on the production settings, but with a keep-alive timeout of 0.5 s."""
    settings = server_config("127.0.0.1:0")
    settings.keep_alive_timeout = 0.5
    app = create_app(server.engine, "admin")
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: hypercorn.trio.serve(
                app, settings, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        yield Quick(binds[0], settings.keep_alive_timeout)
        stop.set()


async def test_a_client_that_stops_sending_its_body_after_an_early_answer_is_cut_off(
    quick_timeout: Quick,
) -> None:
    head = f"POST {ORDERS} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".encode()
    async with await connect(quick_timeout.url) as stream:
        await stream.send_all(head + b"x" * 100)
        with trio.fail_after(quick_timeout.keep_alive_timeout + 2):
            answer, _ = parse(await read_until_closed(stream))
    assert (answer.status, answer.headers["connection"]) == (401, "close")


async def test_a_request_whose_body_was_read_keeps_its_connection_alive(server: Server) -> None:
    body = json.dumps(order("buy", "0.1", "30000")).encode()
    placed = (
        f"POST {ORDERS} HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.keys[ALICE]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    async with await connect(server.url) as stream:
        answers = []
        for request in (placed, health, placed):
            await stream.send_all(request)
            with trio.fail_after(5):
                answers.append(await read_answer(stream))
    assert [answer.status for answer in answers] == [201, 200, 201]
    assert not [answer for answer in answers if "connection" in answer.headers]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /health HTTP/1.0\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_a_request_asking_to_close_gets_its_answer_and_the_connection_closes(
    server: Server, request_bytes: bytes
) -> None:
    async with await connect(server.url) as stream:
        await stream.send_all(request_bytes)
        with trio.fail_after(2):
            answer, rest = parse(await read_until_closed(stream))
    assert (answer.status, rest) == (200, b"")
