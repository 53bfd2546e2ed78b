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

import collections
import hashlib
import logging
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from api.auth import InvalidToken, request_actor
from api.bootstrap import Services
from api.graphql.compiled import CompiledReads
from api.graphql.context import Context
from api.graphql.errors import (
    DATABASE_UNAVAILABLE,
    UNAVAILABLE_MESSAGE,
    formatted_errors,
    request_error,
    unavailable,
)
from api.http import consistency, persisted, response_cache
from api.http.persisted import PersistedQueryNotFound
from api.http.request import (
    CHARSET,
    GRAPHQL_RESPONSE,
    JSON,
    OPERATION_COUNT_MAX_TOKENS,
    VARY,
    BadRequest,
    GraphQLRequest,
    QueryTooLarge,
    accept_header,
    graphql_request,
    negotiate,
    read_params,
)
from api.middleware.security import client_address, rate_limited_error, retry_after
from api.ws.limits import identity_key
from domain.commands import Actor
from migrations.engine import database_unavailable, one_line

log = logging.getLogger("shopfront.http")
RETRY_AFTER = {"Retry-After": "1"}

# Dev only: "off" runs a query on the Strawberry executor even if it has a compiled plan
# (to compare both paths' answers on one server: tests/conformance/test_compiled_reads.py).
COMPILED_READS_HEADER = "shopfront-compiled-reads"


def read_model_extension(services: Services) -> dict[str, Any]:
    """Where the read models are: the position every projection has reached, and for
    how long they have been behind the newest event this process knows of."""
    runner = services.runner
    position = runner.position
    return {"position": position, "lagMs": round(runner.lag_ms(position), 1)}


async def _await_consistency(request: Request, services: Services) -> dict[str, Any] | None:
    """Honour ``Shopfront-Consistency``: None once the read models have reached it."""
    header = request.headers.get(consistency.HEADER)
    if header is None:
        return None
    try:
        position = consistency.decode(header)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    if position > services.runner.head and position > await services.runner.head_position():
        # No write has reached this position (yet): no waiting for what may never come.
        raise BadRequest(consistency.AHEAD_OF_LOG, code="BAD_USER_INPUT")
    timeout = services.settings.read_your_writes_timeout
    if await services.runner.wait_for(position, timeout):
        return None
    return request_error(
        f"The read models have not reached this consistency token within {timeout:g} s; "
        "retry shortly",
        "READ_MODEL_BEHIND",
    )


class _OperationKinds:
    """The operations a document defines, name -> kind (``query``, ``mutation``,
    ``subscription``); empty if it does not parse (reported later).

    Strawberry would run the first of several operations when no operationName is given,
    so they are counted here. The parse is bounded (far above the schema's own token
    limit, which then rejects the document) so that this early look stays cheap. The
    last answers are kept by the SHA-256 of the text, so the cache holds no query text."""

    MAX_ENTRIES = 1024

    def __init__(self) -> None:
        self._kinds: collections.OrderedDict[bytes, dict[str | None, str]] = (
            collections.OrderedDict()
        )

    def __call__(self, query: str) -> dict[str | None, str]:
        key = hashlib.sha256(query.encode("utf-8", "surrogatepass")).digest()
        kinds = self._kinds.get(key)
        if kinds is not None:
            self._kinds.move_to_end(key)
            return kinds
        try:
            document = parse(query, no_location=True, max_tokens=OPERATION_COUNT_MAX_TOKENS)
        except GraphQLError:
            kinds = {}
        else:
            kinds = {
                d.name.value if d.name else None: d.operation.value
                for d in document.definitions
                if isinstance(d, OperationDefinitionNode)
            }
        self._kinds[key] = kinds
        if len(self._kinds) > self.MAX_ENTRIES:
            self._kinds.popitem(last=False)
        return kinds


_operations = _OperationKinds()


def _is_query(operations: dict[str | None, str], operation_name: str | None) -> bool:
    if operation_name is None:
        return len(operations) == 1 and "query" in operations.values()
    return operations.get(operation_name) == "query"


def _cache_key(
    services: Services, params: GraphQLRequest, actor: Actor | None
) -> response_cache.Key | None:
    cache = services.response_cache
    if not cache.enabled or not _is_query(_operations(params.query), params.operation_name):
        return None
    who = "anonymous" if actor is None else f"{actor.role}:{actor.id}"
    return cache.key(params.query, params.operation_name, params.variables, who)


