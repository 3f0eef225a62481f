"""Market data published to a real Redis server, as another front end would read it."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from itertools import pairwise

import pytest
import redis.asyncio as aioredis
import trio

from tests.redis_server import RedisServer, free_port
from trading_engine.actors.engine import open_engine
from trading_engine.actors.fanout import FanoutActor
from trading_engine.actors.messages import OrderRequest, OrderResult
from trading_engine.config import EngineConfig
from trading_engine.core.enums import OrderType, Side
from trading_engine.core.ids import UserId
from trading_engine.core.instruments import Instrument
from trading_engine.storage.bridge import open_bridge
from trading_engine.storage.journal import InMemoryJournal, StorageUnavailable
from trading_engine.storage.limits import (
    REDIS_RETRY,
    Leases,
    Limits,
    RedisLimiter,
    connect_redis_limiter,
)
from trading_engine.storage.redis import RedisPublisher, connect_client, open_redis_publisher

BTC = Instrument.create("BTC_AIT", "BTC", "AIT", "0.01", "0.0001", price_band_pct="10")
ALICE, BOB = UserId("alice"), UserId("bob")


async def _listen(url: str, channels: list[str], count: int) -> list[dict[str, object]]:
    """Subscribe through the bridge, as a front end would, and collect ``count`` messages."""

    async def collect(ready: asyncio.Event) -> list[dict[str, object]]:
        client = aioredis.Redis.from_url(url)
        pubsub = client.pubsub()
        await pubsub.subscribe(*channels)
        ready.set()
        got: list[dict[str, object]] = []
        deadline = asyncio.get_running_loop().time() + 10
        while len(got) < count and asyncio.get_running_loop().time() < deadline:
            # None also comes back for an ignored subscribe confirmation: keep waiting.
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                got.append(json.loads(message["data"]))
        await pubsub.aclose()
        await client.aclose()
        return got

    async with open_bridge("redis-test") as bridge:
        ready = asyncio.Event()
        return await bridge.call(collect, ready)


async def test_book_deltas_and_trades_reach_redis_with_an_unbroken_seq_chain(
    redis_url: str,
) -> None:
    received: list[dict[str, object]] = []
    config = EngineConfig(expire_every=float("inf"))
    async with (
        open_redis_publisher(redis_url) as publisher,
        open_engine(config, InMemoryJournal(), publisher) as engine,
    ):
        await engine.add_symbol(BTC)
        for user in (ALICE, BOB):
            await engine.create_user(user, f"hash-{user}")
            await engine.deposit(user, "AIT", 10**14)
            await engine.deposit(user, "BTC", 10**12)

        async def listen() -> None:
            received.extend(
                await _listen(redis_url, ["te:book.BTC_AIT", "te:trades.BTC_AIT"], count=9)
            )

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listen)
                await trio.sleep(0.5)  # the subscription is in place
                for i in range(5):
                    sell = OrderRequest(
                        BOB, BTC.symbol, Side.SELL, OrderType.LIMIT, 10, 100_000 + i
                    )
                    assert isinstance(await engine.submit(sell), OrderResult)
                buy = OrderRequest(ALICE, BTC.symbol, Side.BUY, OrderType.LIMIT, 25, 100_004)
                assert isinstance(await engine.submit(buy), OrderResult)
    deltas = [m for m in received if m["channel"] == "book.BTC_AIT"]
    trades = [m for m in received if m["channel"] == "trades.BTC_AIT"]
    assert len(deltas) == 6, received
    assert all(d["type"] == "delta" for d in deltas)
    assert all(later["prev_seq"] == earlier["seq"] for earlier, later in pairwise(deltas))
    assert [t["price"] for t in trades] == ["1000", "1000.01", "1000.02"]
    assert [t["quantity"] for t in trades] == ["0.001", "0.001", "0.0005"]


async def test_an_unreachable_redis_fails_the_publisher_at_its_start() -> None:
    """So ``serve`` with a REDIS_URL that does not answer fails at the start, not later."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(StorageUnavailable):
        async with open_redis_publisher(url):
            pass


