"""Rate limits on WebSocket messages, over real connections: the HTTP limiter's buckets,
per address before ``auth`` and per user after; failed ``auth`` slowed down; a client
that keeps flooding is closed. The upgrade takes a token too (``api/ws_guard.py``,
tested in ``test_ws_guard.py``): with a burst of 3, a new connection has 2 left."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url
from wsproto.events import CloseConnection, TextMessage

from tests.api.conftest import Server
from tests.api.rawws import raw_client, refused_handshake
from tests.api.test_ws import _ws_url, receive
from trading_engine.api.ws_limits import AUTH_DELAY, FLOOD_REFUSALS
from trading_engine.storage.limits import Leases, Limiter, Limits, LocalLimiter

ALICE = "demo_alice"
PING = json.dumps({"op": "ping"})


@pytest.fixture
def limiter() -> Limiter:
    return LocalLimiter(Limits(rate=1.0, burst=3))


async def _types(ws: WebSocketConnection, count: int) -> list[str]:
    return [(await receive(ws))["type"] for _ in range(count)]


async def test_messages_past_the_address_burst_are_refused_and_the_connection_stays_open(
    server: Server,
) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        for _ in range(3):
            await ws.send_message(PING)
        assert await _types(ws, 2) == ["pong"] * 2
        refused = await receive(ws)
        async with server.client() as anonymous:  # the same address: the same bucket
            assert (await anonymous.get("/symbols")).status_code == 429
        wait = Decimal(refused["error"]["retry_after"])
        await trio.sleep(float(wait))
        await ws.send_message(PING)
        assert (await receive(ws))["type"] == "pong"
    assert refused["error"]["code"] == "rate_limited"
    assert refused["error"]["message"] == f"too many messages: retry in {wait} s"
    assert Decimal("0") < wait <= Decimal("1")


async def test_once_authenticated_messages_take_from_the_users_bucket(server: Server) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        await ws.send_message(json.dumps({"op": "auth", "api_key": server.keys[ALICE]}))
        assert (await receive(ws))["type"] == "authenticated"
        for _ in range(4):  # alice's own bucket, full
            await ws.send_message(PING)
        assert await _types(ws, 4) == ["pong", "pong", "pong", "error"]
        async with server.client(server.keys[ALICE]) as alice:
            assert (await alice.get(f"/users/{ALICE}/balances")).status_code == 429
        async with server.client(server.keys["demo_bob"]) as bob:
            assert (await bob.get("/users/demo_bob/balances")).status_code == 200


async def test_wrong_keys_over_many_connections_share_their_address_bucket(
    server: Server,
) -> None:
    """A fresh connection per guess gets fewer guesses than a request per guess over HTTP:
    its upgrade takes a token too."""
    answers: list[str | int] = []
    for attempt in range(2):
        async with open_websocket_url(_ws_url(server)) as ws:
            await ws.send_message(json.dumps({"op": "auth", "api_key": f"not-a-key-{attempt}"}))
            answers.append((await receive(ws))["error"]["code"])
    answers.append((await refused_handshake(_ws_url(server))).status)
    assert answers == ["unauthenticated", "rate_limited", 429]


async def test_a_wrong_key_on_an_authenticated_connection_costs_the_address_a_token(
    server: Server,
) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        await ws.send_message(json.dumps({"op": "auth", "api_key": server.keys[ALICE]}))
        assert (await receive(ws))["type"] == "authenticated"
        async with server.client() as anonymous:  # the address's last token
            assert (await anonymous.get("/symbols")).status_code == 200
        await ws.send_message(json.dumps({"op": "auth", "api_key": "not-a-key"}))
        refused = await receive(ws)
        await ws.send_message(PING)  # alice's bucket still has tokens
        assert (await receive(ws))["type"] == "pong"
    assert refused["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("limiter", [None])  # it applies with rate limits off too
async def test_failed_auths_in_a_row_are_answered_ever_more_slowly(server: Server) -> None:
    async with open_websocket_url(_ws_url(server)) as ws:
        took = []
        for _ in range(3):
            sent = trio.current_time()
            await ws.send_message(json.dumps({"op": "auth", "api_key": "not-a-key"}))
            assert (await receive(ws))["error"]["code"] == "unauthenticated"
            took.append(trio.current_time() - sent)
    assert took[0] >= AUTH_DELAY
    assert took[1] >= 2 * AUTH_DELAY
    assert took[2] >= 4 * AUTH_DELAY


async def test_a_client_that_keeps_sending_while_refused_is_closed(server: Server) -> None:
    """FLOOD_REFUSALS messages refused: a last error, then close code 1008; what the client
    sent after that is not answered."""
    async with raw_client(_ws_url(server)) as ws:
        for _ in range(FLOOD_REFUSALS + 50):
            await ws.send_text(PING)
        texts: list[dict[str, Any]] = []
        with trio.fail_after(10):
            while not isinstance(event := await ws.event(), CloseConnection):
                if isinstance(event, TextMessage):
                    texts.append(json.loads(str(event.data)))
            await ws.end_of_stream()
    assert (event.code, event.reason) == (1008, "rate limited")
    *answers, last = [t for t in texts if t["type"] != "heartbeat"]
    assert [a["type"] for a in answers].count("error") == FLOOD_REFUSALS
    assert {a["type"] for a in answers} == {"pong", "error"}
    assert last["error"]["code"] == "rate_limited"
    message = f"{FLOOD_REFUSALS} messages refused within 10 s: disconnected"
    assert last["error"]["message"] == message


class _Counting(LocalLimiter):
    """In-process buckets that count the calls made to them."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits)
        self.calls = 0

    async def take(self, key: str, cost: int = 1) -> float:
        self.calls += 1
        return await super().take(key, cost)


class TestLeases:
    """With Redis, the limiter takes a busy bucket's tokens ahead (``Leases``): here in
    front of counting in-process buckets."""

    @pytest.fixture
    def counting(self) -> _Counting:
        return _Counting(Limits(rate=0.001, burst=100))

    @pytest.fixture
    def limiter(self, counting: _Counting) -> Limiter:
        return Leases(counting)

    async def test_a_connection_takes_its_tokens_ahead_and_the_limit_still_holds(
        self, server: Server, counting: _Counting
    ) -> None:
        """The upgrade and 99 pings: a call to the limiter per lease, not per message; the
        100th ping, past the burst, refused as it would be a token at a time."""
        async with open_websocket_url(_ws_url(server)) as ws:
            for _ in range(100):
                await ws.send_message(json.dumps({"op": "ping"}))
            answers = await _types(ws, 100)
        assert answers == ["pong"] * 99 + ["error"]
        assert counting.calls < 20  # 1 + 2 + 4 + 8 + 16 + 16 ... and the fallbacks