def _respond_cached(entry: response_cache.Entry, services: Services, media_type: str) -> Response:
    extensions = {**(entry.extensions or {}), "readModel": read_model_extension(services)}
    return Response(
        entry.body + b',"extensions":' + orjson.dumps(extensions) + b"}",
        200,
        headers=VARY,
        media_type=f"{media_type}; charset={CHARSET}",
    )


def _respond(
    body: dict[str, Any], status: int, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status,
        headers={**VARY, **(headers or {})},
        media_type=f"{media_type}; charset={CHARSET}",
    )


def _request_error_status(media_type: str) -> int:
    """A GraphQL request error in a well-formed request (parse, validation, variable
    coercion, no operation): 400 in application/graphql-response+json, 200 in
    application/json (the spec's SHOULDs for each)."""
    return 400 if media_type == GRAPHQL_RESPONSE else 200


async def graphql_http(request: Request, services: Services) -> Response:
    try:
        return await _graphql_http(request, services)
    except Exception as error:  # outside GraphQL's execution: the consistency wait...
        if not database_unavailable(error):
            raise
        log.warning("database unavailable: %s", one_line(error))
        media_type = negotiate(accept_header(request)) or JSON
        body = request_error(UNAVAILABLE_MESSAGE, DATABASE_UNAVAILABLE)
        return _respond(body, 503, media_type, RETRY_AFTER)


async def _graphql_http(request: Request, services: Services) -> Response:
    media_type = negotiate(accept_header(request))
    if media_type is None:
        return _respond(
            request_error(
                "Accept application/graphql-response+json or application/json", "NOT_ACCEPTABLE"
            ),
            406,
            JSON,
        )
    try:
        raw = await read_params(request, services.settings.max_batch_operations)
    except BadRequest as error:
        return _respond(
            request_error(error.message, error.code), error.status, media_type, error.headers
        )
    if isinstance(raw, list):
        return await _batch(request, services, raw, media_type)
    return await _operation(request, services, raw, media_type)


async def _batch(
    request: Request, services: Services, items: list[dict[str, Any]], media_type: str
) -> Response:
    """A JSON array of operations (Apollo's BatchHttpLink): each run as if sent alone, in
    order, each counted against the rate limits (the middleware took one token for the
    request) and the query limits; answered with the array of their answers."""
    try:
        actor = request_actor(services.authenticator, request.scope)
    except InvalidToken as error:
        return _unauthenticated(error, media_type)
    address = client_address(request.scope)
    wait = await services.rate_limits.request(identity_key(actor, address), address, len(items) - 1)
    if wait:
        return _respond(
            {"errors": [rate_limited_error(wait)]},
            429,
            media_type,
            {"Retry-After": str(retry_after(wait))},
        )
    answers = [await _operation(request, services, item, media_type) for item in items]
    return Response(
        b"[" + b",".join(bytes(answer.body) for answer in answers) + b"]",
        200,
        headers=VARY,
        media_type=f"{media_type}; charset={CHARSET}",
    )


def _unauthenticated(error: InvalidToken, media_type: str) -> Response:
    return _respond(
        request_error(str(error), "UNAUTHENTICATED"),
        401,
        media_type,
        {"WWW-Authenticate": "Bearer"},
    )


async def _params(request: Request, services: Services, raw: dict[str, Any]) -> GraphQLRequest:
    """The operation's parameters; a persisted query's hash this process does not know is
    looked up in the shared store (Redis) before it is refused."""

    def parse() -> GraphQLRequest:
        return graphql_request(
            raw,
            from_url=request.method in ("GET", "HEAD"),
            resolve=services.persisted_queries.resolve,
            max_query_bytes=services.settings.max_query_bytes,
        )

    try:
        return parse()
    except PersistedQueryNotFound as missing:
        if not await services.persisted_queries.recall(str(missing)):
            raise
    return parse()


