"""The Binance dialect's WebSocket streams, read frame by frame."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url
from wsproto.events import CloseConnection, Ping, TextMessage

from tests.api.binance_client import call, client, limit_order, send
from tests.api.conftest import ADMIN, Server
from tests.api.rawws import raw_client, refused_handshake
from tests.api.test_orders import held, journal_writes_held
from trading_engine.api.binance import connection, listen_keys, streams, user_stream
from trading_engine.config import EngineConfig
from trading_engine.core.ids import Symbol


def _ws(server: Server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


async def _next(ws: WebSocketConnection) -> Any:
    return json.loads(await ws.get_message())


async def _until(ws: WebSocketConnection, wanted: Any) -> Any:
    """The next message for which ``wanted(message)`` holds, skipping the others."""
    while not wanted(message := await _next(ws)):
        pass
    return message


async def test_a_combined_stream_wraps_each_payload_with_its_stream_name(server: Server) -> None:
    await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
    url = _ws(server, "/stream?streams=btcait@trade/btcait@depth5/btcait@bookTicker")
    with trio.fail_after(20):
        async with open_websocket_url(url) as ws:
            first = [await _next(ws), await _next(ws)]  # the book's two views, from its snapshot
            await limit_order(server, "demo_bob", "buy", "100.5", "0.2")
            trade = await _until(ws, lambda m: m["stream"] == "btcait@trade")
    assert {m["stream"] for m in first} == {"btcait@depth5", "btcait@bookTicker"}
    depth = next(m["data"] for m in first if m["stream"] == "btcait@depth5")
    assert depth["bids"] == []
    assert depth["asks"] == [["100.50000000", "0.50000000"]]
    assert trade["data"]["e"] == "trade"
    assert trade["data"]["s"] == "BTCAIT"
    assert (trade["data"]["p"], trade["data"]["q"], trade["data"]["m"]) == (
        "100.50000000", "0.20000000", False,
    )  # fmt: skip


async def test_book_ticker_comes_when_the_best_bid_or_ask_changes(server: Server) -> None:
    await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
    url = _ws(server, "/stream?streams=btcait@bookTicker/btcait@trade")
    with trio.fail_after(20):
        async with open_websocket_url(url) as ws:
            first = await _next(ws)
            await limit_order(server, "demo_alice", "sell", "105", "1")  # not the best: none
            await limit_order(server, "demo_bob", "buy", "99", "1")  # a best bid
            bid = await _next(ws)
            await limit_order(server, "demo_bob", "buy", "98", "1")  # not the best: none
            await limit_order(server, "demo_bob", "buy", "100.5", "0.2")
            after = [await _next(ws), await _next(ws)]
    assert first["data"] | {"u": 0} == {
        "u": 0, "s": "BTCAIT", "b": "0.00000000", "B": "0.00000000",
        "a": "100.50000000", "A": "0.50000000",
    }  # fmt: skip
    assert (bid["stream"], bid["data"]["b"], bid["data"]["B"]) == (
        "btcait@bookTicker", "99.00000000", "1.00000000",
    )  # fmt: skip
    assert bid["data"]["u"] > first["data"]["u"]
    assert sorted(m["stream"] for m in after) == ["btcait@bookTicker", "btcait@trade"]
    top = next(m["data"] for m in after if m["stream"] == "btcait@bookTicker")
    assert (top["a"], top["A"]) == ("100.50000000", "0.30000000")


async def test_depth_diffs_chain_from_the_rest_snapshot_as_binance_documents(
    server: Server,
) -> None:
    """Binance's recipe: buffer diffs, take the REST snapshot, drop diffs with u <= its
    lastUpdateId; the first one left has U <= lastUpdateId + 1 <= u, each next U is the
    last u + 1, and applying them gives the book REST shows."""
    await limit_order(server, "demo_alice", "sell", "101", "1")
    exchange = client(server, None)
    with trio.fail_after(20):
        async with open_websocket_url(_ws(server, "/ws/btcait@depth")) as ws:
            await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
            first = await _next(ws)
            snapshot = await _depth(server)
            await limit_order(server, "demo_bob", "buy", "99", "2")
            await limit_order(server, "demo_bob", "buy", "100.5", "0.2")
            diffs = [first]
            final = await _depth(server)
            while diffs[-1]["u"] < final["lastUpdateId"]:
                diffs.append(await _next(ws))
        book = await call(exchange.fetch_order_book, "BTC/AIT")
    assert snapshot["lastUpdateId"] >= first["U"]
    kept = [d for d in diffs if d["u"] > snapshot["lastUpdateId"]]
    assert kept[0]["U"] <= snapshot["lastUpdateId"] + 1 <= kept[0]["u"]
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(diffs))
    bids, asks = dict(snapshot["bids"]), dict(snapshot["asks"])
    for diff in kept:
        assert diff["e"] == "depthUpdate"
        assert diff["s"] == "BTCAIT"
        for side, levels in ((bids, diff["b"]), (asks, diff["a"])):
            for price, quantity in levels:
                side[price] = quantity
    assert sorted((p, q) for p, q in bids.items() if float(q)) == sorted(
        (p, q) for p, q in final["bids"]
    )
    assert sorted((p, q) for p, q in asks.items() if float(q)) == sorted(
        (p, q) for p, q in final["asks"]
    )
    assert book["nonce"] == final["lastUpdateId"]


async def _depth(server: Server) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.get("/api/v3/depth?symbol=BTCAIT")
    assert response.status_code == 200, response.text
    return response.json()


async def test_nothing_is_streamed_before_the_journal_has_it(
    server: Server, database_url: str
) -> None:
    """An order taken but not yet written shows on no stream, the market's nor the
    user's; once written, its trade, diff and report come."""
    await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
    key = await _listen_key(server)
    url = _ws(server, "/stream?streams=btcait@trade/btcait@depth@100ms")
    early: list[Any] = []

    async def nothing_yet(receive: Callable[[], Awaitable[Any]]) -> None:
        with trio.move_on_after(0.5):
            early.append(await receive())

    with trio.fail_after(30):
        async with (
            open_websocket_url(url) as market,
            raw_client(_ws(server, f"/ws/{key}")) as user,
            server.client(server.keys["demo_bob"]) as bob,
        ):
            before = await held(bob, "demo_bob", "AIT")
            async with trio.open_nursery() as nursery, journal_writes_held(database_url):
                nursery.start_soon(limit_order, server, "demo_bob", "buy", "100.5", "0.2")
                while await held(bob, "demo_bob", "AIT") == before:  # taken, not written
                    await trio.sleep(0.01)
                async with trio.open_nursery() as readers:
                    readers.start_soon(nothing_yet, market.get_message)
                    readers.start_soon(nothing_yet, user.text)
            streamed = {(await _next(market))["stream"] for _ in range(2)}
            report = json.loads(await user.text())
    assert early == []
    assert streamed == {"btcait@trade", "btcait@depth@100ms"}
    assert (report["e"], report["x"], report["l"]) == ("executionReport", "TRADE", "0.20000000")


