"""The web UI at ``/`` in headless Chromium: what a person sees and does on it."""

from __future__ import annotations

import os
import random
import re
from decimal import Decimal
from pathlib import Path

import trio
from playwright.sync_api import Locator, Page, ViewportSize, expect

from tests.api.conftest import Server
from tests.api.test_rest import list_perp_and_fund
from tests.browser.conftest import in_browser, log_in, place, rest, submit

BTC = {"symbol": "BTC_AIT", "type": "limit"}


def cells(page: Page, selector: str) -> list[list[str]]:
    """The text of each cell of each row of a table body."""
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{selector} tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )
    return rows


def order_row(page: Page, order_id: str) -> Locator:
    """The row of an order in the open orders table."""
    return page.locator(f'#orders tr[data-order-id="{order_id}"]')


def place_pending(page: Page, stop_price: str, price: str, kind: str) -> str:
    """Send the ticket's triggered order of 0.1 at these prices; check that it waits for its
    trigger and that open orders show it as ``kind``; its order id."""
    page.fill("input[name=stop_price]", stop_price)
    page.fill("input[name=price]", price)
    page.fill("input[name=quantity]", "0.1")
    page.click("#submit")
    result = page.locator("#order-result")
    expect(result).to_have_text(re.compile(r"^Order \d+ pending_trigger: filled 0 of 0\.1\.$"))
    order_id: str = re.findall(r"\d+", result.inner_text())[0]
    row = order_row(page, order_id)
    expect(row).to_contain_text(kind)
    expect(row).to_contain_text(f"{price} (stop {stop_price})")
    return order_id


async def test_the_page_loads_its_modules_and_the_chart_library_with_no_console_error(
    server: Server,
) -> None:
    def scenario(page: Page) -> list[str]:
        # The library drew both charts (canvases), and the interval switch resubscribes.
        expect(page.locator("#candle-chart canvas").first).to_be_visible()
        expect(page.locator("#depth-chart canvas").first).to_be_visible()
        legend = page.locator("#candle-legend")
        expect(legend).to_have_text("BTC_AIT 1m no trades in this interval yet")
        page.click("#intervals [data-interval='1h']")
        expect(legend).to_contain_text("BTC_AIT 1h")
        expect(page.locator("#intervals [data-interval='1h']")).to_have_attribute(
            "aria-selected", "true"
        )
        icon: str = page.eval_on_selector("link[rel=icon]", "link => link.href")
        assert icon == server.url + "/ui/favicon.svg"
        paths: list[str] = page.evaluate(
            "performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)"
        )
        return paths

    loaded = await in_browser(server, scenario)
    modules = {"app", "api", "dom", "decimal", "feed", "book", "charts", "ticket", "account"}
    assert {f"/ui/{name}.js" for name in modules} <= set(loaded)
    assert "/ui/lightweight-charts.mjs" in loaded, "served by the engine, not a CDN"


async def test_book_tape_candles_depth_and_ticker_follow_orders_placed_over_rest(
    server: Server,
) -> None:
    def scenario(page: Page) -> None:
        place(server, "demo_bob", **BTC, side="sell", quantity="0.5", price="30000")
        expect(page.locator("#asks tr")).to_have_count(1)
        assert cells(page, "#asks") == [["30000", "0.5", "0.5"]]
        expect(page.locator("#depth-legend")).to_have_text("bids 0 BTC · asks 0.5 BTC")

        place(server, "demo_alice", **BTC, side="buy", quantity="0.2", price="30000")
        expect(page.locator("#trades tr").first).to_contain_text("300000.2")
        expect(page.locator("#asks tr").first).to_have_text("300000.30.3")
        legend = page.locator("#candle-legend")
        expect(legend).to_have_text("BTC_AIT 1m O 30000 H 30000 L 30000 C 30000 V 0.2")
        expect(page.locator("#t-last")).to_have_text("30000")

        place(server, "demo_bob", **BTC, side="sell", quantity="0.1", price="30030")
        place(server, "demo_alice", **BTC, side="buy", quantity="0.4", price="30030")
        expect(legend).to_have_text("BTC_AIT 1m O 30000 H 30030 L 30000 C 30030 V 0.6")
        expect(page.locator("#trades tr")).to_have_count(3)
        # 24 h change: a percentage of the price 24 h ago (30 on 30000), then the figure.
        expect(page.locator("#t-change")).to_have_text("+0.10% +30")
        expect(page.locator("#t-change")).to_have_class("buy")
        expect(page.locator("#asks tr")).to_have_count(0)
        expect(page.locator("#depth-legend")).to_have_text("bids 0 BTC · asks 0 BTC")

    await in_browser(server, scenario)


