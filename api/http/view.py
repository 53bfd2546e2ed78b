"""GraphQL over HTTP (graphql-over-http spec): GET (and HEAD) for queries, POST for
everything; ``application/json`` and ``application/graphql-response+json`` responses.

Status codes follow the spec, per response media type:

* not a well-formed GraphQL-over-HTTP request (bad JSON, bad parameters, wrong
  Content-Type, unacceptable Accept): 4xx whatever the media type;
* a well-formed request with a GraphQL request error (parse, validation, variable
  coercion, no operation to run): ``application/json`` 200,
  ``application/graphql-response+json`` 400 -- and no ``data`` entry either way;
* an executed operation (``data`` present, even ``null`` with field errors): 200.

Accept negotiation: the offered type with the highest quality wins, the quality of a
type being that of the most specific media range matching it (RFC 9110, 12.5.1); on a
tie, a type the client named explicitly wins over one matched by a wildcard, and
between two explicit ones ``application/graphql-response+json`` (it carries request
errors as 4xx). A bare wildcard (``*/*``, ``application/*``) and a missing Accept
header get ``application/json``, as the graphql-http audit (1.x) checks and legacy
clients expect. Nothing acceptable: 406. Every response says ``charset=utf-8``.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from api.auth import InvalidToken, request_actor
from api.bootstrap import Services
from api.graphql.errors import DATABASE_UNAVAILABLE, UNAVAILABLE_MESSAGE, request_error
from api.http.operation import operation
from api.http.request import CHARSET, JSON, VARY, BadRequest, accept_header, negotiate, read_params
from api.http.respond import RETRY_AFTER, respond, unauthenticated
from api.middleware.security import client_address, rate_limited_error, retry_after
from api.ws.limits import identity_key
from migrations.engine import database_unavailable, one_line

log = logging.getLogger("shopfront.http")


async def graphql_http(request: Request, services: Services) -> Response:
    try:
        return await _graphql_http(request, services)
    except Exception as error:  # outside GraphQL's execution: the consistency wait...
        if not database_unavailable(error):
            raise
        log.warning("database unavailable: %s", one_line(error))
        media_type = negotiate(accept_header(request)) or JSON
        body = request_error(UNAVAILABLE_MESSAGE, DATABASE_UNAVAILABLE)
        return respond(body, 503, media_type, RETRY_AFTER)


async def _graphql_http(request: Request, services: Services) -> Response:
    media_type = negotiate(accept_header(request))
    if media_type is None:
        return respond(
            request_error(
                "Accept application/graphql-response+json or application/json", "NOT_ACCEPTABLE"
            ),
            406,
            JSON,
        )
    try:
        raw = await read_params(request, services.settings.max_batch_operations)
    except BadRequest as error:
        return respond(
            request_error(error.message, error.code), error.status, media_type, error.headers
        )
    if isinstance(raw, list):
        return await _batch(request, services, raw, media_type)
    return await operation(request, services, raw, media_type)


async def _batch(
    request: Request, services: Services, items: list[dict[str, Any]], media_type: str
) -> Response:
    """A JSON array of operations (Apollo's BatchHttpLink): each run as if sent alone, in
    order, each counted against the rate limits (the middleware took one token for the
    request) and the query limits; answered with the array of their answers."""
    try:
        actor = request_actor(services.authenticator, request.scope)
    except InvalidToken as error:
        return unauthenticated(error, media_type)
    address = client_address(request.scope)
    wait = await services.rate_limits.request(identity_key(actor, address), address, len(items) - 1)
    if wait:
        return respond(
            {"errors": [rate_limited_error(wait)]},
            429,
            media_type,
            {"Retry-After": str(retry_after(wait))},
        )
    answers = [await operation(request, services, item, media_type) for item in items]
    return Response(
        b"[" + b",".join(bytes(answer.body) for answer in answers) + b"]",
        200,
        headers=VARY,
        media_type=f"{media_type}; charset={CHARSET}",
    )


def graphiql_response(default_headers: str | None) -> Response:
    from api.graphiql import render_page

    return HTMLResponse(render_page(default_headers=default_headers))
