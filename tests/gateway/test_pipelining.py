"""Order ops pipelined over one gateway's WebSocket reach the engine in the order sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio
from trio_websocket import open_websocket_url

from tests.gateway.processes import ADMIN, Cluster, client, until_ready
from trading_engine.serve import demo_key

ALICE = "demo_alice"
ROUNDS = 30


def _place(request_id: int, price: str) -> dict[str, Any]:
    order = {"symbol": "BTC_AIT", "side": "buy", "type": "limit", "quantity": "0.01",
             "price": price, "client_order_id": f"r{request_id}"}  # fmt: skip
    return {"op": "order.place", "id": request_id, "args": order}


async def test_a_cancel_all_pipelined_between_orders_cancels_exactly_those_sent_before_it(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Rounds of an order then ``orders.cancel_all``, sent without waiting: the engine reads
    them in one or a few batches, and each cancel must find the order just before it and
    none after it, so only the last order is left open."""
    cluster = Cluster(database_url, redis_url, tmp_path / "data")
    async with cluster.engine(), cluster.gateway() as url, client(url, ALICE) as alice:
        await until_ready(alice)
        async with open_websocket_url(url.replace("http", "ws", 1) + "/api/v1/trading/ws") as ws:
            await ws.send_message(json.dumps({"op": "auth", "api_key": demo_key(ADMIN, ALICE)}))
            messages = []
            for n in range(ROUNDS):
                messages.append(_place(2 * n, str(95 + n % 10)))
                cancel = {"op": "orders.cancel_all", "id": 2 * n + 1,
                          "args": {"symbol": "BTC_AIT"}}  # fmt: skip
                messages.append(cancel)
            messages.append(_place(2 * ROUNDS, "99"))
            for message in messages:
                await ws.send_message(json.dumps(message))
            answers: dict[int, dict[str, Any]] = {}
            with trio.fail_after(10):
                while len(answers) < len(messages):
                    answer = json.loads(await ws.get_message())
                    if isinstance(answer.get("id"), int):
                        answers[answer["id"]] = answer
        assert answers[2 * ROUNDS]["status"] == 201, answers[2 * ROUNDS]
        for n in range(ROUNDS):
            assert answers[2 * n]["status"] == 201, answers[2 * n]
            cancelled = answers[2 * n + 1]
            assert cancelled["status"] == 200, cancelled
            assert [o["client_order_id"] for o in cancelled["data"]["cancelled"]] == [f"r{2 * n}"]
        last = await alice.get(f"/orders/{answers[2 * ROUNDS]['data']['order_id']}")
        assert last.json()["status"] == "open", last.text
        response = await alice.get(f"/users/{ALICE}/orders?status=open&limit=1000")
        assert response.status_code == 200, response.text
        orders = response.json()["orders"]
        assert [o["client_order_id"] for o in orders] == [f"r{2 * ROUNDS}"], orders
