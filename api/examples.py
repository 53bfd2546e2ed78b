"""Dev only: the example pages of ``examples/`` served by the app, so that a frontend
developer can open them next to GraphiQL (``/examples/order-tracker/``)."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

TRACKER = Path(__file__).resolve().parent.parent / "examples" / "order-tracker" / "static"
TRACKER_PATH = "/examples/order-tracker"


def example_routes(demo_token: Callable[[], Awaitable[str | None]]) -> list[BaseRoute]:
    """The order tracker page (with the demo customer's token filled in, as GraphiQL's
    headers are) and its files; nothing when the examples are not on disk (an installed,
    not checked-out, package)."""
    if not (TRACKER / "index.html").is_file():
        return []

    async def page(request: Request) -> Response:
        token = await demo_token()
        text = (TRACKER / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(text.replace("__DEMO_TOKEN__", html.escape(token or "", quote=True)))

    return [
        Route(f"{TRACKER_PATH}/", page),
        Mount(TRACKER_PATH, app=StaticFiles(directory=TRACKER), name="order-tracker"),
    ]