async def _operation(
    request: Request, services: Services, raw: dict[str, Any], media_type: str
) -> Response:
    """One operation's answer (alone, or one of a batch)."""
    try:
        params = await _params(request, services, raw)
        actor = request_actor(services.authenticator, request.scope)
        behind = await _await_consistency(request, services)
    except BadRequest as error:
        return _respond(
            request_error(error.message, error.code), error.status, media_type, error.headers
        )
    except QueryTooLarge as error:
        return _respond(
            request_error(error.message, "QUERY_TOO_LARGE"),
            _request_error_status(media_type),
            media_type,
        )
    except PersistedQueryNotFound:
        # The message is what Apollo Client's persisted-queries link looks for.
        return _respond(
            request_error("PersistedQueryNotFound", persisted.NOT_FOUND),
            _request_error_status(media_type),
            media_type,
        )
    except InvalidToken as error:
        return _unauthenticated(error, media_type)
    if behind is not None:
        return _respond(behind, 503, media_type, RETRY_AFTER)
    allowed = (
        (OperationType.QUERY,)
        if request.method in ("GET", "HEAD")
        else (OperationType.QUERY, OperationType.MUTATION)
    )
    query, operation_name = params.query, params.operation_name
    if operation_name is None and len(_operations(query)) > 1:
        return _respond(
            request_error(
                "The document has several operations: say which in operationName",
                "GRAPHQL_VALIDATION_FAILED",
            ),
            _request_error_status(media_type),
            media_type,
        )
    cache_key = _cache_key(services, params, actor)
    recording = None
    if cache_key is not None:
        entry = services.response_cache.get(cache_key)
        if entry is not None:
            await services.persisted_queries.remember(query, params.extensions)
            return _respond_cached(entry, services, media_type)
        recording = services.response_cache.recording()
    schema = request.app.state.schema
    try:
        # Any: what either path returns (schema is app state, untyped).
        result: Any = await _compiled(request, services, params, actor)
        if result is None:
            result = await schema.execute(
                query,
                variable_values=params.variables,
                context_value=Context(services, actor),
                operation_name=operation_name,
                allowed_operation_types=allowed,
            )
    except InvalidOperationTypeError as error:
        # GET must not run a mutation (spec: 405); subscriptions need the WebSocket.
        if error.operation_type == OperationType.SUBSCRIPTION:
            # No HTTP method runs a subscription: open a WebSocket to this path instead.
            return _respond(
                request_error(
                    "Subscriptions run over WebSocket at this path", "SUBSCRIPTION_NEEDS_WEBSOCKET"
                ),
                400,
                media_type,
            )
        return _respond(
            request_error("Mutations need POST", "METHOD_NOT_ALLOWED"),
            405,
            media_type,
            {"Allow": "POST"},
        )
    except (MissingQueryError, CannotGetOperationTypeError) as error:
        reason = (  # str() of CannotGetOperationTypeError is just the operation name
            error.as_http_error_reason()
            if isinstance(error, CannotGetOperationTypeError)
            else str(error)
        )
        return _respond(
            request_error(reason or "No operation to run", "GRAPHQL_VALIDATION_FAILED"),
            400,
            media_type,
        )
    finally:
        if recording is not None:
            recording.close()
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = formatted_errors(result.errors, expose_internal=services.settings.is_dev)
    # A request error (nothing executed: parse, validation, variable coercion, a limit)
    # has no data entry; an executed operation has one, null or not, and is a 200.
    is_request_error = isinstance(result, PreExecutionError) or (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors)
    )
    if not is_request_error:
        # Parsed, validated and ran for a caller whose token checked out: worth keeping.
        await services.persisted_queries.remember(query, params.extensions)
        body["data"] = result.data
        if cache_key is not None and recording is not None and not result.errors:
            services.response_cache.put(cache_key, recording, result.data, result.extensions)
    body["extensions"] = {**(result.extensions or {}), "readModel": read_model_extension(services)}
    if unavailable(result.errors):  # a database went away while it ran: retry shortly
        return _respond(body, 503, media_type, RETRY_AFTER)
    status = _request_error_status(media_type) if is_request_error else 200
    return _respond(body, status, media_type)


async def _compiled(
    request: Request, services: Services, params: GraphQLRequest, actor: Actor | None
) -> ExecutionResult | None:
    """A query's result from its compiled plan (api/graphql/compiled/), once the document has
    passed the limits; None: the Strawberry executor runs it. Counted per path."""
    if not _is_query(_operations(params.query), params.operation_name):
        return None
    compiled: CompiledReads = request.app.state.compiled
    result = None
    if compiled.enabled and not (
        services.settings.is_dev and request.headers.get(COMPILED_READS_HEADER) == "off"
    ):
        result = await compiled.execute(
            params.query, params.operation_name, params.variables, actor, services.read_engine
        )
    if result is None:
        compiled.fallback += 1
    else:
        compiled.compiled += 1
    return result


def graphiql_response(default_headers: str | None) -> Response:
    from api.graphiql import render_page

    return HTMLResponse(render_page(default_headers=default_headers))
