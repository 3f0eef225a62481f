"""The dialect's WebSocket connections when the server stops: Binance's ``serverShutdown``
event, then a close (1001)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import trio
from wsproto.events import CloseConnection, TextMessage

from tests.api.binance_client import signed
from tests.api.conftest import ADMIN, serve
from tests.api.rawws import RawClient, raw_client
from trading_engine.actors.engine import open_engine
from trading_engine.api.app import create_app
from trading_engine.api.drain import Drain
from trading_engine.api.secrets import SecretBox
from trading_engine.config import EngineConfig
from trading_engine.serve import demo_secret, setup_demo
from trading_engine.storage.postgres import open_postgres_journal


async def _ended(ws: RawClient) -> tuple[list[Any], CloseConnection]:
    """The messages until the close, and the close."""
    texts = []
    while not isinstance(event := await ws.event(), CloseConnection):
        if isinstance(event, TextMessage):
            texts.append(json.loads(str(event.data)))
    return texts, event


async def test_each_connection_is_told_the_server_shuts_down_then_closed(
    database_url: str,
) -> None:
    drain = Drain()
    stop = trio.Event()
    async with (
        open_postgres_journal(database_url) as journal,
        open_engine(EngineConfig(expire_every=float("inf")), journal) as engine,
        trio.open_nursery() as nursery,
    ):
        box = SecretBox.generate()
        keys = await setup_demo(engine, ADMIN, box)
        app = create_app(engine, ADMIN, drain=drain, read_tables=journal, secret_box=box)
        url = await serve(nursery, app, stop)
        ws_url = url.replace("http://", "ws://")
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            made = await http.post(
                "/api/v3/userDataStream", headers={"X-MBX-APIKEY": keys["demo_alice"]}
            )
        key, now = keys["demo_alice"], time.time_ns() // 1_000_000
        query = signed({"apiKey": key}, demo_secret(ADMIN, "demo_alice"), at=now)
        signature = query.rpartition("signature=")[2]
        params = {"apiKey": key, "timestamp": now, "signature": signature}
        subscribe = {"id": 1, "method": "userDataStream.subscribe.signature", "params": params}
        with trio.fail_after(20):
            async with (
                raw_client(ws_url + "/ws/btcait@trade") as raw,
                raw_client(ws_url + "/stream?streams=btcait@trade") as combined,
                raw_client(ws_url + f"/ws/{made.json()['listenKey']}") as listen_key,
                raw_client(ws_url + "/ws-api/v3") as api,
            ):
                await api.send_text(json.dumps(subscribe))
                assert json.loads(await api.text())["result"] == {"subscriptionId": 0}
                drain.closing.set()
                ended = [await _ended(ws) for ws in (raw, combined, listen_key, api)]
        stop.set()
    events = [texts[-1] for texts, _ in ended]
    assert [close.code for _, close in ended] == [1001] * 4
    shutdown = events[0]
    assert shutdown == {"e": "serverShutdown", "E": shutdown["E"]}
    assert events[1] == {"stream": "!serverShutdown", "data": events[1]["data"]}
    assert events[2]["e"] == events[1]["data"]["e"] == "serverShutdown"
    assert events[3] == {"event": {"e": "serverShutdown", "E": events[3]["event"]["E"]}}
