"""Rate limits per caller (or per client address without a valid key): token buckets.

A valid key's bucket is its user's (``user:<id>``, or ``admin``), never the
key itself, which Redis would otherwise show to anyone who can list its
keys; a request without a valid key uses its address's (``ip:<address>``).
Each bucket has ``burst`` tokens refilled at ``rate`` per second; a
request takes one, and a request finding the bucket empty gets 429 with
``Retry-After`` (whole seconds until a token is back). In-process by
default; with ``REDIS_URL`` the buckets live in Redis (one Lua script, so the
check-and-take is atomic), shared by every front-end process, and the takes
of concurrent requests go to Redis together, one script call per round trip
through the asyncio bridge (``docs/decisions/0020-redis-takes-gathered.md``).
While Redis does not answer, each process limits with buckets of its own (so
a key may get its rate from each front end) rather than refusing every
request, and asks Redis again a second (``REDIS_RETRY``) after it last
failed.

In front of Redis, ``Leases`` takes a busy bucket's tokens ahead, a few at a
time, and spends them in this process: a key sending fast costs a Redis
call per lease (up to ``LEASE`` requests), not per request.

Beside the bucket, ``take_counted`` counts what a key used, as Binance's
``X-MBX-USED-WEIGHT-1M`` and ``X-MBX-ORDER-COUNT-10S``/``-1D`` headers tell it
(``Usage``): the tokens taken in the current UTC minute, and the orders in the
current 10 seconds and UTC day (fixed windows, as Binance's). In Redis the
counters sit beside the bucket (``te:rl:<bucket>:1:<minute>``, ``:2:`` and ``:3:``)
and the same script call updates them, so they cost no round trip more.

Configuration: ``RATE_LIMIT_PER_SEC`` (default 200) and ``RATE_LIMIT_BURST``
(default 400); ``RATE_LIMIT_PER_SEC=0`` turns limits off.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

from trading_engine.storage.bridge import Bridge
from trading_engine.storage.journal import StorageUnavailable

__all__ = [
    "REDIS_RETRY",
    "Leases",
    "Limiter",
    "Limits",
    "LocalLimiter",
    "RedisLimiter",
    "Usage",
    "connect_redis_limiter",
    "limits_from_env",
]

log = logging.getLogger(__name__)


@attrs.frozen
class Limits:
    rate: float
    burst: int


def limits_from_env() -> Limits | None:
    rate = float(os.environ.get("RATE_LIMIT_PER_SEC", "200"))
    burst = int(os.environ.get("RATE_LIMIT_BURST", "400"))
    return None if rate <= 0 else Limits(rate, max(burst, 1))


@attrs.frozen
class Usage:
    """What a key used in the current windows (``take_counted``)."""

    weight_1m: int
    """Tokens taken this UTC minute."""
    orders_10s: int
    """Orders counted in these 10 seconds (since the epoch)."""
    orders_1d: int
    """Orders counted this UTC day."""


_WINDOWS = (60, 10, 86_400)
"""The counters' fixed windows in seconds: weight a minute, orders in 10 s and a day."""


class Limiter(Protocol):
    async def take(self, key: str, cost: int = 1) -> float:
        """0 if the request may go on (``cost`` tokens taken from ``key``'s bucket, a batch
        taking one per item), else the seconds until it may retry (none taken)."""
        ...

    async def take_counted(self, key: str, cost: int = 1, orders: int = 0) -> tuple[float, Usage]:
        """``take``, and the key's ``Usage`` after it: a take that went on adds ``cost``
        to its weight and ``orders`` to its order counts."""
        ...


_MAX_BUCKETS = 100_000
"""Buckets kept before those idle for a minute are forgotten."""


