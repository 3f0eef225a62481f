"""``trading-engine loadtest --mode ws``: orders over the WebSocket, pipelined.

``connections`` WebSocket connections, each authenticated with its own key
(keys rotate when there are fewer), place the ``OrderFlow``'s orders with
``order.place`` and read the answers as they come, matched by ``id``. A
connection that holds more than ``max_resting`` resting orders sends, in
its next request's stead, an ``order.cancel`` of its oldest, so the book
stays bounded.

- Closed loop (``rate`` 0): each connection keeps up to ``in_flight``
  requests unanswered, for throughput.
- Open loop (``rate`` > 0): the connections together send ``rate`` requests
  a second (orders, and the cancels in their stead), each at its time in a
  ``Schedule`` whatever the answers do, for latency at that rate. A latency
  runs from the request's scheduled time, so a client that falls behind adds
  its delay to the figure rather than hide it; ``send_lag_*`` says how far
  behind the sending itself fell.

With ``batch_size`` above 1 (``--mode ws-batch``) each request is an
``orders.place_batch`` of that many orders, and a connection over its cap
pulls all its orders with one ``orders.cancel_all``.

A latency is from the send (or the scheduled time) to the answer:
``p50_ms`` and the like for orders (batches), ``cancel_p50_ms`` and the like
for cancels; a request still unanswered ``DRAIN_SECONDS`` after the last
send counts in ``unanswered`` and in the percentiles with the time it had
waited (so they are lower bounds when ``unanswered`` is not 0). The
throughput is ``orders_per_sec``, orders answered 201 per
second from the start to the last answer, and ``requests_per_sec``, every
answer. ``statuses`` counts ``order STATUS`` for each order (within a batch
too) and ``OP STATUS`` for every other request.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import attrs
import msgspec
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from trading_engine.benchmarks.orderflow import OrderFlow, Resting, Schedule, latency_ms

__all__ = ["Answer", "authenticate", "ws_orders", "ws_url"]

DRAIN_SECONDS = 15.0
"""How long the answers still due after the last send are waited for."""


class Answer(msgspec.Struct):
    """The fields of an answer the load generators read, the rest skipped: a server
    message, or an item of a batch's ``results`` (which has no ``type``)."""

    type: str = ""
    id: int | str | None = None
    status: int = 0
    data: AnswerData | None = None


class AnswerData(msgspec.Struct):
    """An answer's ``data``: an order, a batch's ``results``, or ``orders.cancel_all``'s
    ``cancelled`` orders."""

    order_id: str = ""
    status: str = ""
    results: list[Answer] = msgspec.field(default_factory=list)
    cancelled: list[msgspec.Raw] = msgspec.field(default_factory=list)


_decode = msgspec.json.Decoder(Answer).decode


def ws_url(url: str) -> str:
    """The feed's URL on the server at ``url`` (``http`` or ``https``)."""
    return url.replace("http", "ws", 1).rstrip("/") + "/api/v1/trading/ws"


async def authenticate(ws: WebSocketConnection, key: str, **extra: Any) -> dict[str, Any]:
    """Send ``auth`` and return the ``authenticated`` answer; ``SystemExit`` on a refusal."""
    await ws.send_message(json.dumps({"op": "auth", "api_key": key, **extra}))
    while True:
        message: dict[str, Any] = json.loads(await ws.get_message())
        if message.get("type") == "authenticated":
            return message
        if message.get("type") == "error":
            raise SystemExit(f"loadtest: auth refused: {message.get('error')}")


@attrs.define
class _Tally:
    """What every connection of a run adds to."""

    start: float = math.inf
    last_answer: float = 0.0
    places: list[float] = attrs.field(factory=list)
    cancels: list[float] = attrs.field(factory=list)
    cancelled_all: int = 0
    answered: int = 0
    lags: list[float] = attrs.field(factory=list)
    statuses: Counter[str] = attrs.field(factory=Counter)
    order_statuses: Counter[str] = attrs.field(factory=Counter)
    unanswered: int = 0