async def test_an_order_from_the_ticket_rests_in_open_orders_and_the_book_until_cancelled(
    server: Server,
) -> None:
    eth = {"symbol": "ETH_AIT", "type": "limit", "side": "buy", "quantity": "0.01"}
    for cents in range(21):  # more than a page of order history
        await submit(server, "demo_alice", **eth, price=f"1000.{cents:02d}")
    earlier = await submit(server, "demo_alice", **BTC, side="buy", quantity="0.1", price="29000")

    def scenario(page: Page) -> None:
        log_in(page, server.keys["demo_alice"], "demo_alice")
        # The orders snapshot fills open orders; it is no event.
        expect(order_row(page, earlier["order_id"])).to_be_visible()
        page.click("#account-tabs [data-tab='events']")
        expect(page.locator("#events li")).to_have_count(0)
        page.click("#account-tabs [data-tab='open']")

        page.fill("input[name=price]", "29500")
        page.fill("input[name=quantity]", "0.25")
        # Maker: a buy below the best ask (none) rests, and earns the -2 bps rebate.
        expect(page.locator("#estimate")).to_have_text(
            "Price29500 AITNotional7375 AITFee (maker -0.02%)-1.475 AITTotal cost7373.525 AIT"
        )
        page.click("#submit")
        result = page.locator("#order-result")
        expect(result).to_have_text(re.compile(r"^Order (\d+) open: filled 0 of 0\.25\.$"))
        order_id = re.findall(r"\d+", result.inner_text())[0]
        row = order_row(page, order_id)
        expect(row).to_contain_text("29500")
        expect(page.locator("#bids tr").first).to_have_text("295000.250.25")
        page.click("#account-tabs [data-tab='events']")
        expect(page.locator("#events li").first).to_contain_text(f"BTC_AIT #{order_id} accepted")
        page.click("#account-tabs [data-tab='open']")

        row.get_by_role("button", name="Amend").click()
        row.get_by_label("new quantity").fill("0.4")
        row.get_by_role("button", name="Save").click()
        expect(page.locator("#account-result")).to_have_text(
            f"Order {order_id} amended: 29500 x 0.4."
        )
        expect(page.locator("#bids tr").first).to_have_text("295000.40.4")
        expect(row.locator("td.quantity")).to_have_text("0.4")

        row.get_by_role("button", name="Cancel").click()
        expect(row).to_have_count(0)
        expect(page.locator("#bids tr")).to_have_count(1)  # the earlier order's 29000 alone
        expect(page.locator("#bids tr").first).to_have_text("290000.10.1")

        # The order history (the read tables), newest first, a page at a time.
        page.click("#account-tabs [data-tab='history']")
        first = page.locator("#history tr").first
        expect(first).to_contain_text(order_id)
        expect(first.locator("td.status")).to_have_text("cancelled (user)")
        expect(page.locator("#history tr")).to_have_count(20)
        expect(page.locator("#history-newer")).to_be_disabled()
        page.click("#history-older")
        expect(page.locator("#history-page")).to_have_text("page 2")
        expect(page.locator("#history tr")).to_have_count(3)  # 23 orders in all
        assert [row[4] for row in cells(page, "#history")] == ["1000.02", "1000.01", "1000"]
        expect(page.locator("#history-older")).to_be_disabled()
        page.click("#history-newer")
        expect(page.locator("#history-page")).to_have_text("page 1")
        expect(page.locator("#history tr").first).to_contain_text(order_id)

    await in_browser(server, scenario)


