"""Faults over real processes: a gateway killed, Redis restarted, a gateway frozen.

Each test runs an engine and two gateways (``tests/gateway/processes.py``) on real
Redis and PostgreSQL, keeps one gateway busy (orders placed through it, a WebSocket
subscriber reading its book) while the fault hits, and checks that nothing
acknowledged is lost and that what the fault did not touch kept serving.
"""

from __future__ import annotations

import itertools
import signal
from decimal import Decimal
from typing import Any

import httpx
import redis
import trio

from tests.gateway.processes import (
    ALICE,
    BOB,
    BookWatcher,
    Cluster,
    client,
    limit_order,
    orders_of,
    ready_client,
    until_ready,
    until_unready,
    watching,
)
from tests.redis_server import RedisServer


class Placer:
    """Places buy orders through a gateway, one every ``every`` seconds, at prices a tick
    apart; keeps every answer and how long it took. When a gateway's connection breaks
    it goes on through the next of ``fallbacks``, as a client behind a load balancer."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        prefix: str,
        base: Decimal,
        fallbacks: tuple[httpx.AsyncClient, ...] = (),
    ) -> None:
        self.http = http
        self.fallbacks = list(fallbacks)
        self.prefix = prefix
        self.base = base
        self.sent = 0
        self.stopping = False
        """Set it to stop once the order under way is answered (``done`` is set then)."""
        self.done = trio.Event()
        self.answers: list[tuple[str, int, str, float]] = []
        """(client_order_id, status, error code or order id, seconds taken)."""

    def order(self, n: int) -> dict[str, Any]:
        return limit_order(str(self.base + Decimal(n) / 100), f"{self.prefix}-{n}")

    async def run(self, every: float = 0.05) -> None:
        while not self.stopping:
            body = self.order(self.sent)
            self.sent += 1
            started = trio.current_time()
            try:
                response = await self.http.post("/orders", json=body)
            except httpx.TransportError:
                self.answers.append((body["client_order_id"], 0, "transport", 0.0))
                if self.fallbacks:
                    self.http = self.fallbacks.pop(0)
            else:
                taken = trio.current_time() - started
                reply = response.json()
                what = reply.get("order_id") or reply.get("error", {}).get("code", "")
                self.answers.append((body["client_order_id"], response.status_code, what, taken))
            await trio.sleep(every)
        self.done.set()

    async def stop(self) -> None:
        """Stop once the order under way is answered."""
        self.stopping = True
        with trio.fail_after(10):
            await self.done.wait()

    def prices(self) -> list[str]:
        """The prices of the orders answered 201, as a book shows them."""
        return [str(self.base + int(cid.rsplit("-", 1)[1]) / Decimal(100))
                for cid, status, _, _ in self.answers if status == 201]  # fmt: skip

    async def until_seen_by(self, watcher: BookWatcher) -> None:
        """Wait until ``watcher`` (read by another task) holds every order answered 201."""
        with trio.fail_after(5):
            while any(watcher.bids.get(price) != "0.01" for price in self.prices()):
                await trio.sleep(0.02)

    def acknowledged(self) -> dict[str, str]:
        """client_order_id to order id, of the orders answered 200 or 201."""
        return {cid: what for cid, status, what, _ in self.answers if status in (200, 201)}


async def _order_ids(http: httpx.AsyncClient, user: str) -> dict[str, list[str]]:
    """The user's orders (open and recent) by client_order_id."""
    out: dict[str, list[str]] = {}
    for order in await orders_of(http, user):
        out.setdefault(order["client_order_id"], []).append(order["order_id"])
    return out


