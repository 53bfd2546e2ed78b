"""The bodies and headers of GraphQL-over-HTTP answers (see ``view.py`` for the rules)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from api.auth import InvalidToken
from api.graphql.errors import request_error
from api.http.request import CHARSET, GRAPHQL_RESPONSE, VARY

RETRY_AFTER = {"Retry-After": "1"}


def respond(
    body: dict[str, Any], status: int, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status,
        headers={**VARY, **(headers or {})},
        media_type=f"{media_type}; charset={CHARSET}",
    )


def request_error_status(media_type: str) -> int:
    """A GraphQL request error in a well-formed request (parse, validation, variable
    coercion, no operation): 400 in application/graphql-response+json, 200 in
    application/json (the spec's SHOULDs for each)."""
    return 400 if media_type == GRAPHQL_RESPONSE else 200


def unauthenticated(error: InvalidToken, media_type: str) -> Response:
    return respond(
        request_error(str(error), "UNAUTHENTICATED"),
        401,
        media_type,
        {"WWW-Authenticate": "Bearer"},
    )
