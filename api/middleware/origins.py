"""Which browser origins may call the API from another origin: CORS for HTTP and the
``Origin`` check of WebSocket handshakes. Explicit allow-lists always
(``SHOPFRONT_CORS_ORIGINS``, ``SHOPFRONT_ALLOWED_ORIGINS``); in dev, also any port of
``localhost``, ``127.0.0.1`` and ``[::1]``, so that a frontend dev server (Vite on :5173,
Next on :3000, ...) works out of the box. Prod keeps the explicit lists only."""

from __future__ import annotations

import re

import orjson
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from api.settings import Settings

LOOPBACK_ORIGIN = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?"
_LOOPBACK = re.compile(LOOPBACK_ORIGIN)
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Accept", "Shopfront-Consistency"]


def loopback_allowed(settings: Settings) -> bool:
    return settings.is_dev and settings.dev_allow_loopback_origins


def is_loopback(origin: str) -> bool:
    return _LOOPBACK.fullmatch(origin) is not None


class Cors(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered 403 with a GraphQL-style error
    body that says what to set (Starlette answers 400 in plain text)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        super().__init__(
            app,
            allow_origins=settings.cors_origins,
            allow_origin_regex=LOOPBACK_ORIGIN if loopback_allowed(settings) else None,
            allow_methods=["GET", "POST"],
            allow_headers=ALLOWED_HEADERS,
            expose_headers=["Retry-After"],
            max_age=600,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        origin = request_headers.get("origin", "")
        if not self.is_allowed_origin(origin):
            message = (
                f"Origin {origin} may not call this API: add it to SHOPFRONT_CORS_ORIGINS "
                "(and SHOPFRONT_ALLOWED_ORIGINS for WebSockets)"
            )
        else:
            message = (
                "This cross-origin request is not allowed: methods GET and POST, headers "
                + ", ".join(ALLOWED_HEADERS)
            )
        body = {"errors": [{"message": message, "extensions": {"code": "CORS_NOT_ALLOWED"}}]}
        return Response(orjson.dumps(body), 403, media_type="application/json; charset=utf-8")