class LocalLimiter:
    """Token buckets in this process."""

    def __init__(
        self,
        limits: Limits,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._wall = wall
        self._buckets: dict[str, tuple[float, float]] = {}
        self._counts: dict[str, tuple[tuple[int, int], ...]] = {}
        """Per key, each of ``_WINDOWS``: the window's number and the count in it."""

    async def take(self, key: str, cost: int = 1) -> float:
        wait, _ = await self.take_counted(key, cost)  # counted as in Redis
        return wait

    async def take_counted(self, key: str, cost: int = 1, orders: int = 0) -> tuple[float, Usage]:
        wait = self.take_now(key, cost)
        return wait, self.count(key, 0 if wait > 0 else cost, 0 if wait > 0 else orders)

    def count(self, key: str, cost: int, orders: int) -> Usage:
        """Add ``cost`` and ``orders`` to ``key``'s counters; its ``Usage``."""
        now = int(self._wall())
        if key not in self._counts and len(self._counts) >= _MAX_BUCKETS:
            day = now // _WINDOWS[2]
            self._counts = {k: v for k, v in self._counts.items() if v[2][0] == day}
        kept = self._counts.get(key, ((0, 0), (0, 0), (0, 0)))
        counts = tuple(
            (window, (count if number == window else 0) + added)
            for (number, count), window, added in zip(
                kept, (now // length for length in _WINDOWS), (cost, orders, orders), strict=True
            )
        )
        self._counts[key] = counts
        return Usage(counts[0][1], counts[1][1], counts[2][1])

    def take_now(self, key: str, cost: int = 1) -> float:
        now = self._clock()
        rate, burst = self._limits.rate, self._limits.burst
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:  # forget idle keys now and then
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            bucket = (float(burst), now)
        tokens, last = bucket
        tokens = min(float(burst), tokens + (now - last) * rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / rate


_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local ttl = math.ceil(burst / rate) + 1
local waits = {}
for i, key in ipairs(KEYS) do
  local state = redis.call('HMGET', key, 'tokens', 'last')
  local tokens = tonumber(state[1]) or burst
  local last = tonumber(state[2]) or now
  -- never less than none elapsed: "last" is kept to 14 digits, and may be a
  -- little ahead of "now" (rounded up, or from a front end whose clock is ahead)
  tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
  local cost = tonumber(ARGV[3 + i])
  local wait = 0
  if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'last', tostring(now))
  redis.call('EXPIRE', key, ttl)
  local orders = tonumber(ARGV[3 + #KEYS + i])
  if wait > 0 then cost = 0; orders = 0 end
  local counted = {}
  for w, length in ipairs({60, 10, 86400}) do
    local counter = key .. ':' .. w .. ':' .. math.floor(now / length)
    local added = cost
    if w > 1 then added = orders end
    counted[w] = redis.call('INCRBY', counter, added)
    if counted[w] == added then redis.call('EXPIRE', counter, length + 1) end
  end
  waits[i] = tostring(wait) .. ' ' .. counted[1] .. ' ' .. counted[2] .. ' ' .. counted[3]
end
return waits
"""
"""One take per key, in the order given (a key twice takes twice), of the cost given
after the limits (``ARGV[3 + i]`` for ``KEYS[i]``), counting the orders given after the
costs (``ARGV[3 + #KEYS + i]``); each key's wait and ``Usage``, as one text."""


REDIS_RETRY = 1.0
"""Seconds a ``RedisLimiter`` limits in-process after Redis failed to answer."""


class _Take:
    """One request's take, queued until a script call carries it."""

    __slots__ = ("answered", "cost", "key", "leads", "left", "orders", "usage", "wait")

    def __init__(self, key: str, cost: int, orders: int) -> None:
        self.key = key
        self.cost = cost
        self.orders = orders
        self.answered = trio.Event()
        self.usage: Usage | None = None
        self.wait: float | None = None
        """The bucket's answer; None if Redis did not give one (limit in-process)."""
        self.leads = False
        """Woken to send the next script call, not with an answer."""
        self.left = False
        """Its request was cancelled while it waited: never hand it the next call."""


class RedisLimiter:
    """Token buckets in Redis under ``te:rl:<bucket>``, shared by every front end;
    in this process while Redis is unavailable.

    The takes of concurrent requests go to Redis together: while one script
    call is on its way, the takes that arrive queue, and the next call (sent
    by the first of them, once the call before has answered) carries them
    all, each key answered on its own. So a request costs a thread round trip
    only when no other is on its way, and under load one round trip serves
    many requests. The call is shielded from cancellation (the client's socket
    timeout bounds it), so a cancelled request never leaves the others that
    its call carries without an answer; a queued take whose request is
    cancelled is not sent, and passes on the next call if it was handed it.
    """

    def __init__(
        self,
        limits: Limits,
        bridge: Bridge,
        client: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from trading_engine.storage.redis import run_script  # noqa: PLC0415

        self._run_script = run_script  # imported here, not on each call
        self._limits = limits
        self._bridge = bridge
        self._client = client
        self._clock = clock
        self._local = LocalLimiter(limits, clock)
        self._retry_at: float | None = None  # while Redis is unavailable
        self._queue: list[_Take] = []  # takes waiting for the next script call
        self._sending = False  # a script call is on its way, or handed to a queued take

    async def close(self) -> None:
        from trading_engine.storage.redis import close_client  # noqa: PLC0415

        await close_client(self._bridge, self._client)

    async def take(self, key: str, cost: int = 1) -> float:
        wait, _ = await self.take_counted(key, cost)
        return wait

    async def take_counted(self, key: str, cost: int = 1, orders: int = 0) -> tuple[float, Usage]:
        if self._retry_at is not None and (self._sending or self._clock() < self._retry_at):
            # During an outage one request at a time asks (a Redis that hangs takes the
            # client's whole socket timeout to fail); the others go on meanwhile.
            return await self._local.take_counted(key, cost, orders)
        take = _Take(key, cost, orders)
        self._queue.append(take)
        if self._sending:
            try:
                await take.answered.wait()
            except trio.Cancelled:
                take.left = True
                if take.leads:
                    # Handed the next call after its cancellation was decided (the wake-up
                    # no longer reaches it): hand the call on, or nobody would send it.
                    self._sending = False
                    self._hand_on()
                raise
            if not take.leads:
                return self._answer(take)
        await self._send()
        return self._answer(take)

    def _answer(self, take: _Take) -> tuple[float, Usage]:
        if take.wait is None or take.usage is None:
            wait = self._local.take_now(take.key, take.cost)
            taken = wait <= 0
            return wait, self._local.count(take.key, take.cost * taken, take.orders * taken)
        return take.wait, take.usage

    async def _send(self) -> None:
        """Carry every queued take in one script call, answer each, then hand the
        next call to the first take queued meanwhile."""
        self._sending = True
        batch = [take for take in self._queue if not take.left]
        self._queue = []
        limits = self._limits
        try:
            with trio.CancelScope(shield=True):
                waits = await self._run_script(
                    self._bridge, self._client, _SCRIPT, ["te:rl:" + t.key for t in batch],
                    limits.rate, limits.burst, time.time(), *(t.cost for t in batch),
                    *(t.orders for t in batch),
                )  # fmt: skip
        except StorageUnavailable as exc:
            if self._retry_at is None:
                log.warning("rate limits kept in this process until Redis answers: %s", exc)
            self._retry_at = self._clock() + REDIS_RETRY
            # What queued meanwhile is limited in-process too, not sent to a Redis
            # that may hang again.
            batch += self._queue
            self._queue = []
        else:
            if self._retry_at is not None:
                log.warning("Redis answers again: rate limits are shared again")
                self._retry_at = None
            for take, answer in zip(batch, waits, strict=True):
                wait, weight, orders_10s, orders_1d = (
                    answer.decode() if isinstance(answer, bytes) else answer
                ).split()
                take.wait = float(wait)
                take.usage = Usage(int(weight), int(orders_10s), int(orders_1d))
        finally:
            self._sending = False
            for take in batch:
                take.answered.set()
            self._hand_on()

    def _hand_on(self) -> None:
        """Wake the first take still waiting in the queue to send the next call."""
        while self._queue:
            first = self._queue[0]
            if first.left:
                self._queue.pop(0)
                continue
            first.leads = True
            self._sending = True
            first.answered.set()
            return


async def connect_redis_limiter(limits: Limits, bridge: Bridge, url: str) -> RedisLimiter:
    """A limiter on Redis at ``url``; raises ``StorageUnavailable`` if it does not answer."""
    from trading_engine.storage.redis import connect_client  # noqa: PLC0415

    return RedisLimiter(limits, bridge, await connect_client(bridge, url))


LEASE = 16
"""The most tokens ``Leases`` takes ahead for one bucket."""
LEASE_SECONDS = 5.0
"""How long tokens taken ahead may be spent; then what is left of them lapses."""


@attrs.define
class _Lease:
    left: int = 0
    """Tokens taken ahead and not yet spent."""
    size: int = 1
    """Tokens the next take asks for."""
    until: float = -math.inf
    """When what is left lapses."""


class Leases:
    """A ``Limiter`` in front of another (Redis's) that takes a key's tokens ahead.

    A single-token take spends a token taken ahead if one is left and has not
    lapsed; else it takes a lease from the limiter behind: one token, and
    twice as many as last time when the last lease was spent before it
    lapsed, half as many when some of it lapsed, up to ``LEASE``. A lease the
    bucket cannot cover falls back to a single token, so a key is refused
    exactly when its bucket is empty. Tokens taken ahead are gone from the
    bucket, shared or not: a lease never lets more through than the limit
    lets, it only spends sooner what this process took (what lapses unspent,
    fewer than ``LEASE``, is lost to the key). Takes of more than one token
    (a batch's) go straight to the limiter behind, as do ``take_counted``'s, whose
    answer tells what the bucket counted (tokens taken ahead count as used when taken).
    """

    def __init__(self, limiter: Limiter, clock: Callable[[], float] = time.monotonic) -> None:
        self._limiter = limiter
        self._clock = clock
        self._leases: dict[str, _Lease] = {}

    async def take_counted(self, key: str, cost: int = 1, orders: int = 0) -> tuple[float, Usage]:
        return await self._limiter.take_counted(key, cost, orders)

    async def take(self, key: str, cost: int = 1) -> float:
        if cost != 1:
            return await self._limiter.take(key, cost)
        now = self._clock()
        lease = self._leases.get(key)
        if lease is None:
            if len(self._leases) >= _MAX_BUCKETS:  # forget the lapsed now and then
                self._leases = {k: v for k, v in self._leases.items() if now < v.until}
            lease = self._leases[key] = _Lease()
        elif now < lease.until and lease.left:
            lease.left -= 1
            return 0.0
        elif lease.left:
            lease.size = max(1, lease.size // 2)  # some of it lapsed: too large
        elif now < lease.until:
            lease.size = min(2 * lease.size, LEASE)  # spent in time: take more
        lease.left = 0
        size = lease.size
        wait = await self._limiter.take(key, size)
        if wait > 0 and size > 1:  # near the limit: a token at a time
            lease.size = size = 1
            wait = await self._limiter.take(key)
        if wait > 0:
            return wait
        # Added: a take that met another on its way to the limiter keeps what both took.
        lease.left += size - 1
        lease.until = self._clock() + LEASE_SECONDS
        return 0.0
