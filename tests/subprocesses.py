"""What the tests read of the ``trading-engine`` processes they start."""

from __future__ import annotations

import trio


async def first_line(process: trio.Process) -> str:
    """The first line the process writes on its stdout (``serve``, ``engine`` and ``gateway``
    say there that they are ready); ``AssertionError`` if it ends before."""
    assert process.stdout is not None
    seen = b""
    while b"\n" not in seen:
        chunk = await process.stdout.receive_some()
        assert chunk, "the process ended before its first line"
        seen += chunk
    return seen.split(b"\n", 1)[0].decode()
