"""A gateway's market data: Redis's channels fanned out to its own WebSocket clients.

The engine publishes each market-data message once, on ``te:<channel>``
(``storage/redis.py``). A gateway subscribes to a channel when its first
client does, and leaves it when its last one leaves (a book a second later,
so that a client coming back finds it), and hands every message to its clients' outboxes, never
waiting on one: a client whose outbox is full is dropped (its outbox
closed), as the engine's market-data actor does.

Snapshots, so that a new subscriber gets a snapshot and a gap-free chain:

- ``book.SYMBOL``: the gateway keeps the symbol's L2 book, built from the
  engine's snapshot (``Engine.market_snapshot``) and the deltas after it, and
  answers new subscribers from it at once. A delta whose ``prev_seq`` is not
  the book's ``seq`` is a gap (a message lost on the way): the book is fetched
  again, the deltas meanwhile are held and those after it applied, and every
  subscriber gets the new snapshot before the next delta.
- ``trades``, ``ticker``, ``candles``: the engine's snapshot, asked when a
  client subscribes; messages that arrive meanwhile are held, and those after
  it follow (trades at or below the snapshot's ``seq`` are in it).
- ``orders``, ``balances``: per user (``te:orders.<user_id>``); the API puts
  the open orders before the updates (``api/ws.py``), as in one process.

If the connection to Redis breaks, every client is dropped (they reconnect
and get fresh snapshots) and the gateway subscribes again once Redis answers.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Final, Literal

import msgspec
import redis.exceptions
import trio

from trading_engine.actors.marketdata import Outbox
from trading_engine.actors.messages import Refused
from trading_engine.core.book_mirror import BookMirror
from trading_engine.core.ids import Symbol, UserId
from trading_engine.errors import TradingEngineError
from trading_engine.gateway.remote import RemoteEngine
from trading_engine.storage.bridge import Bridge
from trading_engine.storage.journal import StorageUnavailable
from trading_engine.storage.redis import PREFIX, close_client, connect_client

__all__ = ["GatewayFeed"]

log = logging.getLogger(__name__)

_RETRY: Final = 0.5
_BOOK_GRACE: Final = 1.0
"""Seconds a book is kept, and its channel listened to, after its last subscriber left."""
_PER_USER: Final = ("orders", "balances")
_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder()


class _UnknownChannel(Exception):
    """The engine has no such channel."""


class _Book:
    """A symbol's L2 book, mirrored from the engine's snapshot and the deltas after it,
    and the state of fetching it."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.mirror = BookMirror()
        self.synced = False
        self.held: list[dict[str, Any]] = []
        """Deltas that came while the snapshot was asked for."""
        self.fetching = False
        """Whether a snapshot is asked for now (deltas are held meanwhile)."""
        self.lock = trio.Lock()
        """Held while the book is fetched: one fetch at a time, so none rolls it back."""
        self.resyncing = False
        """Whether a task fetches the book until it is whole (``GatewayFeed._resync``)."""

    def take(self, delta: dict[str, Any]) -> Literal["applied", "stale", "gap"]:
        """Apply ``delta`` if it follows the book (its ``prev_seq`` is the book's
        ``seq``); a ``stale`` one (the book has it) and one after a ``gap`` are not."""
        mirror = self.mirror
        if int(delta["seq"]) <= mirror.seq:
            return "stale"
        if int(delta["prev_seq"]) != mirror.seq:
            return "gap"
        mirror.apply(delta)
        return "applied"

    def snapshot(self) -> str:
        bids, asks = self.mirror.levels()
        return _ENCODER.encode(
            {"channel": self.channel, "type": "snapshot", "seq": self.mirror.seq,
             "bids": bids, "asks": asks}
        ).decode()  # fmt: skip


