"""Hostile messages on the WebSocket feed, over real connections: each gets an error in
the documented shape on a connection that stays open and keeps working, and nothing is
logged as a crash."""

from __future__ import annotations

import json
import logging

import pytest
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.api.conftest import Server
from tests.api.test_ws import _ws_url, receive

DEEP_ARRAY = "[" * 100_000
DEEP_CHANNELS = json.dumps({"op": "subscribe", "channels": [[[[[[[[["book.BTC_AIT"]]]]]]]]]})


async def _still_works(ws: WebSocketConnection) -> None:
    """The connection answers and subscribes as before."""
    await ws.send_message(json.dumps({"op": "subscribe", "channels": ["book.BTC_AIT"]}))
    assert await receive(ws) == {"type": "subscribed", "channel": "book.BTC_AIT"}
    assert (await receive(ws))["type"] == "snapshot"


NOT_UNICODE = "body: holds text that is not valid Unicode"
TOO_DEEP = "body: nests deeper than 8 levels"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (r'{"op": "auth", "api_key": "\ud800"}', NOT_UNICODE),
        (r'{"op": "subscribe", "channels": ["book.\udfff"]}', NOT_UNICODE),
        (r'{"op": "ping", "\ud800": 1}', NOT_UNICODE),
        (DEEP_ARRAY, TOO_DEEP),
        (DEEP_CHANNELS, TOO_DEEP),
    ],
)
async def test_text_that_is_not_unicode_or_nests_too_deeply_is_an_error_on_an_open_connection(
    server: Server, caplog: pytest.LogCaptureFixture, frame: str, message: str
) -> None:
    caplog.set_level(logging.ERROR)
    async with open_websocket_url(_ws_url(server)) as ws:
        await ws.send_message(frame)
        answer = await receive(ws)
        await _still_works(ws)
    assert answer == {
        "type": "error",
        "error": {"code": "invalid_input", "message": message, "field": "body"},
    }
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