async def test_the_ticket_offers_each_order_type_with_the_time_in_force_the_engine_uses(
    server: Server,
) -> None:
    await submit(server, "demo_bob", **BTC, side="sell", quantity="0.2", price="30000")
    await submit(server, "demo_bob", **BTC, side="sell", quantity="0.2", price="30010")

    def scenario(page: Page) -> None:
        log_in(page, server.keys["demo_alice"], "demo_alice")
        kind = page.locator("select[name=type]")
        tif = page.locator("select[name=time_in_force]")

        # Bad input: the API's error, naming the field, and nothing placed.
        page.fill("input[name=price]", "29000")
        page.fill("input[name=quantity]", "0.00005")
        page.click("#submit")
        refused = page.locator("#order-result")
        expect(refused).to_contain_text("quantity")
        expect(refused).to_contain_text("0.0001")  # the lot size it is off
        expect(refused).to_have_class(re.compile(r"\berror\b"))
        expect(page.locator("#orders tr")).to_have_text(["no open orders"])

        # A market order never rests: the engine runs it IOC, and so does the ticket.
        kind.select_option("market")
        expect(tif).to_have_value("IOC")
        expect(tif.locator("option[value=GTC]")).to_be_disabled()
        expect(page.locator("#row-price")).to_be_hidden()
        expect(page.locator("input[name=post_only]")).to_be_disabled()
        page.fill("input[name=quantity]", "0.3")
        # Its estimate walks the book: 0.2 at 30000 and 0.1 at 30010.
        expect(page.locator("#estimate")).to_have_text(
            "Avg price≈ 30003.3333 AITNotional9001 AITFee (taker 0.1%)9.001 AIT"
            "Total cost9010.001 AIT"
        )
        page.click("#submit")
        expect(page.locator("#order-result")).to_contain_text("filled: filled 0.3 of 0.3")

        # A stop-limit, good till a date: both prices, no FOK, no post-only.
        kind.select_option("stop_limit")
        expect(page.locator("#row-stop-price")).to_be_visible()
        expect(page.locator("#row-price")).to_be_visible()
        expect(tif.locator("option[value=FOK]")).to_be_disabled()
        tif.select_option("GTD")
        expect(page.locator("#row-expire")).to_be_visible()
        page.fill("#expire", "2099-01-02T03:04:05")
        order_id = place_pending(page, "31000", "31100", "stop-limit GTD")
        with rest(server, server.keys["demo_alice"]) as alice:
            order = alice.get(f"/orders/{order_id}").json()
        assert (order["type"], order["time_in_force"]) == ("stop_limit", "GTD")
        assert (order["price"], order["stop_price"]) == ("31100", "31000")

        # The fills tab: the market order's two fills, from the read tables.
        page.click("#account-tabs [data-tab='fills']")
        expect(page.locator("#fills tr")).to_have_count(2)
        assert [row[2:6] for row in cells(page, "#fills")] == [
            ["buy", "30010", "0.1", "3.001"],
            ["buy", "30000", "0.2", "6"],
        ]

        # Another symbol: the last order's message goes with the old one.
        page.select_option("#symbol", "ETH_AIT")
        expect(page.locator("#order-result")).to_have_text("")
        expect(page.locator("#candle-legend")).to_contain_text("ETH_AIT 1m")
        expect(page.locator("#reduce-only")).to_be_hidden()

        # Reduce-only, on a margin symbol only, reaches risk: Alice holds no position.
        page.select_option("#symbol", "PERP_AIT")
        expect(page.locator("#reduce-only")).to_be_visible()
        kind.select_option("limit")
        page.check("input[name=side][value=sell]")
        page.fill("input[name=price]", "1000")
        page.fill("input[name=quantity]", "1")
        page.check("input[name=reduce_only]")
        page.click("#submit")
        expect(page.locator("#order-result")).to_have_text(
            "order rejected: reduce_only_would_increase (the position is 0: a reduce-only"
            " order must be on its other side)"
        )

    await list_perp_and_fund(server, "dave", "200")  # lists PERP_AIT, a margin symbol
    failures = ("POST /api/v1/trading/orders 400", "POST /api/v1/trading/orders 422")
    await in_browser(server, scenario, failures=failures)