async def test_a_redis_that_does_not_answer_is_named_without_its_password() -> None:
    url = f"redis://te:s3cret-pass@127.0.0.1:{free_port()}/0"
    with pytest.raises(StorageUnavailable) as refused:
        async with open_redis_publisher(url):
            pass
    assert "s3cret-pass" not in str(refused.value)
    assert f"te:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in str(refused.value)


async def test_rate_limits_in_redis_are_shared_between_limiters(redis_url: str) -> None:
    limits = Limits(rate=0.5, burst=2)
    async with open_bridge("a") as first_bridge, open_bridge("b") as second_bridge:
        first = await connect_redis_limiter(limits, first_bridge, redis_url)
        second = await connect_redis_limiter(limits, second_bridge, redis_url)
        assert await first.take("key") == 0
        assert await second.take("key") == 0
        assert await first.take("key") > 0  # the burst of 2 is spent, across both
        assert await second.take("other") == 0
        await first.close()
        await second.close()


async def test_rate_limits_are_kept_in_process_while_redis_is_down(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis outage costs the limits their sharing, not every request a 500: each
    process limits on its own until Redis answers again, then shares again."""
    now = [0.0]
    async with open_bridge("limits") as bridge:
        client = await connect_client(bridge, redis_server.url)
        limiter = RedisLimiter(Limits(rate=0.5, burst=2), bridge, client, lambda: now[0])
        assert await limiter.take("key") == 0  # Redis's bucket: one of two tokens left

        redis_server.stop()
        # This process's own bucket, full: two requests go on, the third waits.
        assert await limiter.take("key") == 0
        assert await limiter.take("key") == 0
        assert await limiter.take("key") > 0
        assert "rate limits kept in this process" in caplog.text

        redis_server.start()  # a fresh server: its buckets are full
        shared = False
        for _ in range(5):  # the client may need a failed call to find the new server
            now[0] += REDIS_RETRY
            if await limiter.take("key") == 0 and "answers again" in caplog.text:
                shared = True
                break
        assert shared

        async def tokens_in_redis() -> float:
            direct = aioredis.Redis.from_url(redis_server.url)
            try:
                tokens = await direct.hget("te:rl:key", "tokens")
                assert tokens is not None
                return float(tokens)
            finally:
                await direct.aclose()

        assert await bridge.call(tokens_in_redis) < 2  # the request was counted there
        await limiter.close()


async def test_market_data_publishing_outlives_a_redis_outage(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """While Redis is down the fan-out counts what it could not publish and says so
    once; when Redis is back it publishes again, and says what was lost."""
    send, receive = trio.open_memory_channel[tuple[str, str]](100)
    async with open_bridge("fanout") as bridge, trio.open_nursery() as nursery:
        publisher = await RedisPublisher.connect(bridge, redis_server.url)
        fanout = FanoutActor(publisher, receive)
        nursery.start_soon(fanout.run)

        async def published(count: int) -> None:
            while fanout.published + fanout.failed < count:
                await trio.sleep(0.01)

        with trio.fail_after(20):
            await send.send(("trades.BTC_AIT", '{"n":1}'))
            await published(1)
            redis_server.stop()
            for n in range(2, 5):
                await send.send(("trades.BTC_AIT", f'{{"n":{n}}}'))
                await published(n)
            assert (fanout.published, fanout.failed) == (1, 3)
            assert caplog.text.count("not published until Redis answers") == 1

            redis_server.start()
            got: list[dict[str, object]] = []  # what another front end receives

            async def listen() -> None:
                got.extend(await _listen(redis_server.url, ["te:trades.BTC_AIT"], count=1))

            nursery.start_soon(listen)
            await trio.sleep(0.5)  # the subscription is in place
            n = 5
            while not got:  # the client may need a failed call to find the new server
                await send.send(("trades.BTC_AIT", f'{{"n":{n}}}'))
                n += 1
                await trio.sleep(0.1)
            assert f"published again; {fanout.failed} messages were not" in caplog.text
            assert fanout.failed >= 3
            first = got[0]["n"]
            assert isinstance(first, int)
            assert first > 4  # sent after the outage
        send.close()
        await publisher.close()


async def test_during_a_redis_outage_one_request_at_a_time_asks_if_it_is_back(
    redis_server: RedisServer,
) -> None:
    """A Redis that hangs (stopped with SIGSTOP) costs the request that asks it the
    client's socket timeout; the others are limited in-process meanwhile."""
    now = [0.0]
    async with open_bridge("limits") as bridge:

        async def connect() -> aioredis.Redis:
            client = aioredis.Redis.from_url(redis_server.url, socket_timeout=2)
            await client.ping()
            return client

        client = await bridge.call(connect)
        limiter = RedisLimiter(Limits(rate=100, burst=100), bridge, client, lambda: now[0])
        redis_server.signal(signal.SIGSTOP)
        with trio.fail_after(10):
            assert await limiter.take("key") == 0  # after the timeout, in-process
            now[0] += REDIS_RETRY
            start, done = trio.current_time(), []

            async def request(n: int) -> None:
                assert await limiter.take(f"key{n}") == 0
                done.append(trio.current_time() - start)

            async with trio.open_nursery() as nursery:
                for n in range(10):
                    nursery.start_soon(request, n)
        done.sort()
        assert done[8] < 1.0  # nine at once
        assert done[9] >= 1.5  # the one that asked Redis, after the timeout
        redis_server.signal(signal.SIGCONT)
        await limiter.close()


async def _redis(url: str, *command: object) -> object:
    """One command to Redis at ``url`` on a client of its own, as an operator would send it."""

    async def send() -> object:
        direct = aioredis.Redis.from_url(url)
        try:
            return await direct.execute_command(*command)  # type: ignore[no-untyped-call]
        finally:
            await direct.aclose()

    async with open_bridge("redis-command") as bridge:
        return await bridge.call(send)


async def _script_calls(url: str) -> int:
    """Script calls (``EVAL`` and ``EVALSHA``) Redis ran since its counters were reset."""
    stats = await _redis(url, "INFO", "commandstats")
    assert isinstance(stats, dict)
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("eval", "evalsha")
    )