def _max_gap(arrivals: list[float], start: float, end: float) -> float:
    """The longest time without a message within ``[start, end]``."""
    times = [start, *(t for t in arrivals if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(times))


async def test_a_gateway_killed_loses_nothing_acknowledged_and_the_other_keeps_serving(
    cluster: Cluster,
) -> None:
    """Gateway A is SIGKILLed while orders go through both: its WebSocket client sees the
    connection end and resubscribes on B, whose snapshot holds every order A acknowledged;
    B's orders and B's subscriber never pause."""
    async with (
        cluster.engine(),
        cluster.gateway() as url_a,
        cluster.gateway() as url_b,
        ready_client(url_a, ALICE) as alice_a,
        ready_client(url_b, ALICE) as alice_b,
        client(url_b, BOB) as bob_b,
    ):
        through_a = Placer(alice_a, "a", Decimal(100), fallbacks=(alice_b,))
        through_b = Placer(bob_b, "b", Decimal(96))
        async with watching(url_a) as on_a, watching(url_b) as on_b, trio.open_nursery() as n:
            n.start_soon(through_a.run)
            n.start_soon(through_b.run)
            n.start_soon(on_b.read_forever)
            await trio.sleep(1.0)
            killed_at = trio.current_time()
            cluster.processes[url_a].kill()
            # A's subscriber sees its connection end.
            with trio.fail_after(5):
                await on_a.until_closed()
            await trio.sleep(1.5)
            await through_a.stop()
            await through_b.stop()
            await through_b.until_seen_by(on_b)
            n.cancel_scope.cancel()
        # Nothing A acknowledged is lost: B finds every order, and its book has them.
        acknowledged = through_a.acknowledged()
        assert len(acknowledged) >= 5, through_a.answers
        held = await _order_ids(alice_b, ALICE)
        for client_order_id, order_id in acknowledged.items():
            assert held.get(client_order_id) == [order_id]
        async with watching(url_b) as again:
            for n_ in range(through_a.sent):
                price = str(through_a.base + Decimal(n_) / 100)
                if f"a-{n_}" in acknowledged:
                    assert again.bids.get(price) == "0.01", (price, again.bids)
        # B never noticed: every order answered, promptly, and its subscriber read all along.
        assert through_b.answers
        assert all(status == 201 for _, status, _, _ in through_b.answers)
        assert max(taken for *_, taken in through_b.answers) < 2.0
        assert _max_gap(on_b.arrivals, killed_at, killed_at + 2.0) < 1.0


async def test_redis_restarted_gives_503_then_everything_resumes_with_nothing_lost(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    """Redis is stopped (every key gone) and started again: while it is down both gateways
    answer 503; then the engine and both gateways resume by themselves, every order
    acknowledged is there, resends of those left unanswered never duplicate, and a
    WebSocket client (dropped by its gateway) subscribes again to a fresh snapshot."""
    async with (
        cluster.engine(),
        cluster.gateway() as url_a,
        cluster.gateway() as url_b,
        ready_client(url_a, ALICE) as alice_a,
        ready_client(url_b, ALICE) as alice_b,
    ):
        placer = Placer(alice_a, "r", Decimal(100))
        async with watching(url_a) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(placer.run, 0.02)
            await trio.sleep(0.5)
            await trio.to_thread.run_sync(redis_server.stop)
            # The WebSocket client is dropped: its gateway may have missed messages.
            with trio.fail_after(5):
                await watcher.until_closed()
            with trio.fail_after(5):
                for http in (alice_a, alice_b):
                    await until_unready(http)
            # A gateway takes the engine for stopped once its heartbeat has been unreadable
            # for a heartbeat's life (2 s); a request under way then is answered 503 too.
            down = len(placer.answers)
            await trio.sleep(3.0)
            during = placer.answers[down:]
            assert during, "no order was tried while Redis was down"
            assert all(status == 503 for _, status, _, _ in during), during
            await trio.to_thread.run_sync(redis_server.start)
            await until_ready(alice_a, 15)
            await until_ready(alice_b, 15)
            await trio.sleep(0.5)
            nursery.cancel_scope.cancel()
        assert placer.answers[-1][1] == 201, placer.answers[-5:]
        # Every order acknowledged is there; resending the others finds or places each
        # once, through either gateway.
        acknowledged = placer.acknowledged()
        for n in range(placer.sent):
            body = placer.order(n)
            if body["client_order_id"] not in acknowledged:
                resent = await alice_b.post("/orders", json=body)
                assert resent.status_code in (200, 201), resent.text
                acknowledged[body["client_order_id"]] = resent.json()["order_id"]
        held = await _order_ids(alice_b, ALICE)
        assert {cid: ids for cid, ids in held.items() if cid.startswith("r-")} == {
            cid: [order_id] for cid, order_id in acknowledged.items()
        }
        # A new subscriber gets a fresh snapshot, with every order, and the deltas after it.
        async with watching(url_a) as fresh:
            assert len(fresh.bids) == placer.sent
            placed = await alice_b.post("/orders", json=limit_order("99.5", "after"))
            assert placed.status_code == 201
            await fresh.read_until(lambda w: "99.5" in w.bids)


async def test_a_frozen_gateway_never_slows_the_engine_or_the_other_gateway(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    """Gateway A is frozen (SIGSTOP) while orders go through B, and its Redis connection
    falls so far behind that Redis cuts it: B's orders and B's subscriber keep their pace
    throughout; once A runs again it drops its subscribers (it may have missed
    messages), and one that subscribes again gets the engine's book."""
    with redis.Redis.from_url(redis_server.url) as raw:
        async with (
            cluster.engine(),
            cluster.gateway() as url_a,
            cluster.gateway() as url_b,
            ready_client(url_a, ALICE),  # A is ready before it is frozen
            ready_client(url_b, BOB) as bob_b,
        ):
            placer = Placer(bob_b, "s", Decimal(96))
            # A subscriber more than 1 MB behind for 2 s is cut by Redis (the default: 8 MB
            # for 60 s, or 32 MB at once); one that reads, however busy, catches up sooner.
            raw.config_set("client-output-buffer-limit", "pubsub 0 1mb 2")
            async with (
                watching(url_a) as on_a,
                watching(url_b) as on_b,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(on_b.read_forever)
                cluster.processes[url_a].send_signal(signal.SIGSTOP)
                frozen_at = trio.current_time()
                nursery.start_soon(placer.run, 0.02)
                await trio.sleep(1.0)
                # Fill what Redis holds for A (on a channel every gateway listens to) past the
                # limit, as a feed far faster than A would, until Redis cuts A: how much the
                # kernel's buffers take first depends on the machine.
                with trio.fail_after(30):
                    while raw.pubsub_numsub("te:gateway:feed")[0][1] > 1:
                        for _ in range(16):
                            raw.publish("te:gateway:feed", b"x" * 65536)
                        await trio.sleep(0.1)
                await trio.sleep(0.5)  # B's deltas go on while A is cut and still frozen
                thawed_at = trio.current_time()
                cluster.processes[url_a].send_signal(signal.SIGCONT)
                with trio.fail_after(10):
                    await on_a.until_closed()
                await placer.stop()
                await placer.until_seen_by(on_b)
                nursery.cancel_scope.cancel()
            answers = placer.answers
            assert len(answers) >= 20, answers
            assert all(status == 201 for _, status, _, _ in answers), answers
            assert max(taken for *_, taken in answers) < 1.0
            assert _max_gap(on_b.arrivals, frozen_at + 0.2, thawed_at) < 0.5
            # The last order may have been placed after B's subscriber stopped reading: the
            # engine's book is the one to match.
            book = (await bob_b.get("/orderbook/BTC_AIT?depth=1000")).json()
            async with watching(url_a) as again:
                assert again.bids == dict(map(tuple, book["bids"]))