async def test_the_ticket_places_take_profit_quote_sized_and_trailing_orders(
    server: Server,
) -> None:
    await submit(server, "demo_bob", **BTC, side="sell", quantity="0.5", price="30000")

    def scenario(page: Page) -> None:
        log_in(page, server.keys["demo_alice"], "demo_alice")
        kind = page.locator("select[name=type]")

        # A take-profit-limit: both prices, pending until a trade reaches its stop price.
        kind.select_option("take_profit_limit")
        expect(page.locator("#row-stop-price")).to_be_visible()
        expect(page.locator("#row-price")).to_be_visible()
        expect(page.locator("#row-quote")).to_be_hidden()
        page.check("input[name=side][value=sell]")
        place_pending(page, "31000", "30900", "take-profit-limit GTC")
        result = page.locator("#order-result")

        # A market buy sized in AIT: the quote amount replaces the quantity.
        kind.select_option("market")
        page.check("input[name=side][value=buy]")
        expect(page.locator("#row-quote")).to_be_visible()
        page.fill("input[name=quote_quantity]", "3003")
        expect(page.locator("#row-quantity")).to_be_hidden()
        page.click("#submit")
        expect(result).to_contain_text("filled 0.1 of")
        with rest(server, server.keys["demo_alice"]) as alice:
            orders = alice.get("/users/demo_alice/orders").json()["orders"]
        [quoted] = [o for o in orders if o["quote_quantity"]]
        assert (quoted["quote_quantity"], quoted["filled_quantity"]) == ("3003", "0.1")

        # A trailing stop-limit: its distance and offset, its stop armed at the last trade.
        kind.select_option("trailing_stop_limit")
        page.check("input[name=side][value=sell]")
        expect(page.locator("#row-trail")).to_be_visible()
        expect(page.locator("#row-offset")).to_be_visible()
        expect(page.locator("#row-stop-price")).to_be_hidden()
        expect(page.locator("#row-price")).to_be_hidden()
        page.select_option("select[name=time_in_force]", "GTC")
        page.fill("input[name=trailing_delta]", "500")
        page.fill("input[name=limit_offset]", "10")
        page.fill("input[name=quantity]", "0.1")
        page.click("#submit")
        expect(result).to_have_text(re.compile(r"^Order \d+ pending_trigger: filled 0 of 0\.1\.$"))
        order_id = re.findall(r"\d+", result.inner_text())[0]
        row = order_row(page, order_id)
        expect(row).to_contain_text("trailing-stop-limit GTC")
        expect(row).to_contain_text("29490 (stop 29500)")

        # A trailing stop by 100 basis points of the last trade (30000): its stop at 29700.
        kind.select_option("trailing_stop")
        page.fill("input[name=trailing_delta]", "100")
        page.select_option("select[name=trailing_unit]", "bps")
        page.click("#submit")
        expect(result).not_to_contain_text(f"Order {order_id} ")
        expect(result).to_have_text(re.compile(r"^Order \d+ pending_trigger: filled 0 of 0\.1\.$"))
        by_bps = re.findall(r"\d+", result.inner_text())[0]
        with rest(server, server.keys["demo_alice"]) as alice:
            shown = alice.get(f"/orders/{by_bps}").json()
        assert (shown["trailing_bps"], shown["trailing_delta"], shown["stop_price"]) == (
            100, None, "29700",
        )  # fmt: skip
        page.select_option("select[name=trailing_unit]", "price")

        # An iceberg: a limit GTC order showing 0.1 of 0.5; the book shows the slice only.
        kind.select_option("limit")
        expect(page.locator("#row-display")).to_be_visible()
        page.fill("input[name=price]", "31500")
        page.fill("input[name=quantity]", "0.5")
        page.fill("input[name=display_quantity]", "0.1")
        page.click("#submit")
        expect(result).to_contain_text("open: filled 0 of 0.5")
        with rest(server, server.keys["demo_alice"]) as alice:
            asks = alice.get("/orderbook/BTC_AIT").json()["asks"]
        assert ["31500", "0.1"] in asks
        page.select_option("select[name=time_in_force]", "IOC")
        expect(page.locator("#row-display")).to_be_hidden()

    await in_browser(server, scenario)