async def test_takes_that_arrive_while_a_call_is_on_its_way_go_to_redis_in_one_call(
    redis_server: RedisServer,
) -> None:
    """Redis is frozen while the first take's call is on its way; the five takes that
    arrive meanwhile go in the next call together, each answered from its own bucket
    (a key twice takes two tokens)."""
    async with open_bridge("limits") as bridge:
        limiter = await connect_redis_limiter(Limits(rate=0.5, burst=2), bridge, redis_server.url)
        assert await limiter.take("warm-up") == 0  # Redis has the script now
        await _redis(redis_server.url, "CONFIG", "RESETSTAT")
        waits: dict[str, list[float]] = {"a": [], "b": []}

        async def take(key: str) -> None:
            waits[key].append(await limiter.take(key))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                redis_server.signal(signal.SIGSTOP)
                nursery.start_soon(take, "a")
                await trio.sleep(0.2)  # its call waits for Redis
                for key in ("a", "a", "b", "b"):
                    nursery.start_soon(take, key)
                await trio.sleep(0.2)
                redis_server.signal(signal.SIGCONT)
        assert await _script_calls(redis_server.url) == 2
        assert waits["b"] == [0, 0]
        assert sorted(waits["a"])[:2] == [0, 0]
        assert sorted(waits["a"])[2] > 0  # the burst of 2 was spent by the other two
        await limiter.close()


