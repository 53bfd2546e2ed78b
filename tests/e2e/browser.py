"""Headless Chromium (Debian's /usr/bin/chromium, found by tests/required_tools.py) driven
by Playwright, for the pages the app serves: a fresh profile per test, and every request
to anything but the app aborted and recorded, so a page that needs the internet fails. A
missing Chromium fails the test (`make test-deps` installs it)."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from playwright.async_api import Page, Response, Route, async_playwright

from tests import required_tools

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Name resolution fails for everything but loopback, so nothing can leak
    # even past the request interception below (e.g. browser-internal fetches).
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]
TIMEOUT_MS = 30_000


@dataclasses.dataclass
class BrowserLog:
    outside: list[str] = dataclasses.field(default_factory=list)  # aborted requests
    failed: list[str] = dataclasses.field(default_factory=list)  # app answers >= 400
    page_errors: list[str] = dataclasses.field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.outside == [], f"page tried to reach non-local hosts: {self.outside}"
        assert self.failed == [], f"app answered with errors: {self.failed}"
        assert self.page_errors == [], f"uncaught errors in the page: {self.page_errors}"


@contextlib.asynccontextmanager
async def browser_page(
    base_url: str, profile: pathlib.Path
) -> AsyncIterator[tuple[Page, BrowserLog]]:
    chromium = required_tools.chromium()
    base = urlsplit(base_url)
    assert base.hostname in LOOPBACK_HOSTS, f"the app must listen on loopback: {base_url}"
    log = BrowserLog()

    async def only_the_app(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("http", "https", "ws") and url.netloc == base.netloc:
            await route.continue_()
        else:
            log.outside.append(route.request.url)
            await route.abort("blockedbyclient")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            log.failed.append(f"{response.status} {response.url}")

    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            profile,  # a fresh --user-data-dir
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            await context.route("**/*", only_the_app)
            page = await context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
            page.on("response", on_response)
            yield page, log
        finally:
            await context.close()
