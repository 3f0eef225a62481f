"""Rate limits on the Binance streams' frames: the HTTP limiter's buckets, as on the feed."""

from __future__ import annotations

import json

import pytest
import trio
from wsproto.events import CloseConnection, TextMessage

from tests.api.conftest import Server
from tests.api.rawws import raw_client
from trading_engine.api.ws_limits import FLOOD_REFUSALS
from trading_engine.storage.limits import Limiter, Limits, LocalLimiter


@pytest.fixture
def limiter() -> Limiter:
    return LocalLimiter(Limits(rate=1.0, burst=3))


@pytest.mark.parametrize("path", ["/ws/0", "/ws-api/v3"])
async def test_frames_past_the_burst_are_refused_and_a_flood_is_sent_away(
    server: Server, path: str
) -> None:
    frame = json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1})
    if path == "/ws-api/v3":
        frame = json.dumps({"method": "ping", "id": 1})
    url = server.url.replace("http://", "ws://") + path
    with trio.fail_after(20):
        async with raw_client(url) as ws:
            for _ in range(2 + FLOOD_REFUSALS):  # the upgrade took 1 of the burst's 3
                await ws.send_text(frame)
            texts = []
            while not isinstance(event := await ws.event(), CloseConnection):
                if isinstance(event, TextMessage):
                    texts.append(json.loads(str(event.data)))
    answered, refused = texts[:2], texts[2:]
    assert all("error" not in a for a in answered)
    assert len(refused) == FLOOD_REFUSALS
    assert {a["error"]["code"] for a in refused} == {-1003}
    assert event.code == 1008