async def test_the_ticket_places_a_bracket_that_waits_for_its_order_to_fill(
    server: Server,
) -> None:
    def scenario(page: Page) -> None:
        log_in(page, server.keys["demo_alice"], "demo_alice")
        page.locator("select[name=type]").select_option("market")
        expect(page.locator("#bracket")).to_be_hidden()
        page.locator("select[name=type]").select_option("limit")
        page.select_option("select[name=time_in_force]", "GTC")
        page.check("input[name=side][value=buy]")
        page.fill("input[name=price]", "29900")
        page.fill("input[name=quantity]", "0.1")
        expect(page.locator("#row-tp")).to_be_hidden()
        page.check("input[name=bracket]")
        page.fill("input[name=tp_price]", "31000")
        page.fill("input[name=sl_price]", "29000")
        page.click("#submit")
        result = page.locator("#order-result")
        expect(result).to_have_text(
            re.compile(
                r"^Bracket \d+ open: order \d+ open, take-profit and stop-loss pending_new\.$"
            )
        )
        list_id = re.findall(r"\d+", result.inner_text())[0]
        place(server, "demo_bob", **BTC, side="sell", quantity="0.1", price="29900")
        with rest(server, server.keys["demo_alice"]) as alice:
            shown = alice.get(f"/order-lists/{list_id}").json()
        assert [(o["side"], o["type"], o["status"]) for o in shown["orders"]] == [
            ("buy", "limit", "filled"),
            ("sell", "limit", "open"),
            ("sell", "stop", "pending_trigger"),
        ]
        take_profit = shown["orders"][1]["order_id"]
        expect(order_row(page, take_profit)).to_contain_text("31000")
        # The orders channel's list and algorithm updates are events too.
        twap = {"type": "twap", "symbol": "BTC_AIT", "side": "buy", "quantity": "0.001",
                "duration_s": "0.2", "slices": 2, "limit_price": "29000"}  # fmt: skip
        with rest(server, server.keys["demo_alice"]) as alice:
            started = alice.post("/algos", json=twap)
        assert started.status_code == 201, started.text
        algo_id = started.json()["algo_id"]
        page.click("#account-tabs [data-tab='events']")
        events = page.locator("#events li")
        expect(events.filter(has_text=f"list {list_id} placed (otoco)")).to_have_count(1)
        expect(events.filter(has_text=f"algo {algo_id} started (twap buy 0.001")).to_have_count(1)
        expect(events.filter(has_text=f"algo {algo_id} slice 2: #")).to_have_count(1)
        expect(events.filter(has_text=f"algo {algo_id} failed (schedule_ended)")).to_have_count(1)

    await in_browser(server, scenario)


async def test_the_ticket_places_an_oco_and_a_one_sided_bracket(server: Server) -> None:
    def scenario(page: Page) -> None:
        log_in(page, server.keys["demo_alice"], "demo_alice")
        page.locator("select[name=type]").select_option("limit")
        page.select_option("select[name=time_in_force]", "GTC")
        page.check("input[name=side][value=sell]")
        page.fill("input[name=price]", "31000")
        page.fill("input[name=quantity]", "0.1")
        page.check("input[name=bracket]")
        page.check("input[name=oco]")  # one or the other: the bracket is unticked
        expect(page.locator("input[name=bracket]")).not_to_be_checked()
        expect(page.locator("#row-tp")).to_be_hidden()
        page.fill("input[name=oco_stop]", "29000")
        page.click("#submit")
        result = page.locator("#order-result")
        expect(result).to_have_text(
            re.compile(r"^OCO \d+ open: order \d+ open, stop pending_trigger\.$")
        )
        oco_id = re.findall(r"\d+", result.inner_text())[0]
        # A bracket with a take-profit only: an oto.
        page.check("input[name=bracket]")
        expect(page.locator("input[name=oco]")).not_to_be_checked()
        page.check("input[name=side][value=buy]")
        page.fill("input[name=price]", "29500")
        page.fill("input[name=tp_price]", "30500")
        page.click("#submit")
        expect(result).to_have_text(
            re.compile(r"^Bracket \d+ open: order \d+ open, then pending_new\.$")
        )
        oto_id = re.findall(r"\d+", result.inner_text())[0]
        with rest(server, server.keys["demo_alice"]) as alice:
            oco = alice.get(f"/order-lists/{oco_id}").json()
            oto = alice.get(f"/order-lists/{oto_id}").json()
        assert [(o["side"], o["type"], o["price"], o["stop_price"]) for o in oco["orders"]] == [
            ("sell", "limit", "31000", None), ("sell", "stop", None, "29000"),
        ]  # fmt: skip
        assert oco["type"] == "oco"
        assert [(o["side"], o["type"], o["price"]) for o in oto["orders"]] == [
            ("buy", "limit", "29500"), ("sell", "limit", "30500"),
        ]  # fmt: skip
        assert oto["type"] == "oto"

    await in_browser(server, scenario)


