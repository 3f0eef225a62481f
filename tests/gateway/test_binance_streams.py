"""The Binance dialect's streams on a gateway, over a real engine process and Redis."""

from __future__ import annotations

import json
from typing import Any

import trio
from trio_websocket import open_websocket_url

from tests.gateway.processes import ADMIN, ALICE, BOB, Cluster, limit_order, ready_client
from trading_engine.serve import demo_key


async def test_a_gateway_serves_the_market_and_user_data_streams(cluster: Cluster) -> None:
    async with (
        cluster.engine(),
        cluster.gateway() as url,
        ready_client(url, ALICE) as alice,
        ready_client(url, BOB) as bob,
    ):
        made = await alice.post(
            url + "/api/v3/userDataStream", headers={"X-MBX-APIKEY": demo_key(ADMIN, ALICE)}
        )
        assert made.status_code == 200, made.text
        ws = url.replace("http", "ws", 1)
        market_url = ws + "/stream?streams=btcait@trade/btcait@depth@100ms"
        with trio.fail_after(60):
            async with (
                open_websocket_url(market_url) as market,
                open_websocket_url(ws + f"/ws/{made.json()['listenKey']}") as user,
            ):
                # The gateway subscribes through Redis: each stream is live once a resting
                # order shows on it.
                streamed: dict[str, Any] = {}
                events: list[dict[str, Any]] = []
                while "btcait@depth@100ms" not in streamed or not events:
                    sell = await alice.post("/orders", json=limit_order("30000", side="sell"))
                    assert sell.status_code == 201, sell.text
                    with trio.move_on_after(1):
                        while "btcait@depth@100ms" not in streamed:
                            message = json.loads(await market.get_message())
                            streamed[message["stream"]] = message["data"]
                        events.append(json.loads(await user.get_message()))
                buy = await bob.post("/orders", json=limit_order("30000"))
                assert buy.status_code == 201, buy.text
                while "btcait@trade" not in streamed:
                    message = json.loads(await market.get_message())
                    streamed[message["stream"]] = message["data"]
                while not any(e.get("x") == "TRADE" for e in events):
                    events.append(json.loads(await user.get_message()))
    trade = streamed["btcait@trade"]
    assert (trade["e"], trade["p"], trade["q"]) == ("trade", "30000.00000000", "0.01000000")
    assert streamed["btcait@depth@100ms"]["e"] == "depthUpdate"
    reports = [e for e in events if e["e"] == "executionReport"]
    assert (reports[0]["x"], reports[0]["X"]) == ("NEW", "NEW")
    fill = reports[-1]
    assert (fill["X"], fill["l"], fill["N"]) == ("FILLED", "0.01000000", "AIT")
    assert any(e["e"] == "outboundAccountPosition" for e in events)
