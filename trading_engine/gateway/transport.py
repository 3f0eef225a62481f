"""The Redis keys and calls between gateways and the engine, on the asyncio bridge.

Keys (``NAME``: the engine's name, ``main`` unless ``ENGINE_NAME`` says
otherwise; ``ID``: a gateway's own id, new each start):

- ``te:engine:NAME:commands``: the stream of commands. A gateway appends one
  entry per batch (``r``: its reply stream, ``b``: the commands); the engine
  reads it in the consumer group ``engine`` with ``NOACK``, so an entry is
  delivered once and a restarted engine goes on after the last one delivered.
  A Redis that comes back without the stream (restarted with no persistence)
  gets the group made again on the engine's next read.
- ``te:gateway:ID:replies``: a gateway's stream of replies, one entry per
  batch the engine answers at once (``b``); it expires a minute after the last
  reply, so a gateway that is gone leaves nothing behind for long.
- ``te:engine:NAME:alive``: the engine's heartbeat, set every
  ``HEARTBEAT_EVERY`` seconds to live ``HEARTBEAT_TTL``: its value carries the
  listed symbols and the configuration the API reads, so that gateways know
  both without asking.

Every call runs on the bridge (``storage/bridge.py``), as the rate limits' and
the market-data publisher's do (``docs/decisions/0020-redis-takes-gathered.md``),
and carries a whole batch; driver errors become ``StorageUnavailable``.
"""

from __future__ import annotations

from typing import Any, Final

import redis.exceptions

from trading_engine.storage.bridge import Bridge
from trading_engine.storage.redis import (
    PREFIX,
    close_client,
    connect_client,
    redis_call,
    run_script,
)

__all__ = [
    "HEARTBEAT_EVERY",
    "HEARTBEAT_TTL",
    "EngineKeys",
    "EngineSide",
    "GatewaySide",
]

HEARTBEAT_EVERY: Final = 0.5
HEARTBEAT_TTL: Final = 2.0
"""Seconds a heartbeat lives: this long after the engine stops, gateways answer 503
``engine_unavailable`` at once rather than waiting for an answer."""

_GROUP: Final = "engine"
_COMMANDS_KEPT: Final = 100_000
"""Entries a command stream keeps (about: Redis trims by whole nodes)."""
_REPLIES_KEPT: Final = 10_000
_REPLIES_LIVE_MS: Final = 60_000
_BLOCK_MS: Final = 1000

_REPLY: Final = """
for i = 1, #KEYS do
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*', 'b', ARGV[i + 2])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
"""
"""Append ``ARGV[i + 2]`` to the reply stream ``KEYS[i]``, each, in one call."""


class EngineKeys:
    """The Redis keys of the engine named ``name``."""

    def __init__(self, name: str = "main") -> None:
        self.commands = f"{PREFIX}engine:{name}:commands"
        self.alive = f"{PREFIX}engine:{name}:alive"

    @staticmethod
    def replies(gateway_id: str) -> str:
        return f"{PREFIX}gateway:{gateway_id}:replies"


class _Side:
    def __init__(self, bridge: Bridge, client: Any, keys: EngineKeys) -> None:
        self._bridge = bridge
        self._client = client
        self.keys = keys

    async def close(self) -> None:
        await close_client(self._bridge, self._client)

    async def _call(self, failed: str, fn: Any, *args: Any) -> Any:
        return await redis_call(self._bridge, failed, fn, self._client, *args)