async def test_the_page_fits_a_420_px_wide_screen(server: Server) -> None:
    await submit(server, "demo_alice", **BTC, side="buy", quantity="0.1234", price="29000.55")
    await submit(server, "demo_alice", **BTC, side="sell", quantity="0.5", price="31000")

    def scenario(page: Page) -> None:
        log_in(page, server.keys["demo_alice"], "demo_alice")
        expect(page.locator("#orders tr")).to_have_count(2)
        width: int = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, "nothing overflows the screen sideways"
        cancel = page.locator("#orders tr").first.get_by_role("button", name="Cancel")
        cancel.click()
        expect(page.locator("#orders tr")).to_have_count(1)

    await in_browser(server, scenario, viewport=ViewportSize(width=420, height=860))


async def trade_like_a_market(server: Server, steps: int, seconds: float) -> None:
    """Demo activity on BTC_AIT: ``steps`` trades on a seeded random walk around 30000,
    ``seconds`` apart, then a ladder of resting orders on both sides, two of them Alice's."""
    walk = random.Random(7)
    price = 30000
    async with (
        server.client(server.keys["demo_bob"]) as bob,
        server.client(server.keys["demo_alice"]) as alice,
    ):
        for step in range(steps):
            price += 5 * walk.randint(-3, 3)
            quantity = str(Decimal(walk.randint(1, 60)) / 100)
            maker, taker = (bob, alice) if step % 3 else (alice, bob)
            side = walk.choice(["buy", "sell"])
            other = "sell" if side == "buy" else "buy"
            order = {**BTC, "quantity": quantity, "price": str(price)}
            assert (await maker.post("/orders", json=order | {"side": side})).is_success
            assert (await taker.post("/orders", json=order | {"side": other})).is_success
            await trio.sleep(seconds)
        for level in range(1, 13):
            quantity = str(Decimal(walk.randint(5, 150)) / 100)
            for side, sign in (("buy", -1), ("sell", 1)):
                order = {**BTC, "side": side, "quantity": quantity}
                order["price"] = str(price + sign * (5 * level + walk.randint(0, 4)))
                assert (await bob.post("/orders", json=order)).is_success
        for side, sign in (("buy", -1), ("sell", 1)):
            order = {**BTC, "side": side, "quantity": "0.25", "price": str(price + sign * 90)}
            assert (await alice.post("/orders", json=order)).is_success


async def test_a_screenshot_of_the_page_with_demo_orders_and_trades(
    server: Server, tmp_path: Path
) -> None:
    """``make screenshot`` keeps it as docs/web-ui.png, with trades over ten minutes."""
    target = Path(os.environ.get("WEB_UI_SCREENSHOT") or tmp_path / "web-ui.png")
    minutes = float(os.environ.get("WEB_UI_SCREENSHOT_MINUTES", "0"))
    steps = max(30, int(minutes * 6))
    with trio.fail_after(30 + minutes * 60):
        await trade_like_a_market(server, steps, minutes * 60 / steps)

    def scenario(page: Page) -> None:
        log_in(page, server.keys["demo_alice"], "demo_alice")
        expect(page.locator("#orders tr")).to_have_count(2)
        expect(page.locator("#asks tr")).to_have_count(12)
        expect(page.locator("#trades tr")).to_have_count(min(steps, 50))  # the feed's snapshot
        page.fill("input[name=price]", page.locator("#t-bid").inner_text())
        page.fill("input[name=quantity]", "0.5")
        page.mouse.move(10, 10)
        page.wait_for_timeout(300)  # the charts' last frame
        page.screenshot(path=str(target), full_page=True)

    await in_browser(server, scenario, dark=True)
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
