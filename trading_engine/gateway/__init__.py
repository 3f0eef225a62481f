"""Gateways: the API in processes of its own, in front of one engine, over Redis.

- ``codec``: values on the wire (msgpack of tagged trees).
- ``protocol``: which ``Engine`` methods travel, and the call and answer envelopes.
- ``transport``: the Redis keys and calls (streams, the heartbeat).
- ``server``: the engine's side, which runs the calls (``CommandServer``).
- ``remote``: the gateway's ``Engine`` (``RemoteEngine``).
- ``feed``: the gateway's market data, from Redis to its WebSocket clients.
- ``processes``: ``trading-engine engine`` and ``trading-engine gateway``.

The layout and its choices: ``docs/scaling.md`` and
``docs/decisions/0022-gateways-over-redis-streams.md``.
"""
