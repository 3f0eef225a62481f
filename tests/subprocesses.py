"""What the tests read of the ``trading-engine`` processes they start."""

from __future__ import annotations

import trio


async def banner(process: trio.Process) -> str:
    """What the process writes on its stdout once it is ready (``serve``, ``engine`` and
    ``gateway`` say so on their first line, with the rest of their banner in the same
    write): the whole lines read; ``AssertionError`` if it ends before its first line."""
    assert process.stdout is not None
    seen = b""
    while b"\n" not in seen:
        chunk = await process.stdout.receive_some()
        assert chunk, "the process ended before its first line"
        seen += chunk
    return seen.rsplit(b"\n", 1)[0].decode()


async def first_line(process: trio.Process) -> str:
    """The first line the process writes on its stdout (see ``banner``)."""
    return (await banner(process)).split("\n", 1)[0]
