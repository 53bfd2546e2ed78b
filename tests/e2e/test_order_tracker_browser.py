"""The live order tracker (examples/order-tracker, served in dev at
/examples/order-tracker/) in a real headless Chromium: the demo customer picks a product,
places an order, pays, and watches the timeline move to SHIPPED and DELIVERED without a
reload. The page draws the order only from its graphql-ws subscription, and the shipment
is made outside the page (through the API, as staff), so each status seen was pushed."""

from __future__ import annotations

import pathlib

import pytest
from playwright.async_api import Page

from tests.conftest import LiveApp
from tests.e2e.browser import browser_page
from tests.e2e.client import api_client

TRACKER = "/examples/order-tracker/"


async def _shows(page: Page, status: str) -> None:
    """Waits until the page shows ``status`` as the order's and in its timeline."""
    await page.wait_for_function(
        """status => document.getElementById("status").dataset.status === status
            && document.querySelector(`#timeline li[data-status="${status}"]`) !== null""",
        arg=status,
    )


@pytest.mark.browser
async def test_the_tracker_follows_an_order_live(live_app: LiveApp, tmp_path: pathlib.Path) -> None:
    async with browser_page(live_app.base_url, tmp_path / "profile") as (page, log):
        response = await page.goto(f"{live_app.base_url}{TRACKER}", wait_until="load")
        assert response is not None and response.ok
        assert await page.title() == "Shopfront order tracker"
        # A marker that a reload would lose.
        await page.evaluate("window.__notReloaded = true")
        assert await page.input_value("#customer-token"), "the demo token is not filled in"
        # A function, not an expression string: Playwright re-evaluates a string with
        # eval() in the page while it polls, which the page's CSP refuses (no
        # 'unsafe-eval'); so the test failed whenever the options were not there at once.
        await page.wait_for_function(
            "() => document.querySelectorAll('#product option').length > 0"
        )

        await page.click("#place")
        await _shows(page, "PLACED")
        order_id = (await page.text_content("#order-id")) or ""
        assert order_id
        assert await page.is_enabled("#pay") and not await page.is_enabled("#ship")

        await page.click("#pay")
        await _shows(page, "PAID")

        async with api_client(live_app.base_url) as api:
            shipped = await api.ship(live_app.staff_token, order_id)
        assert shipped["userErrors"] == [], shipped
        await _shows(page, "SHIPPED")

        await page.fill("#staff-token", live_app.staff_token)
        await page.click("#deliver")
        await _shows(page, "DELIVERED")

        steps = await page.eval_on_selector_all(
            "#timeline li", "items => items.map(item => item.dataset.status)"
        )
        assert steps == ["PLACED", "PAID", "SHIPPED", "DELIVERED"], steps
        assert await page.evaluate("window.__notReloaded === true"), "the page reloaded"
        assert await page.text_content("#message") == ""
        await page.screenshot(path=tmp_path / "order-tracker.png", full_page=True)
    log.assert_clean()


def test_the_tracker_is_served_in_dev_mode_only(tmp_path: pathlib.Path) -> None:
    from api.app import build_app
    from api.settings import Settings

    def example_paths(env: str) -> list[str]:
        settings = Settings(
            env=env,  # type: ignore[arg-type]
            jwt_secret="p" * 40,
            write_database_url=f"sqlite+aiosqlite:///{tmp_path}/write.db",
            read_database_url=f"sqlite+aiosqlite:///{tmp_path}/read.db",
        )
        routes = build_app(settings).routes
        return [path for r in routes if (path := getattr(r, "path", "")).startswith("/examples")]

    assert example_paths("dev")
    assert example_paths("prod") == []