class GatewayFeed:
    """The gateway's subscribers, fed from Redis; run ``run`` beside the app."""

    def __init__(self, engine: RemoteEngine, bridge: Bridge, url: str) -> None:
        self._engine = engine
        self._bridge = bridge
        self._url = url
        self._client: Any = None
        self._pubsub: Any = None
        self._subscribed: set[str] = set()
        """The Redis channels (without ``te:``) this gateway listens to."""
        self._subscribing = trio.Lock()
        """Held while a channel is joined or left on Redis: one change at a time."""
        self._leaving: set[str] = set()
        """The channels a task will leave unless a subscriber comes first."""
        self._outboxes: dict[str, dict[int, Outbox]] = {}
        """By Redis channel (``orders.<user>`` for a user's): who gets its messages."""
        self._held: dict[tuple[str, int], list[str]] = {}
        """Messages for a subscriber whose snapshot is on its way."""
        self._of_outbox: dict[int, set[str]] = {}
        self._books: dict[Symbol, _Book] = {}
        self._ready = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.dropped = 0
        self.resyncs = 0
        self.malformed = 0

    def subscribers(self) -> int:
        return len(self._of_outbox)

    # ------------------------------------------------------------ running

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen to Redis until cancelled, connecting again after a failure."""
        started = failing = False
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                try:
                    self._client = await connect_client(self._bridge, self._url)
                    self._pubsub = await self._bridge.call(_open, self._client)
                    if self._subscribed:
                        await self._bridge.call(_subscribe, self._pubsub, sorted(self._subscribed))
                    self._ready.set()
                    if failing:
                        log.warning("market data from Redis again")
                        failing = False
                    if not started:
                        task_status.started()
                        started = True
                    await self._listen()
                except (redis.exceptions.RedisError, OSError, StorageUnavailable) as exc:
                    if not failing:
                        log.warning("market data from Redis stopped: %s", exc)
                        failing = True
                self._ready = trio.Event()
                await self._lost()
                if not started:
                    task_status.started()
                    started = True
                await trio.sleep(_RETRY)

    async def _listen(self) -> None:
        while True:
            messages = await self._bridge.call(_next, self._pubsub)
            for channel, text in messages:
                name = channel[len(PREFIX) :]
                try:
                    self._dispatch(name, text)
                except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                    self._malformed(name)

    def _malformed(self, channel: str) -> None:
        """A message on ``channel`` this gateway cannot read (not the engine's, or of
        another version): dropped, and a book that may have missed a delta fetched again."""
        self.malformed += 1
        log.warning("a message on %s%s that cannot be read was dropped", PREFIX, channel)
        book = self._books.get(Symbol(channel[5:])) if channel.startswith("book.") else None
        if book is not None and book.synced:
            self.resyncs += 1
            book.synced = False
            self._start_resync(book)

    async def _lost(self) -> None:
        """Redis's connection broke: messages may be lost, so every client goes, and every
        book is asked for again when next wanted."""
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        if pubsub is not None:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                await self._bridge.call(_close, pubsub)
        if client is not None:
            await close_client(self._bridge, client)
        for book in self._books.values():
            book.synced = False
            book.held.clear()
        for channel in list(self._outboxes):
            for key, outbox in list(self._outboxes.get(channel, {}).items()):
                self._drop(key, outbox)

    # ------------------------------------------------------------ messages

    def _dispatch(self, channel: str, text: str) -> None:
        if channel.startswith("book."):
            book = self._books.get(Symbol(channel[5:]))
            if book is None:
                return
            delta = _DECODER.decode(text)
            if not book.synced:
                if book.fetching:  # else the next snapshot asked for has it
                    book.held.append(delta)
                return
            taken = book.take(delta)
            if taken == "stale":
                return
            if taken == "gap":
                self.resyncs += 1
                book.synced = False
                book.held.append(delta)
                self._start_resync(book)
                return
        self._fan_out(channel, text)

    def _fan_out(self, channel: str, text: str) -> None:
        for key, outbox in list(self._outboxes.get(channel, {}).items()):
            held = self._held.get((channel, key))
            if held is not None:
                held.append(text)
            else:
                self._send(key, outbox, text)

    def _send(self, key: int, outbox: Outbox, text: str) -> None:
        try:
            outbox.send_nowait(text)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._drop(key, outbox)

    def _drop(self, key: int, outbox: Outbox) -> None:
        self.dropped += 1
        for channel in self._of_outbox.pop(key, set()):
            self._outboxes.get(channel, {}).pop(key, None)
            self._held.pop((channel, key), None)
            self._release(channel)
        outbox.close()

    # ------------------------------------------------------------ books

    async def _sync(self, book: _Book) -> None:
        """Fetch the book from the engine, unless it is whole, and apply the deltas held
        meanwhile; it may still have a gap after (``_resync`` asks again). Raises what the
        engine's call raises (``EngineUnavailable``...)."""
        async with book.lock:
            if not book.synced:
                book.fetching = True
                try:
                    await self._fetch(book)
                finally:
                    book.fetching = False

    async def _fetch(self, book: _Book) -> None:
        text = await self._engine.market_snapshot(book.channel)
        if not isinstance(text, str):
            raise _UnknownChannel(book.channel)
        book.mirror.apply(_DECODER.decode(text))
        book.synced = True
        held, book.held = book.held, []
        for delta in held:
            if book.take(delta) == "gap":
                book.synced = False  # still a gap: ask again
                book.held = [d for d in held if int(d["seq"]) > book.mirror.seq]
                break

    def _start_resync(self, book: _Book) -> None:
        if not book.resyncing and self._nursery is not None:
            book.resyncing = True
            self._nursery.start_soon(self._resync, book)

    async def _resync(self, book: _Book) -> None:
        """After a gap: fetch the book until it is whole, then send every subscriber the
        new snapshot, before the next delta."""
        pause = 0.01
        try:
            while True:
                try:
                    await self._sync(book)
                except Exception as exc:  # noqa: BLE001 - retried while there are subscribers
                    log.warning("book %s could not be fetched again: %s", book.channel, exc)
                if book.synced:
                    break
                if not self._outboxes.get(book.channel):
                    return
                # Still a gap (the snapshot is older than the deltas held): ask again soon.
                await trio.sleep(pause)
                pause = min(pause * 2, _RETRY)
        finally:
            book.resyncing = False
        text = book.snapshot()
        for key, outbox in list(self._outboxes.get(book.channel, {}).items()):
            self._send(key, outbox, text)

    # ------------------------------------------------------------ subscribers

    async def subscribe(
        self, channel: str, outbox: Outbox, user_id: UserId | None
    ) -> Refused | None:
        """Send ``channel``'s snapshot, then its messages, to ``outbox``, as
        ``Engine.subscribe`` does; ``Refused`` (``engine_unavailable``), and nothing
        subscribed, while the engine or Redis does not answer."""
        if channel in _PER_USER:
            if user_id is None:
                return Refused("unauthenticated", f"authenticate before subscribing to {channel}")
            redis_channel = f"{channel}.{user_id}"
        else:
            redis_channel = channel
        try:
            return await self._subscribe(channel, redis_channel, outbox)
        except Exception as exc:
            self._remove(redis_channel, outbox)
            if isinstance(exc, TradingEngineError):
                message = exc.message
            else:
                log.exception("subscribing to %s failed", channel)
                message = "market data is unavailable"
            return Refused("engine_unavailable", f"{channel}: {message}")

    async def _subscribe(self, channel: str, redis_channel: str, outbox: Outbox) -> Refused | None:
        # Counted at once, so that the channel is not left on Redis meanwhile; what comes
        # before the snapshot is held.
        key = id(outbox)
        self._add(redis_channel, key, outbox)
        if channel in _PER_USER:
            await self._listen_to(redis_channel)
            return None
        self._held[(redis_channel, key)] = []
        await self._listen_to(redis_channel)
        if channel.startswith("book."):
            book = self._books.setdefault(Symbol(channel[5:]), _Book(channel))
            try:
                await self._sync(book)
            except _UnknownChannel:
                self._remove(redis_channel, outbox)
                return Refused("unknown_channel", f"no channel {book.channel!r}")
            self._held.pop((redis_channel, key), None)  # the book has those deltas
            if book.synced:
                self._send(key, outbox, book.snapshot())
            else:
                self._start_resync(book)  # which sends the snapshot once the book is whole
            return None
        try:
            text = await self._engine.market_snapshot(channel)
        finally:
            held = self._held.pop((redis_channel, key), [])
        if isinstance(text, Refused) or text is None:
            self._remove(redis_channel, outbox)
            return text
        self._send(key, outbox, text)
        # What came meanwhile up to the snapshot's ``seq`` is in it already.
        floor = _seq_of(text)
        for message in held:
            seq = _seq_of(message)
            if floor is None or seq is None or seq > floor:
                self._send(key, outbox, message)
        return None

    async def unsubscribe(self, channel: str, outbox: Outbox) -> None:
        await trio.lowlevel.checkpoint()
        key = id(outbox)
        if channel in _PER_USER:
            for redis_channel in list(self._of_outbox.get(key, ())):
                if redis_channel.startswith(channel + "."):
                    self._remove(redis_channel, outbox)
        else:
            self._remove(channel, outbox)

    def _add(self, channel: str, key: int, outbox: Outbox) -> None:
        self._outboxes.setdefault(channel, {})[key] = outbox
        self._of_outbox.setdefault(key, set()).add(channel)

    def _remove(self, channel: str, outbox: Outbox) -> None:
        key = id(outbox)
        self._outboxes.get(channel, {}).pop(key, None)
        self._held.pop((channel, key), None)
        channels = self._of_outbox.get(key)
        if channels is not None:
            channels.discard(channel)
            if not channels:
                del self._of_outbox[key]
        self._release(channel)

    def _release(self, channel: str) -> None:
        """Leave ``channel`` on Redis once nobody here reads it (a book after a grace)."""
        if self._outboxes.get(channel):
            return
        self._outboxes.pop(channel, None)
        if channel in self._subscribed and channel not in self._leaving and self._nursery:
            self._leaving.add(channel)
            self._nursery.start_soon(self._unlisten, channel)

    async def _unlisten(self, channel: str) -> None:
        try:
            if channel.startswith("book."):
                await trio.sleep(_BOOK_GRACE)  # a client that comes back finds the book
            async with self._subscribing:
                if self._outboxes.get(channel):
                    return
                self._subscribed.discard(channel)
                if channel.startswith("book."):
                    self._books.pop(Symbol(channel[5:]), None)
                if self._pubsub is not None:  # else the next connection leaves it out
                    await self._bridge.call(_unsubscribe, self._pubsub, [channel])
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("leaving %s on Redis failed: %s", channel, exc)
        finally:
            self._leaving.discard(channel)

    async def _listen_to(self, channel: str) -> None:
        """Subscribe to ``channel`` on Redis unless this gateway does already; raises
        ``EngineUnavailable`` while Redis does not answer."""
        if channel in self._subscribed:
            return
        from trading_engine.gateway.remote import EngineUnavailable  # noqa: PLC0415

        with trio.move_on_after(5):
            await self._ready.wait()
        async with self._subscribing:
            if channel in self._subscribed:
                return
            if self._pubsub is None:
                raise EngineUnavailable("market data is unavailable: Redis does not answer")
            try:
                await self._bridge.call(_subscribe, self._pubsub, [channel])
            except (redis.exceptions.RedisError, OSError) as exc:
                raise EngineUnavailable(f"market data is unavailable: {exc}") from exc
            self._subscribed.add(channel)


def _seq_of(text: str) -> int | None:
    """A message's ``seq``, or None if it has none this gateway can read (the engine's
    messages all have one; the rest go through as they came)."""
    try:
        return int(_DECODER.decode(text)["seq"])
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------- on the bridge's loop


async def _open(client: Any) -> Any:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    # Always subscribed to something: a pubsub with no channel does not wait for messages.
    await pubsub.subscribe(f"{PREFIX}gateway:feed")
    return pubsub


async def _close(pubsub: Any) -> None:
    await pubsub.aclose()


async def _subscribe(pubsub: Any, channels: list[str]) -> None:
    await pubsub.subscribe(*(PREFIX + channel for channel in channels))


async def _unsubscribe(pubsub: Any, channels: list[str]) -> None:
    await pubsub.unsubscribe(*(PREFIX + channel for channel in channels))


async def _next(pubsub: Any) -> list[tuple[str, str]]:
    """The messages that came: waits up to a second for one, then takes what is there."""
    out: list[tuple[str, str]] = []
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
    while message is not None:
        if message.get("type") == "message":
            out.append((message["channel"].decode(), message["data"].decode()))
        if len(out) >= 5000:
            break
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0)
    return out
