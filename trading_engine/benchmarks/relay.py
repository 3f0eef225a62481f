"""The engine benchmark's yardstick: a message relayed through two Trio channels and back.

The actor issue sets its throughput target against this: ``concurrency``
submitters each send a message with their reply channel into a first
channel, a task forwards it to a second, a second task answers on the reply
channel, and the submitter sends its next one. No work at all is done, so
the figure is what Trio's scheduling and channels cost on this machine at
that moment. An engine that does one such round trip per order, unbatched,
can go no faster; ``trading-engine bench engine`` runs this first, in the
same process, and prints both figures and their ratio, so a run on a slower
or busier machine can still be judged against the target's ratio (25,000
orders/s against a relay of about 37,000/s where the target was set).

Each submitter keeps one reply channel for all its messages (cheaper than
one per message, so the yardstick is the stricter of the two).
"""

from __future__ import annotations

import time

import trio

__all__ = ["relay_per_second"]


async def relay_per_second(messages: int = 100_000, concurrency: int = 400) -> int:
    """Messages relayed per second, ``messages`` in all from ``concurrency`` submitters."""
    into_first, first = trio.open_memory_channel[tuple[int, trio.MemorySendChannel[int]]](1000)
    into_second, second = trio.open_memory_channel[tuple[int, trio.MemorySendChannel[int]]](1000)

    async def forward() -> None:
        async for message in first:
            await into_second.send(message)

    async def answer() -> None:
        async for value, reply in second:
            await reply.send(value)

    async def submit(count: int) -> None:
        reply, replies = trio.open_memory_channel[int](1)
        for value in range(count):
            await into_first.send((value, reply))
            await replies.receive()

    each, extra = divmod(messages, concurrency)
    async with trio.open_nursery() as relays:
        relays.start_soon(forward)
        relays.start_soon(answer)
        start = time.perf_counter()
        async with trio.open_nursery() as submitters:
            for k in range(concurrency):
                submitters.start_soon(submit, each + (k < extra))
        seconds = time.perf_counter() - start
        relays.cancel_scope.cancel()
    return round(messages / seconds)
