"""GraphiQL explorer in a real (headless) Chromium, fully offline.

Opens ``/graphql`` the way a person does, waits for GraphiQL to render from the
vendored assets, opens the Docs pane (the schema was fetched by introspection:
``placeOrder`` is listed under Mutation), checks the result pane holds no error,
types a query other than GraphiQL's default one, runs it and reads the result
pane. Every request to a host other than the app's loopback address is
aborted and recorded; the page must not need any.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``, installed by `make test-deps`)
and the ``playwright`` Python package; Playwright's own browser download is never used.
Without Chromium the test fails (tests/e2e/browser.py).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, Request

from tests.conftest import LiveApp
from tests.e2e.browser import browser_page

QUERY = "query Typed { products(first: 2) { edges { node { sku priceCents currency } } } }"
TIMEOUT_MS = 30_000

# GraphiQL 3 uses CodeMirror 5: each editor's wrapper element carries the
# CodeMirror instance as its ``CodeMirror`` property.
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
RESPONSE_EDITOR = ".graphiql-response .CodeMirror"
# The tools section holds the variables and headers editors; the inactive one
# is hidden, and the section is labelled after the active tab.
HEADERS_EDITOR = (
    'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror'
)
HEADERS_TAB = '.graphiql-editor-tools button[data-name="headers"]'
RUN_BUTTON = "button.graphiql-execute-button"
EXPLORER_BUTTON = 'button[aria-label="Show GraphiQL Explorer"]'
DOCS_BUTTON = 'button[aria-label="Show Documentation Explorer"]'
DOC_EXPLORER = ".graphiql-doc-explorer"
DOCS_ERROR = ".graphiql-doc-explorer-error"


async def _editor_value(page: Page, selector: str) -> str:
    value: Any = await page.evaluate(
        "sel => document.querySelector(sel).CodeMirror.getValue()", selector
    )
    assert isinstance(value, str)
    return value


async def _set_editor_value(page: Page, selector: str, text: str) -> None:
    await page.evaluate(
        "([sel, text]) => document.querySelector(sel).CodeMirror.setValue(text)",
        [selector, text],
    )


@pytest.mark.browser
async def test_graphiql_renders_offline_and_runs_a_query(
    live_app: LiveApp, tmp_path: pathlib.Path
) -> None:
    graphql_posts: list[dict[str, str]] = []  # headers of POSTs to /graphql

    def on_request(request: Request) -> None:
        if request.method == "POST" and urlsplit(request.url).path == "/graphql":
            graphql_posts.append(request.headers)

    async with browser_page(live_app.base_url, tmp_path / "chromium-profile") as (page, log):
        page.on("request", on_request)
        # A normal navigation: Chromium sends Accept: text/html,...
        response = await page.goto(f"{live_app.base_url}/graphql", wait_until="load")
        assert response is not None and response.ok, response and response.status
        assert "text/html" in (response.headers.get("content-type") or "")
        assert await page.title() == "Shopfront GraphiQL"

        # GraphiQL has replaced the "Loading..." placeholder.
        await page.wait_for_selector(QUERY_EDITOR)
        await page.wait_for_selector(RUN_BUTTON)
        assert await page.locator("#graphiql .loading").count() == 0
        # The explorer plugin registered itself in the sidebar.
        assert await page.locator(EXPLORER_BUTTON).count() == 1

        # The Docs pane lists the schema: introspection answered.
        await page.click(DOCS_BUTTON)
        await page.wait_for_selector(f"{DOC_EXPLORER} >> text=Root Types")
        assert await page.locator(DOCS_ERROR).count() == 0
        await page.click(f'{DOC_EXPLORER} a.graphiql-doc-explorer-type-name >> text="Mutation"')
        await page.wait_for_selector(
            f'{DOC_EXPLORER} .graphiql-doc-explorer-field-name >> text="placeOrder"'
        )
        docs = await page.locator(DOC_EXPLORER).inner_text()
        assert "Error fetching schema" not in docs, docs
        # Nothing went wrong on load: the result pane holds no error.
        on_load = await _editor_value(page, RESPONSE_EDITOR)
        assert "error" not in on_load.lower(), on_load
        default_query = await _editor_value(page, QUERY_EDITOR)
        assert "priceCents" not in default_query, default_query

        headers = json.dumps({"Authorization": f"Bearer {live_app.customer_token}"})
        await page.click(HEADERS_TAB)
        await page.wait_for_selector(HEADERS_EDITOR)
        await _set_editor_value(page, HEADERS_EDITOR, headers)
        # Typed into the editor, as a person would (replacing what is there).
        await page.click(QUERY_EDITOR)
        await page.keyboard.press("Control+A")
        await page.keyboard.press("Delete")
        await page.keyboard.insert_text(QUERY)
        assert await _editor_value(page, QUERY_EDITOR) == QUERY
        # GraphiQL takes in an edit after a debounce, then stores the tab's query:
        # once it is stored, Run runs it.
        await page.wait_for_function(
            """q => Object.keys(localStorage).some(
                   k => (localStorage.getItem(k) || "").includes(q))""",
            arg="priceCents currency",
        )

        await page.click(RUN_BUTTON)
        await page.wait_for_function(
            "sel => document.querySelector(sel).CodeMirror.getValue().trim() !== ''",
            arg=RESPONSE_EDITOR,
        )
        shown = await _editor_value(page, RESPONSE_EDITOR)
        # Left in pytest's tmp dir (kept for the last runs) for a look.
        await page.screenshot(path=tmp_path / "graphiql.png")

    assert "edges" in shown and "priceCents" in shown, shown
    result = json.loads(shown)
    assert "errors" not in result, shown
    edges = result["data"]["products"]["edges"]
    assert edges and all(edge["node"]["sku"] for edge in edges), shown
    assert all(edge["node"]["currency"] for edge in edges), shown

    # The headers editor content travelled with the HTTP request.
    assert graphql_posts, "GraphiQL sent no POST /graphql"
    auth = {h.get("authorization") for h in graphql_posts}
    assert f"Bearer {live_app.customer_token}" in auth, auth

    log.assert_clean()
