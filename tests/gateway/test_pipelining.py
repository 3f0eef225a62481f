"""Order ops pipelined over one gateway's WebSocket reach the engine in the order sent."""

from __future__ import annotations

from typing import Any

import trio

from tests.gateway.processes import (
    ALICE,
    Cluster,
    authenticate,
    feed,
    limit_order,
    orders_of,
    ready_client,
    receive,
    send,
)

ROUNDS = 30


def _place(request_id: int, price: str) -> dict[str, Any]:
    order = limit_order(price, f"r{request_id}")
    return {"op": "order.place", "id": request_id, "args": order}


async def test_a_cancel_all_pipelined_between_orders_cancels_exactly_those_sent_before_it(
    cluster: Cluster,
) -> None:
    """Rounds of an order then ``orders.cancel_all``, sent without waiting: the engine reads
    them in one or a few batches, and each cancel must find the order just before it and
    none after it, so only the last order is left open."""
    async with cluster.engine(), cluster.gateway() as url, ready_client(url, ALICE) as alice:
        async with feed(url) as ws:
            await authenticate(ws, ALICE)
            messages = []
            for n in range(ROUNDS):
                messages.append(_place(2 * n, str(95 + n % 10)))
                cancel = {"op": "orders.cancel_all", "id": 2 * n + 1,
                          "args": {"symbol": "BTC_AIT"}}  # fmt: skip
                messages.append(cancel)
            messages.append(_place(2 * ROUNDS, "99"))
            for message in messages:
                await send(ws, message)
            answers: dict[int, dict[str, Any]] = {}
            with trio.fail_after(10):
                while len(answers) < len(messages):
                    answer = await receive(ws)
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
        orders = await orders_of(alice, ALICE, "&status=open")
        assert [o["client_order_id"] for o in orders] == [f"r{2 * ROUNDS}"], orders
