"""The web UI in a real headless Chromium (Debian's), driven by Playwright, against a real
server with the demo data on an ephemeral port (``tests/api/conftest.py``'s ``server``).

Playwright's API is synchronous here: each test hands a scenario to ``in_browser``, which
runs it in a worker thread while the server goes on in the test's Trio loop. The scenario
places orders over REST with a synchronous httpx client: real HTTP on loopback. Every
scenario ends with a check that the page logged no console error, raised no uncaught
exception and loaded nothing from anywhere but the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import httpx
import trio
from playwright.sync_api import (
    ConsoleMessage,
    Error,
    Page,
    Request,
    Response,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.api import conftest as api
from tests.api.conftest import Server

# The API tests' server with the demo data, and the fixtures it takes.
server = api.server
limiter = api.limiter
engine_config = api.engine_config

T = TypeVar("T")

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # The machine's network is closed: without these Chromium keeps dialling out and
    # logging refused connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDE = ViewportSize(width=1440, height=900)
TIMEOUT_MS = 10_000

expect.set_options(timeout=TIMEOUT_MS)


@attrs.define
class Console:
    """What a page said and fetched: console errors, uncaught exceptions, request URLs,
    and each request that failed or got an HTTP error ("POST /api/v1/trading/orders 422")."""

    origin: str
    errors: list[str] = attrs.Factory(list)
    requests: list[str] = attrs.Factory(list)
    failures: list[str] = attrs.Factory(list)

    def watch(self, page: Page) -> None:
        # Plain functions: Playwright tags each handler with an attribute.
        def message(message: ConsoleMessage) -> None:
            # Chromium reports each HTTP error status as a console error too: those are
            # in `failures`, where a test names the ones it provokes.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                self.errors.append(f"console: {message.text}")

        def request(request: Request) -> None:
            self.requests.append(request.url)

        def response(response: Response) -> None:
            if response.status >= 400:
                path = response.url.removeprefix(self.origin)
                self.failures.append(f"{response.request.method} {path} {response.status}")

        def failed(request: Request) -> None:
            self.failures.append(f"{request.method} {request.url}: {request.failure}")

        page.on("console", message)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("request", request)
        page.on("response", response)
        page.on("requestfailed", failed)


def rest(server: Server, key: str | None = None) -> httpx.Client:
    """A synchronous client of the server's REST API, for scenarios (they run in a thread)."""
    headers = {"X-API-Key": key} if key else {}
    return httpx.Client(base_url=server.url + "/api/v1/trading", headers=headers, timeout=10)


def place(server: Server, user: str, **order: str) -> dict[str, Any]:
    """Place an order for a demo user over REST; the order as the API answers it."""
    with rest(server, server.keys[user]) as client:
        response = client.post("/orders", json=order)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def submit(server: Server, user: str, **order: str) -> dict[str, Any]:
    """``place`` from a test's Trio loop (in a thread, so that the server can answer)."""
    return await trio.to_thread.run_sync(lambda: place(server, user, **order))


def log_in(page: Page, key: str, user: str) -> None:
    """Paste an API key into the page, as a person does, and wait for the page to take it."""
    page.fill("#key", key)
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-status")).to_have_text(f"Trading as {user}.")


async def in_browser(
    server: Server,
    scenario: Callable[[Page], T],
    *,
    viewport: ViewportSize = WIDE,
    dark: bool = False,
    failures: tuple[str, ...] = (),
) -> T:
    """Open the page at ``/`` in Chromium, wait for the feed, run ``scenario(page)``; its
    result. Fails if the page logged an error, fetched anything from another origin, or
    had a request fail other than the expected ``failures``."""
    if not CHROMIUM.exists():
        raise AssertionError(f"no Chromium at {CHROMIUM}: `make test` installs Debian's")

    def run() -> T:
        console = Console(server.url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=FLAGS, headless=True
            )
            try:
                page = browser.new_page(viewport=viewport, color_scheme="dark" if dark else "light")
                page.set_default_timeout(TIMEOUT_MS)
                console.watch(page)
                page.goto(server.url + "/")
                expect(page.locator("#conn")).to_have_attribute("data-state", "live")
                expect(page.locator("#symbol option")).not_to_have_count(0)
                result = scenario(page)
                page.wait_for_timeout(100)  # anything the last action logged
            except Error as exc:
                raise AssertionError(f"{exc}\nconsole: {console.errors}") from None
            finally:
                browser.close()
        assert console.errors == []
        assert console.failures == list(failures)
        foreign = [url for url in console.requests if not url.startswith(server.url + "/")]
        assert foreign == [], "the page loads only the server's own files"
        return result

    # Playwright's own timeouts end each step; this ends a scenario that keeps going.
    with trio.fail_after(120):
        return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