async def test_leases_in_front_of_redis_take_a_busy_buckets_tokens_a_lease_a_call(
    redis_server: RedisServer,
) -> None:
    """A burst of 100 through ``Leases``: a script call per lease, not per take, and the
    101st refused, as Redis's bucket alone would refuse it."""
    async with open_bridge("limits") as bridge:
        limiter = await connect_redis_limiter(
            Limits(rate=0.001, burst=100), bridge, redis_server.url
        )
        assert await limiter.take("warm-up") == 0
        await _redis(redis_server.url, "CONFIG", "RESETSTAT")
        leases = Leases(limiter)
        waits = [await leases.take("key") for _ in range(101)]
        assert [wait == 0 for wait in waits] == [True] * 100 + [False]
        assert await _script_calls(redis_server.url) < 20
        await limiter.close()


async def test_a_request_cancelled_while_its_take_waits_leaves_the_others_answered(
    redis_server: RedisServer,
) -> None:
    """The request whose call is on its way and one whose take is queued are both
    cancelled: the call (shielded) still answers what it carries, its own request
    included, the queued take is dropped, and the other queued takes go to Redis in one
    call."""
    async with open_bridge("limits") as bridge:
        limiter = await connect_redis_limiter(Limits(rate=100, burst=100), bridge, redis_server.url)
        assert await limiter.take("warm-up") == 0
        await _redis(redis_server.url, "CONFIG", "RESETSTAT")
        answered: list[str] = []

        async def take(key: str, scope: trio.CancelScope) -> None:
            with scope:
                assert await limiter.take(key) == 0
                answered.append(key)

        scopes = {key: trio.CancelScope() for key in ("first", "q1", "q2", "q3")}
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                redis_server.signal(signal.SIGSTOP)
                nursery.start_soon(take, "first", scopes["first"])
                await trio.sleep(0.2)
                for key in ("q1", "q2", "q3"):
                    nursery.start_soon(take, key, scopes[key])
                await trio.sleep(0.1)
                scopes["first"].cancel()
                scopes["q1"].cancel()
                await trio.sleep(0.1)
                redis_server.signal(signal.SIGCONT)
        assert sorted(answered) == ["first", "q2", "q3"]
        assert await _script_calls(redis_server.url) == 2
        assert await _redis(redis_server.url, "EXISTS", "te:rl:first") == 1  # it was sent
        assert await _redis(redis_server.url, "EXISTS", "te:rl:q1") == 0  # it was not
        await limiter.close()


async def test_a_batch_of_market_data_is_one_call_to_redis_and_arrives_in_order(
    redis_url: str,
) -> None:
    got: list[dict[str, object]] = []
    async with open_redis_publisher(redis_url) as publisher:
        await publisher.publish([("trades.BTC_AIT", '{"n":0}')])  # Redis has the script now
        await _redis(redis_url, "CONFIG", "RESETSTAT")

        async def listen() -> None:
            got.extend(await _listen(redis_url, ["te:trades.BTC_AIT"], count=100))

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listen)
                await trio.sleep(0.5)  # the subscription is in place
                await publisher.publish([("trades.BTC_AIT", f'{{"n":{n}}}') for n in range(1, 101)])
    assert [message["n"] for message in got] == list(range(1, 101))
    assert await _script_calls(redis_url) == 1


async def test_the_limiter_outlives_requests_cancelled_at_any_moment(redis_url: str) -> None:
    """Requests cancelled at random moments (as Hypercorn cancels those of a closed
    connection), among them ones handed the next call just as their cancellation was
    decided: every round, a take afterwards is still answered from Redis."""
    rng = random.Random(1)
    async with open_bridge("limits") as bridge:
        limiter = await connect_redis_limiter(
            Limits(rate=100_000, burst=100_000), bridge, redis_url
        )
        for _ in range(100):
            scopes = [trio.CancelScope() for _ in range(32)]

            async def request(scope: trio.CancelScope, n: int) -> None:
                with scope:
                    for _ in range(5):
                        assert await limiter.take(f"key{n}") == 0
                        await trio.sleep(0)

            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    for n, scope in enumerate(scopes):
                        nursery.start_soon(request, scope, n)
                    await trio.sleep(rng.random() * 0.003)
                    for scope in scopes:
                        if rng.random() < 0.5:
                            scope.cancel()
                assert await limiter.take("after") == 0
        await limiter.close()
