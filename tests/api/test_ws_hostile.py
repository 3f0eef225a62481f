"""Hostile messages on the WebSocket feed, over real connections: each gets an error in
the documented shape on a connection that stays open and keeps working, nothing is
logged as a crash, and nothing is silently dropped."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url
from wsproto.events import CloseConnection, TextMessage

from tests.api.conftest import ADMIN, Server
from tests.api.rawws import raw_client
from tests.api.test_ws import _ws_url, receive
from trading_engine.api import ws as ws_feed
from trading_engine.api.ws import MAX_CHANNELS

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


async def _symbols(server: Server, count: int) -> list[str]:
    """Lists ``count`` more symbols; every channel of every symbol, ``orders`` aside."""
    async with server.client(ADMIN) as admin:
        for i in range(count):
            listed = await admin.post(
                "/admin/symbols",
                json={"symbol": f"S{i:02}_AIT", "base_asset": f"S{i:02}", "quote_asset": "AIT",
                      "tick_size": "0.01", "lot_size": "0.01"},
            )  # fmt: skip
            assert listed.status_code == 201, listed.text
    kinds = ("book", "trades", "ticker", "candles.{}.1m", "candles.{}.5m", "candles.{}.1h")
    return [
        kind.format(symbol) if "{}" in kind else f"{kind}.{symbol}"
        for symbol in server.engine.instruments()
        for kind in kinds
    ]


async def _answers(ws: WebSocketConnection) -> list[dict[str, Any]]:
    """Every message up to the answer to a ping sent now, snapshots left out."""
    await ws.send_message(json.dumps({"op": "ping"}))
    answers = []
    while (message := await receive(ws))["type"] != "pong":
        if message["type"] != "snapshot":
            answers.append(message)
    return answers


async def test_one_subscribe_of_far_more_channels_than_the_cap_gets_one_error_for_the_rest(
    server: Server,
) -> None:
    channels = await _symbols(server, 35)
    assert len(channels) > MAX_CHANNELS
    names = channels + [f"book.X{i}_AIT" for i in range(10_000 - len(channels))]
    async with open_websocket_url(_ws_url(server)) as ws:
        await ws.send_message(json.dumps({"op": "subscribe", "channels": names}))
        subscribed = await _answers(ws)
        await ws.send_message(json.dumps({"op": "unsubscribe", "channels": names}))
        unsubscribed = await _answers(ws)
        await _still_works(ws)
    limit = f"channels: at most {MAX_CHANNELS} per connection and per message"
    assert subscribed == [{"type": "subscribed", "channel": c} for c in channels[:MAX_CHANNELS]] + [
        {"type": "error", "error": {"code": "too_many_channels", "field": "channels",
                                    "message": f"{limit}: {10_000 - MAX_CHANNELS} not subscribed",
                                    "limit": MAX_CHANNELS}},
    ]  # fmt: skip
    assert unsubscribed[:-1] == [
        {"type": "unsubscribed", "channel": c} for c in channels[:MAX_CHANNELS]
    ]
    left_out = unsubscribed[-1]["error"]["message"]
    assert left_out == f"{limit}: {10_000 - MAX_CHANNELS} not unsubscribed"


async def test_subscribes_past_the_cap_one_at_a_time_are_each_refused_and_subscribe_nothing(
    server: Server,
) -> None:
    channels = await _symbols(server, 35)
    async with open_websocket_url(_ws_url(server)) as ws:
        for channel in channels:
            await ws.send_message(json.dumps({"op": "subscribe", "channels": [channel]}))
        answers = await _answers(ws)
        # At the cap: another channel is refused, one already held is answered as ever, and
        # one dropped makes room for another.
        held, other = channels[0], channels[MAX_CHANNELS]
        for op, channel in (("subscribe", other), ("subscribe", held), ("unsubscribe", held)):
            await ws.send_message(json.dumps({"op": op, "channels": [channel]}))
        await ws.send_message(json.dumps({"op": "subscribe", "channels": [other]}))
        more = await _answers(ws)
    over = len(channels) - MAX_CHANNELS
    assert [a["channel"] for a in answers[:MAX_CHANNELS]] == channels[:MAX_CHANNELS]
    assert [a["error"]["code"] for a in answers[MAX_CHANNELS:]] == ["too_many_channels"] * over
    assert "1 not subscribed" in answers[-1]["error"]["message"]
    assert [a.get("channel") or a["error"]["code"] for a in more] == [
        "too_many_channels", held, held, other
    ]  # fmt: skip
    assert [a["type"] for a in more] == ["error", "subscribed", "unsubscribed", "subscribed"]


async def test_a_client_too_far_behind_to_take_its_answers_is_dropped_not_left_unanswered(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It asks without reading until more than OUTBOX answers wait: it gets every answer up
    to then, in order, then slow_consumer and the close (1008); none is silently left out."""
    monkeypatch.setattr(ws_feed, "OUTBOX", 20)
    names = [f"book.{i:05}{'x' * 1000}" for i in range(20 * MAX_CHANNELS)]
    async with raw_client(_ws_url(server), receive_buffer=4096) as ws:
        for at in range(0, len(names), MAX_CHANNELS):
            batch = names[at : at + MAX_CHANNELS]
            await ws.send_text(json.dumps({"op": "subscribe", "channels": batch}))
        texts = []
        with trio.fail_after(20):
            while not isinstance(event := await ws.event(), CloseConnection):
                if isinstance(event, TextMessage):
                    texts.append(json.loads(str(event.data)))
    assert event.code == 1008
    *answers, last = [t for t in texts if t["type"] != "heartbeat"]
    assert last["error"]["code"] == "slow_consumer"
    assert 0 < len(answers) < len(names)
    expected = [f"no channel {name!r}" for name in names[: len(answers)]]
    assert [a["error"]["message"] for a in answers] == expected