class EngineSide(_Side):
    """The engine's calls: read commands, send replies, beat."""

    @classmethod
    async def connect(cls, bridge: Bridge, url: str, keys: EngineKeys) -> EngineSide:
        """Raises ``StorageUnavailable`` if Redis does not answer."""
        return cls(bridge, await connect_client(bridge, url), keys)

    async def join(self) -> None:
        """Make the consumer group (and the stream) unless they are there."""
        await self._call("Redis group failed", _make_group, self.keys.commands)

    async def read(self, consumer: str, count: int = 1000) -> list[tuple[bytes, bytes]]:
        """The next command batches, ``(reply stream, commands)`` each; waits up to a
        second for one, then answers what came (maybe nothing)."""
        batches: list[tuple[bytes, bytes]] = await self._call(
            "Redis read failed", _read_group, self.keys.commands, consumer, count
        )
        return batches

    async def reply(self, batches: dict[str, bytes]) -> None:
        """Append each batch of replies to its gateway's reply stream, in one call."""
        keys = list(batches)
        args = [_REPLIES_KEPT, _REPLIES_LIVE_MS, *batches.values()]
        await run_script(self._bridge, self._client, _REPLY, keys, *args)

    async def beat(self, value: bytes) -> None:
        await self._call(
            "Redis heartbeat failed", _set, self.keys.alive, value, int(HEARTBEAT_TTL * 1000)
        )


class GatewaySide(_Side):
    """A gateway's calls: send commands, read its replies, read the heartbeat."""

    def __init__(self, bridge: Bridge, client: Any, keys: EngineKeys, gateway_id: str) -> None:
        super().__init__(bridge, client, keys)
        self.reply_key = keys.replies(gateway_id)
        self._last = b"0-0"

    @classmethod
    async def connect(
        cls, bridge: Bridge, url: str, keys: EngineKeys, gateway_id: str
    ) -> GatewaySide:
        """Raises ``StorageUnavailable`` if Redis does not answer."""
        return cls(bridge, await connect_client(bridge, url), keys, gateway_id)

    async def send(self, commands: bytes) -> None:
        await self._call("Redis send failed", _add, self.keys.commands, self.reply_key, commands)

    async def replies(self) -> list[bytes]:
        """The reply batches that came since the last call; waits up to a second."""
        entries: list[tuple[bytes, bytes]] = await self._call(
            "Redis read failed", _read_replies, self.reply_key, self._last
        )
        if entries:
            self._last = entries[-1][0]
        return [batch for _, batch in entries]

    async def heartbeat(self) -> bytes | None:
        value: bytes | None = await self._call("Redis heartbeat read failed", _get, self.keys.alive)
        return value


# ---------------------------------------------------------------- on the bridge's loop


async def _make_group(client: Any, key: str) -> None:
    try:
        await client.xgroup_create(key, _GROUP, id="$", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def _read_group(
    client: Any, key: str, consumer: str, count: int
) -> list[tuple[bytes, bytes]]:
    try:
        answer = await client.xreadgroup(
            _GROUP, consumer, {key: ">"}, count=count, block=_BLOCK_MS, noack=True
        )
    except redis.exceptions.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        # Redis lost the stream (restarted without it): what it held is gone, and the
        # gateways answered it ``outcome_unknown``. Read what comes from now on.
        await _make_group(client, key)
        return []
    batches: list[tuple[bytes, bytes]] = []
    for _, entries in answer or ():
        for _, fields in entries:
            if fields and b"r" in fields and b"b" in fields:
                batches.append((fields[b"r"], fields[b"b"]))
    return batches


async def _add(client: Any, key: str, reply_key: str, commands: bytes) -> None:
    await client.xadd(key, {"r": reply_key, "b": commands}, maxlen=_COMMANDS_KEPT, approximate=True)


async def _read_replies(client: Any, key: str, last: bytes) -> list[tuple[bytes, bytes]]:
    answer = await client.xread({key: last}, count=1000, block=_BLOCK_MS)
    out: list[tuple[bytes, bytes]] = []
    for _, entries in answer or ():
        for entry_id, fields in entries:
            out.append((entry_id, fields.get(b"b", b"")))
    return out


async def _set(client: Any, key: str, value: bytes, ttl_ms: int) -> None:
    await client.set(key, value, px=ttl_ms)


async def _get(client: Any, key: str) -> bytes | None:
    value: bytes | None = await client.get(key)
    return value