async def test_subscribe_unsubscribe_and_list_subscriptions_answer_by_id(server: Server) -> None:
    async def ask(ws: WebSocketConnection, frame: dict[str, Any]) -> Any:
        await ws.send_message(json.dumps(frame))
        return await _until(ws, lambda m: "id" in m)

    with trio.fail_after(20):
        async with open_websocket_url(_ws(server, "/ws/0")) as ws:
            subscribed = await ask(
                ws, {"method": "SUBSCRIBE", "params": ["btcait@aggTrade", "ethait@kline_1m"],
                     "id": 1},
            )  # fmt: skip
            listed = await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "list-2"})
            gone = await ask(ws, {"method": "UNSUBSCRIBE", "params": ["btcait@aggTrade"], "id": 3})
            left = await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": None})
            combined = await ask(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 5})
            await ask(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 6})
            await ask(ws, {"method": "SUBSCRIBE", "params": ["btcait@aggTrade"], "id": 7})
            await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
            await limit_order(server, "demo_bob", "buy", "100.5", "0.2")
            trade = await _until(ws, lambda m: m.get("stream") == "btcait@aggTrade")
    assert subscribed == {"result": None, "id": 1}
    assert listed == {"result": ["btcait@aggTrade", "ethait@kline_1m"], "id": "list-2"}
    assert gone == {"result": None, "id": 3}
    assert left == {"result": ["ethait@kline_1m"], "id": None}
    assert combined == {"result": False, "id": 5}
    data = trade["data"]
    assert (data["e"], data["s"], data["p"], data["q"]) == (
        "aggTrade", "BTCAIT", "100.50000000", "0.20000000",
    )  # fmt: skip
    assert data["a"] == data["f"] == data["l"] >= 1