@attrs.define(eq=False)
class _Connection:
    """One connection's requests in flight, by id: their op, and since when."""

    ws: WebSocketConnection
    flow: OrderFlow
    resting: Resting
    tally: _Tally
    slots: trio.Semaphore | None
    batch_size: int = 1
    pending: dict[int, tuple[str, float]] = attrs.field(factory=dict)
    next_id: int = 0

    async def _send(self, op: str, args: dict[str, Any], since: float) -> None:
        self.next_id += 1
        self.pending[self.next_id] = (op, since)
        await self.ws.send_message(json.dumps({"op": op, "id": self.next_id, "args": args}))

    async def receive(self) -> None:
        """Read answers and account for them, until cancelled."""
        tally = self.tally
        while True:
            answer = _decode(await self.ws.get_message())
            if answer.type not in ("result", "error") or not isinstance(answer.id, int):
                continue
            op, since = self.pending.pop(answer.id)
            now = tally.last_answer = trio.current_time()
            tally.answered += 1
            placing = op in ("order.place", "orders.place_batch")
            (tally.places if placing else tally.cancels).append(now - since)
            data = answer.data
            if op == "order.place":  # counted as an order: "order STATUS"
                self._placed(answer.status, data)
            else:
                tally.statuses[f"{op} {answer.status}"] += 1
            if data is not None and op == "orders.place_batch":
                for item in data.results:
                    self._placed(item.status, item.data)
            elif data is not None and op == "orders.cancel_all":
                tally.cancelled_all += len(data.cancelled)
            if self.slots is not None:
                self.slots.release()

    def give_up(self) -> None:
        """Count what is still unanswered, each with the time it has waited so far: a
        latency that is at least that, rather than none."""
        now = trio.current_time()
        for op, since in self.pending.values():
            placing = op in ("order.place", "orders.place_batch")
            (self.tally.places if placing else self.tally.cancels).append(now - since)
        self.tally.unanswered += len(self.pending)
        self.pending.clear()

    def _placed(self, status: int, data: AnswerData | None) -> None:
        self.tally.statuses[f"order {status}"] += 1
        if data is not None:
            self.tally.order_statuses[data.status] += 1
            self.resting.record(data.order_id, data.status)

    async def closed_loop(self, deadline: float) -> None:
        assert self.slots is not None
        while trio.current_time() < deadline:
            await self.slots.acquire()
            await self._place_or_cancel(trio.current_time())

    async def open_loop(self, schedule: Schedule, client: int, seconds: float) -> None:
        for nth in range(schedule.count(client, seconds)):
            due = schedule.at(client, nth)
            await trio.sleep_until(due)
            self.tally.lags.append(trio.current_time() - due)
            await self._place_or_cancel(due)

    async def _place_or_cancel(self, since: float) -> None:
        """The next request: while over the cap, a cancel of the oldest resting order (all
        of them in batch mode); else a new order (a batch)."""
        if self.batch_size > 1:
            if self.resting.over():
                self.resting.ids.clear()
                await self._send("orders.cancel_all", {}, since)
            else:
                batch = {"orders": self.flow.batch(self.batch_size)}
                await self._send("orders.place_batch", batch, since)
        elif self.resting.over():
            (order_id,) = self.resting.oldest()
            await self._send("order.cancel", {"order_id": order_id}, since)
        else:
            await self._send("order.place", self.flow.next_order(), since)


async def ws_orders(
    url: str, keys: list[str], flows: list[OrderFlow], *, duration: float, in_flight: int,
    rate: float, max_resting: int, batch_size: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """Run ``len(flows)`` connections (see the module docstring); the figures as a dict."""
    tally = _Tally()
    go = trio.Event()
    schedule: Schedule | None = None
    connections = len(flows)

    async def connection(index: int, task_status: trio.TaskStatus[None]) -> None:
        async with open_websocket_url(ws_url(url)) as ws:
            await authenticate(ws, keys[index % len(keys)])
            slots = trio.Semaphore(in_flight) if rate <= 0 else None
            resting = Resting(max_resting)
            conn = _Connection(ws, flows[index], resting, tally, slots, batch_size)
            task_status.started()
            await go.wait()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.receive)
                if schedule is None:
                    await conn.closed_loop(tally.start + duration)
                else:
                    await conn.open_loop(schedule, index, duration)
                with trio.move_on_after(DRAIN_SECONDS):
                    await _answered(conn)
                nursery.cancel_scope.cancel()
            conn.give_up()

    async with trio.open_nursery() as nursery:
        for index in range(connections):
            await nursery.start(connection, index)
        tally.start = trio.current_time() + 0.05
        if rate > 0:
            schedule = Schedule(tally.start, rate, connections)
        go.set()
    seconds = max(tally.last_answer - tally.start, 1e-9)
    placed = sum(v for k, v in tally.statuses.items() if k.startswith("order "))
    requests = tally.answered
    result: dict[str, Any] = {
        "mode": "ws" if batch_size == 1 else "ws-batch",
        "loop": "open" if rate > 0 else "closed",
        "connections": connections,
        "in_flight": in_flight if rate <= 0 else "unbounded",
        "offered_rate": rate or "max",
        "seconds": round(seconds, 3),
        "orders": placed,
        "orders_per_sec": round(tally.statuses["order 201"] / seconds),
        "requests": requests,
        "requests_per_sec": round(requests / seconds),
        **latency_ms(tally.places),
        "cancels": len(tally.cancels),
        **latency_ms(tally.cancels, "cancel_"),
        "statuses": dict(sorted(tally.statuses.items())),
        "order_statuses": dict(sorted(tally.order_statuses.items())),
        "unanswered": tally.unanswered,
    }
    if batch_size > 1:
        result |= {"batch_size": batch_size, "cancelled_by_cancel_all": tally.cancelled_all}
    if rate > 0:
        lags = latency_ms(tally.lags, "send_lag_")
        result |= {k: v for k, v in lags.items() if k in ("send_lag_p99_ms", "send_lag_max_ms")}
    return result


async def _answered(conn: _Connection) -> None:
    while conn.pending:
        await trio.sleep(0.01)
