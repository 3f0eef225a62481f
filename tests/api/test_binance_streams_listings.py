"""An all-market stream taking in symbols listed later while its connection's frames
come (``_Market.follow_listings`` in ``api/binance/streams.py``).

The connection's ``_Market`` is driven directly, on the real engine, so that the
``SUBSCRIBE`` and ``UNSUBSCRIBE`` come exactly while ``follow_listings`` subscribes
to the new symbols' channels: over the wire that moment is a matter of luck.
"""

from __future__ import annotations

import pytest
import trio

from tests.api.conftest import ADMIN, Server
from trading_engine.api.binance import streams
from trading_engine.api.binance.connection import Inbox
from trading_engine.api.binance.symbols import joined


async def test_frames_handled_while_listings_are_taken_in_release_every_channel(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "LISTING_CHECK_SECONDS", 0)
    engine = server.engine
    before = await engine.subscribers()
    market = streams._Market(engine, Inbox(), combined=False)

    async def subscribe(name: str) -> None:
        stream = streams.parse_stream(name, engine.instruments())
        assert stream is not None
        assert await market.subscribe(stream) is None

    with trio.fail_after(10):
        # Each listed symbol's ticker is read by two streams: releasing one of them
        # does not wait for the engine.
        await subscribe("!ticker@arr")
        for symbol in engine.instruments():
            await subscribe(f"{joined(symbol).lower()}@miniTicker")
        demo = [f"{joined(s).lower()}@miniTicker" for s in engine.instruments()]
        async with server.client(ADMIN) as admin:
            for base in ("SOL", "ADA", "DOT"):
                body = {"symbol": f"{base}_AIT", "base_asset": base, "quote_asset": "AIT",
                        "tick_size": "0.01", "lot_size": "0.01"}  # fmt: skip
                response = await admin.post("/admin/symbols", json=body)
                assert response.status_code == 201, response.text
        async with trio.open_nursery() as nursery:
            nursery.start_soon(market.follow_listings)
            # The stream grows as follow_listings starts subscribing to the new channels:
            # a stream of the first new symbol and the all-market stream's end come then.
            while len(market.streams["!ticker@arr"].symbols) == len(demo):
                await trio.sleep(0)
            await subscribe("solait@miniTicker")
            await market.unsubscribe("!ticker@arr")
            nursery.cancel_scope.cancel()
        assert sorted(market.streams) == sorted([*demo, "solait@miniTicker"])
        for name in list(market.streams):
            await market.unsubscribe(name)
        assert market.channels == {}
        assert await engine.subscribers() == before  # nothing left subscribed in the engine