_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
              "3d", "1w", "1M")  # fmt: skip
"""Binance's kline intervals."""


async def test_a_kline_stream_follows_each_of_binances_intervals(server: Server) -> None:
    names = [f"btcait@kline_{interval}" for interval in _INTERVALS]
    with trio.fail_after(20):
        async with open_websocket_url(_ws(server, "/stream?streams=" + "/".join(names))) as ws:
            await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
            await limit_order(server, "demo_bob", "buy", "100.5", "0.2")
            klines: dict[str, Any] = {}
            while len(klines) < len(names):
                message = await _next(ws)
                klines[message["stream"]] = message["data"]
        public = client(server, None)
        trade = (await call(public.public_get_trades, {"symbol": "BTCAIT"}))[-1]
        rest = await call(public.public_get_klines, {"symbol": "BTCAIT", "interval": "1m"})
    assert klines["btcait@kline_1m"]["k"]["q"] == rest[-1][7] == "20.10000000"  # quote volume
    for interval, name in zip(_INTERVALS, names, strict=True):
        k = klines[name]["k"]
        assert (klines[name]["e"], k["s"], k["i"]) == ("kline", "BTCAIT", interval)
        assert (k["o"], k["h"], k["l"], k["c"], k["v"]) == (
            "100.50000000", "100.50000000", "100.50000000", "100.50000000", "0.20000000",
        )  # fmt: skip
        assert k["t"] <= trade["time"] <= k["T"]
        assert k["T"] % 1000 == 999
    starts = {i: klines[n]["k"]["t"] for i, n in zip(_INTERVALS, names, strict=True)}
    assert starts["1s"] == trade["time"] // 1000 * 1000
    assert starts["1m"] % 60_000 == starts["1d"] % 86_400_000 == 0
    assert time.gmtime(starts["1w"] / 1000).tm_wday == 0  # weeks start on Monday
    assert time.gmtime(starts["1M"] / 1000).tm_mday == 1


async def test_a_klines_last_update_comes_again_closed_when_its_interval_ends(
    server: Server,
) -> None:
    await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
    with trio.fail_after(20):
        async with open_websocket_url(_ws(server, "/ws/btcait@kline_1s")) as ws:
            await limit_order(server, "demo_bob", "buy", "100.5", "0.2")
            first = await _next(ws)
            closed = await _next(ws)
            await limit_order(server, "demo_bob", "buy", "100.5", "0.1")
            later = await _next(ws)
            assert later["k"]["t"] > closed["k"]["t"]
            after = await _next(ws)
        # A stream subscribed after the interval ended starts from that candle, closed.
        async with open_websocket_url(_ws(server, "/ws/btcait@kline_1s")) as ws:
            late = await _next(ws)
    assert not first["k"]["x"]
    assert closed["k"] == {**first["k"], "x": True}
    assert closed["E"] > first["k"]["T"]
    assert (later["k"]["x"], later["k"]["v"]) == (False, "0.10000000")
    assert after["k"] == {**later["k"], "x": True}
    assert late["k"] == after["k"]


async def test_a_partial_depth_added_to_a_followed_book_starts_at_once(server: Server) -> None:
    await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
    await limit_order(server, "demo_bob", "buy", "99", "1")
    with trio.fail_after(20):
        async with open_websocket_url(_ws(server, "/ws/btcait@depth")) as ws:
            frame = {"method": "SUBSCRIBE", "params": ["btcait@depth10@100ms"], "id": 1}
            await ws.send_message(json.dumps(frame))
            answer, depth = await _next(ws), await _next(ws)
    book = await _depth(server)
    assert answer == {"result": None, "id": 1}
    assert depth == {"lastUpdateId": book["lastUpdateId"], "bids": book["bids"],
                     "asks": book["asks"]}  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "code", "answer_id"),
    [
        ("{not json", 3, None),
        ('["SUBSCRIBE"]', 2, None),
        ('{"method": "SUBSCRIBE", "params": ["btcait@trade"], "id": true}', 2, None),
        ('{"method": "SUBSCRIBE", "params": ["btcait@trade"]}', 2, None),
        ('{"params": ["btcait@trade"], "id": 8}', 2, 8),
        ('{"method": "SUBSCRIBED", "params": ["btcait@trade"], "id": 9}', 2, 9),
        ('{"method": "SUBSCRIBE", "params": ["BTCAIT@trade"], "id": 10}', 2, 10),
        ('{"method": "SUBSCRIBE", "params": ["btcait@trade", "nope@trade"], "id": 11}', 2, 11),
        ('{"method": "SUBSCRIBE", "params": ["btcait@kline_7m"], "id": 12}', 2, 12),
        ('{"method": "SUBSCRIBE", "params": "btcait@trade", "id": 13}', 2, 13),
        ('{"method": "GET_PROPERTY", "params": ["colour"], "id": 14}', 0, 14),
    ],
)
async def test_a_bad_frame_is_answered_with_binances_error_and_changes_nothing(
    server: Server, frame: str, code: int, answer_id: Any
) -> None:
    with trio.fail_after(20):
        async with open_websocket_url(_ws(server, "/ws/0")) as ws:
            await ws.send_message(frame)
            answer = await _next(ws)
            await ws.send_message(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            listed = await _next(ws)
    assert answer["error"]["code"] == code
    assert answer["error"]["msg"]
    assert answer["id"] == answer_id
    assert listed == {"result": [], "id": 1}


async def test_a_connection_holds_at_most_max_streams(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,024 on Binance; here 3. A SUBSCRIBE past it is refused whole and changes nothing;
    a path naming more is refused at the handshake."""
    monkeypatch.setattr(streams, "MAX_STREAMS", 3)
    three = ["btcait@trade", "btcait@depth", "ethait@trade"]
    with trio.fail_after(20):
        async with open_websocket_url(_ws(server, "/ws/" + "/".join(three[:2]))) as ws:
            for frame in (
                {"method": "SUBSCRIBE", "params": ["ethait@aggTrade", "ethait@depth"], "id": 1},
                {"method": "SUBSCRIBE", "params": three, "id": 2},  # one new: 3 in all
                {"method": "LIST_SUBSCRIPTIONS", "id": 3},
            ):
                await ws.send_message(json.dumps(frame))
            answers = [await _until(ws, lambda m: "id" in m) for _ in range(3)]
        refused = await refused_handshake(_ws(server, "/ws/" + "/".join([*three, "ethait@depth"])))
    assert answers[0]["error"]["code"] == 2
    assert answers[0]["id"] == 1
    assert answers[1:] == [{"result": None, "id": 2}, {"result": three, "id": 3}]
    assert (refused.status, refused.json()["code"]) == (400, -1121)


async def test_a_path_naming_an_unknown_stream_is_refused_at_the_handshake(
    server: Server,
) -> None:
    refused = await refused_handshake(_ws(server, "/ws/dogeait@trade"))
    assert refused.status == 400
    assert refused.json()["code"] == -1121


async def test_tickers_one_symbols_and_all_markets_as_arrays(server: Server) -> None:
    names = ["!miniTicker@arr", "!ticker@arr", "btcait@miniTicker", "btcait@ticker"]
    with trio.fail_after(20):
        async with open_websocket_url(_ws(server, "/stream?streams=" + "/".join(names))) as ws:
            await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
            await limit_order(server, "demo_bob", "buy", "100.5", "0.2")
            seen: dict[str, Any] = {}
            while len(seen) < len(names):
                message = await _next(ws)
                data = message["data"]
                one = data[0] if isinstance(data, list) else data
                if one["s"] == "BTCAIT" and one["c"] != "0.00000000":
                    seen.setdefault(message["stream"], data)
    assert [len(seen[n]) for n in names[:2]] == [1, 1]
    mini, full = seen["btcait@miniTicker"], seen["btcait@ticker"]
    assert seen["!miniTicker@arr"][0] | {"E": 0} == mini | {"E": 0}
    assert seen["!ticker@arr"][0] | {"E": 0, "O": 0, "C": 0} == full | {"E": 0, "O": 0, "C": 0}
    assert (mini["e"], mini["c"], mini["o"], mini["v"], mini["q"]) == (
        "24hrMiniTicker", "100.50000000", "100.50000000", "0.20000000", "20.10000000",
    )  # fmt: skip
    assert (full["e"], full["c"], full["v"], full["q"], full["n"]) == (
        "24hrTicker", "100.50000000", "0.20000000", "20.10000000", 1,
    )  # fmt: skip
    assert (full["w"], full["P"]) == ("100.50000000", "0.000")
    # The book's top and the last trade's quantity, as GET ticker/24hr reads them.
    assert (full["b"], full["B"], full["a"], full["A"], full["Q"]) == (
        "0.00000000", "0.00000000", "100.50000000", "0.30000000", "0.20000000",
    )  # fmt: skip


class TestATickerSentLater:
    @pytest.fixture
    def engine_config(self) -> EngineConfig:
        """Tickers at most once an hour: the first change's goes out, the next waits."""
        return EngineConfig(expire_every=float("inf"), ticker_interval=3600.0)

    async def test_its_top_and_last_quantity_are_the_tickers_own_not_the_books_now(
        self, server: Server
    ) -> None:
        with trio.fail_after(20):
            await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
            # Answered after the pricing actor took that order in and sent its ticker.
            assert await server.engine.ticker(Symbol("BTC_AIT")) is not None
            await limit_order(server, "demo_bob", "buy", "100.5", "0.2")  # its ticker waits
            async with open_websocket_url(_ws(server, "/ws/btcait@ticker")) as ws:
                sent = await _next(ws)
            now = (await send(server, "GET", "ticker/24hr", query="symbol=BTCAIT")).json()
        # The ticker of the resting order alone: no trade yet, the ask whole.
        assert (sent["c"], sent["n"], sent["Q"]) == ("0.00000000", 0, "0.00000000")
        assert (sent["b"], sent["B"], sent["a"], sent["A"]) == (
            "0.00000000", "0.00000000", "100.50000000", "0.50000000",
        )  # fmt: skip
        # Asked now, the ticker is the engine's current one: the trade and what it left.
        assert (now["lastPrice"], now["count"], now["lastQty"]) == ("100.50000000", 1, "0.20000000")
        assert (now["askPrice"], now["askQty"]) == ("100.50000000", "0.30000000")


async def test_an_all_market_stream_takes_in_a_symbol_listed_later(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "LISTING_CHECK_SECONDS", 0.05)
    body = {"symbol": "SOL_AIT", "base_asset": "SOL", "quote_asset": "AIT",
            "tick_size": "0.01", "lot_size": "0.01"}  # fmt: skip
    with trio.fail_after(10):
        async with open_websocket_url(_ws(server, "/ws/!ticker@arr")) as ws:
            async with server.client(ADMIN) as admin:
                listed = await admin.post("/admin/symbols", json=body)
                assert listed.status_code == 201, listed.text
            ticker = await _until(ws, lambda m: m[0]["s"] == "SOLAIT")
    assert (ticker[0]["e"], ticker[0]["n"]) == ("24hrTicker", 0)


async def test_the_streams_send_a_ping_frame_every_ping_interval(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "PING_SECONDS", 0.05)
    with trio.fail_after(20):
        async with raw_client(_ws(server, "/ws/btcait@trade")) as ws:
            events = [await ws.event(), await ws.event()]
    assert all(isinstance(e, Ping) for e in events)


async def _listen_key(server: Server, user: str = "demo_alice") -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.post(
            "/api/v3/userDataStream", headers={"X-MBX-APIKEY": server.keys[user]}
        )
    assert response.status_code == 200, response.text
    key: str = response.json()["listenKey"]
    return key


async def test_a_listen_key_streams_its_users_orders_and_balances_until_closed(
    server: Server,
) -> None:
    key = await _listen_key(server)
    with trio.fail_after(20):
        async with raw_client(_ws(server, f"/ws/{key}")) as ws:
            await limit_order(server, "demo_bob", "buy", "99", "1")  # not alice's: not streamed
            await limit_order(server, "demo_alice", "sell", "100.5", "0.5")
            await limit_order(server, "demo_bob", "buy", "100.5", "0.2")
            events = [json.loads(await ws.text()) for _ in range(4)]
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                headers = {"X-MBX-APIKEY": server.keys["demo_alice"]}
                closed = await http.delete(f"/api/v3/userDataStream?listenKey={key}",
                                           headers=headers)  # fmt: skip
                assert closed.status_code == 200, closed.text
            expired = json.loads(await ws.text())
            close = await ws.event()
    [mine] = await call(client(server, "demo_alice").private_get_mytrades, {"symbol": "BTCAIT"})
    new, position, fill, _ = events
    assert (new["e"], new["x"], new["X"], new["S"], new["o"]) == (
        "executionReport", "NEW", "NEW", "SELL", "LIMIT",
    )  # fmt: skip
    assert (new["q"], new["p"], new["z"]) == ("0.50000000", "100.50000000", "0.00000000")
    assert position["e"] == "outboundAccountPosition"
    assert {b["a"]: b["l"] for b in position["B"]}["BTC"] == "0.50000000"
    assert (fill["x"], fill["X"], fill["l"], fill["z"], fill["L"]) == (
        "TRADE", "PARTIALLY_FILLED", "0.20000000", "0.20000000", "100.50000000",
    )  # fmt: skip
    assert (fill["Z"], fill["Y"], fill["m"], fill["i"]) == (
        "20.10000000", "20.10000000", True, new["i"],
    )  # fmt: skip
    assert fill["t"] == mine["id"]
    # The fill's commission, as myTrades shows it: alice made the price (a rebate).
    assert (fill["n"], fill["N"]) == (mine["commission"], mine["commissionAsset"])
    assert (fill["n"], fill["N"]) == ("-0.00402000", "AIT")
    assert (new["n"], new["N"]) == ("0.00000000", None)
    assert expired == {"e": "listenKeyExpired", "E": expired["E"], "listenKey": key}
    assert isinstance(close, CloseConnection)


_LIFETIME = 1.5


async def test_a_listen_key_not_kept_alive_expires_and_its_stream_says_so(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key lives its lifetime (60 minutes; here 1.5 s) from when it was made or last
    kept alive (PUT); then ``listenKeyExpired`` comes, the connection closes and the key
    is refused."""
    monkeypatch.setattr(listen_keys, "KEEP_ALIVE_NS", int(_LIFETIME * 1e9))
    monkeypatch.setattr(user_stream, "EXPIRY_CHECK_SECONDS", 0.02)
    headers = {"X-MBX-APIKEY": server.keys["demo_alice"]}
    key = await _listen_key(server)
    with trio.fail_after(20):
        async with raw_client(_ws(server, f"/ws/{key}")) as ws:
            await trio.sleep(_LIFETIME / 2)
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                kept = await http.put(f"/api/v3/userDataStream?listenKey={key}", headers=headers)
            kept_at = trio.current_time()
            expired = json.loads(await ws.text())
            expired_at = trio.current_time()
            close = await ws.event()
        refused = await refused_handshake(_ws(server, f"/ws/{key}"))
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            late = await http.put(f"/api/v3/userDataStream?listenKey={key}", headers=headers)
    assert kept.status_code == 200, kept.text
    assert expired == {"e": "listenKeyExpired", "E": expired["E"], "listenKey": key}
    assert _LIFETIME - 0.1 <= expired_at - kept_at <= _LIFETIME + 1
    assert isinstance(close, CloseConnection)
    assert (refused.status, refused.json()["code"]) == (400, -1125)
    assert (late.status_code, late.json()["code"]) == (400, -1125)


async def test_deposits_and_withdrawals_come_as_balance_updates(server: Server) -> None:
    key = await _listen_key(server)
    with trio.fail_after(20):
        async with raw_client(_ws(server, f"/ws/{key}")) as ws:
            async with server.client(ADMIN) as admin:
                for route, amount in (("deposits", "12.5"), ("withdrawals", "2.25")):
                    body = {"user_id": "demo_alice", "asset": "BTC", "amount": amount}
                    response = await admin.post(f"/admin/{route}", json=body)
                    assert response.status_code < 300, response.text
            events = [json.loads(await ws.text()) for _ in range(4)]
    deposit, after_deposit, withdrawal, after_withdrawal = events
    assert (deposit["e"], deposit["a"], deposit["d"]) == ("balanceUpdate", "BTC", "12.50000000")
    assert (withdrawal["e"], withdrawal["a"], withdrawal["d"]) == (
        "balanceUpdate", "BTC", "-2.25000000",
    )  # fmt: skip
    free = [Decimal(e["B"][0]["f"]) for e in (after_deposit, after_withdrawal)]
    assert after_deposit["e"] == after_withdrawal["e"] == "outboundAccountPosition"
    assert free[0] - free[1] == Decimal("2.25")


async def test_an_unknown_listen_key_is_refused(server: Server) -> None:
    refused = await refused_handshake(_ws(server, "/ws/" + "k" * 60))
    assert refused.status == 400
    assert refused.json() == {
        "code": -1125, "msg": "This listenKey does not exist.",
    }  # fmt: skip


async def test_a_user_data_subscription_with_a_bad_signature_is_refused(server: Server) -> None:
    frame = {
        "id": "s1",
        "method": "userDataStream.subscribe.signature",
        "params": {"apiKey": server.keys["demo_alice"], "timestamp": _now_ms(),
                   "signature": "0" * 64},
    }  # fmt: skip
    with trio.fail_after(20):
        async with open_websocket_url(_ws(server, "/ws-api/v3")) as ws:
            await ws.send_message(json.dumps(frame))
            answer = await _next(ws)
            await ws.send_message(json.dumps({"id": 2, "method": "session.subscriptions"}))
            listed = await _next(ws)
    bad = {"code": -1022, "msg": "Signature for this request is not valid."}
    assert answer == {"id": "s1", "status": 400, "error": bad}
    assert listed == {"id": 2, "status": 200, "result": []}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_ROUNDS = 1000


async def test_a_connection_that_stops_reading_is_dropped_as_a_slow_consumer(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It may fall OUTBOX messages behind; then it is closed (1008), as Binance closes it,
    and the market-data actor holds it no more."""
    monkeypatch.setattr(connection, "OUTBOX", 20)
    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(limit_order, server, "demo_alice", "sell", str(30000 + i), "0.1")
    streams = [f"btcait@depth{n}{pace}" for n in (5, 10, 20) for pace in ("", "@100ms")]
    # A client that reads nothing while it asks for the partial books again and again
    # (about 3 KB a round, more than the socket's buffers take): its socket fills, then
    # its inbox.
    async with raw_client(_ws(server, "/ws/0"), receive_buffer=4096) as ws:
        for round_ in range(_ROUNDS):
            for method in ("SUBSCRIBE", "UNSUBSCRIBE"):
                frame = {"method": method, "params": streams, "id": round_}
                await ws.send_text(json.dumps(frame))
        texts = []
        with trio.fail_after(20):
            while not isinstance(event := await ws.event(), CloseConnection):
                if isinstance(event, TextMessage):
                    texts.append(json.loads(str(event.data)))
            await ws.end_of_stream()
    assert event.code == 1008
    assert 0 < sum("lastUpdateId" in t for t in texts) < _ROUNDS * len(streams)
    assert await server.engine.subscribers() == 0


def test_an_inbox_refuses_past_its_limit_and_once_closed() -> None:
    """What the market-data actor sees of a connection too far behind: ``WouldBlock``
    (it then drops it and closes the inbox), then ``ClosedResourceError``."""
    inbox = connection.Inbox(2)
    inbox.send_nowait("a")
    inbox.send_nowait("b")
    with pytest.raises(trio.WouldBlock):
        inbox.send_nowait("c")
    inbox.close()
    with pytest.raises(trio.ClosedResourceError):
        inbox.send_nowait("d")
