"""One GraphQL operation over HTTP, alone or one of a batch: its parameters, the
consistency wait, the response cache, the compiled or the Strawberry executor, and the
answer's status (see ``view.py`` for the rules)."""

from __future__ import annotations

import collections
import hashlib
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from api.auth import InvalidToken, request_actor
from api.bootstrap import Services
from api.graphql.compiled import CompiledReads, Handover
from api.graphql.context import Context
from api.graphql.errors import formatted_errors, request_error, unavailable
from api.http import consistency, persisted, response_cache
from api.http.persisted import PersistedQueryNotFound
from api.http.request import (
    CHARSET,
    OPERATION_COUNT_MAX_TOKENS,
    VARY,
    BadRequest,
    GraphQLRequest,
    QueryTooLarge,
    graphql_request,
)
from api.http.respond import RETRY_AFTER, request_error_status, respond, unauthenticated
from domain.commands import Actor

# Dev only: "off" runs a query on the Strawberry executor even if it has a compiled plan
# (to compare both paths' answers on one server: tests/conformance/test_compiled_reads.py).
COMPILED_READS_HEADER = "shopfront-compiled-reads"


def read_model_extension(services: Services) -> dict[str, Any]:
    """Where the read models are: the position every projection has reached, and for
    how long they have been behind the newest event this process knows of."""
    runner = services.runner
    position = runner.position
    return {"position": position, "lagMs": round(runner.lag_ms(position), 1)}


async def await_consistency(request: Request, services: Services) -> dict[str, Any] | None:
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
    last answers are kept by the text itself up to ``MAX_TEXT_KEY`` characters (a request
    asks three times: the text's hash is computed once), and by the SHA-256 of a longer
    text, so the cache holds at most 1,024 short texts."""

    MAX_ENTRIES = 1024
    MAX_TEXT_KEY = 2048

    def __init__(self) -> None:
        self._kinds: collections.OrderedDict[str | bytes, dict[str | None, str]] = (
            collections.OrderedDict()
        )

    def __call__(self, query: str) -> dict[str | None, str]:
        key: str | bytes = (
            query
            if len(query) <= self.MAX_TEXT_KEY
            else hashlib.sha256(query.encode("utf-8", "surrogatepass")).digest()
        )
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


operation_kinds = _OperationKinds()


def is_query(operations: dict[str | None, str], operation_name: str | None) -> bool:
    return is_kind(operations, operation_name, "query")


def is_kind(operations: dict[str | None, str], operation_name: str | None, kind: str) -> bool:
    """Whether the operation to run is of this kind (``query``, ``mutation``, ...)."""
    if operation_name is None:
        return len(operations) == 1 and kind in operations.values()
    return operations.get(operation_name) == kind


def response_cache_key(
    services: Services, params: GraphQLRequest, actor: Actor | None
) -> response_cache.Key | None:
    cache = services.response_cache
    if not cache.enabled or not is_query(operation_kinds(params.query), params.operation_name):
        return None
    who = "anonymous" if actor is None else f"{actor.role}:{actor.id}"
    return cache.key(params.query, params.operation_name, params.variables, who)


def respond_cached(entry: response_cache.Entry, services: Services, media_type: str) -> Response:
    extensions = {**(entry.extensions or {}), "readModel": read_model_extension(services)}
    return Response(
        entry.body + b',"extensions":' + orjson.dumps(extensions) + b"}",
        200,
        headers=VARY,
        media_type=f"{media_type}; charset={CHARSET}",
    )


async def params_of(request: Request, services: Services, raw: dict[str, Any]) -> GraphQLRequest:
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


async def operation(
    request: Request, services: Services, raw: dict[str, Any], media_type: str
) -> Response:
    """One operation's answer (alone, or one of a batch)."""
    try:
        params = await params_of(request, services, raw)
        actor = request_actor(services.authenticator, request.scope)
        behind = await await_consistency(request, services)
    except BadRequest as error:
        return respond(
            request_error(error.message, error.code), error.status, media_type, error.headers
        )
    except QueryTooLarge as error:
        return respond(
            request_error(error.message, "QUERY_TOO_LARGE"),
            request_error_status(media_type),
            media_type,
        )
    except PersistedQueryNotFound:
        # The message is what Apollo Client's persisted-queries link looks for.
        return respond(
            request_error("PersistedQueryNotFound", persisted.NOT_FOUND),
            request_error_status(media_type),
            media_type,
        )
    except InvalidToken as error:
        return unauthenticated(error, media_type)
    if behind is not None:
        return respond(behind, 503, media_type, RETRY_AFTER)
    allowed = (
        (OperationType.QUERY,)
        if request.method in ("GET", "HEAD")
        else (OperationType.QUERY, OperationType.MUTATION)
    )
    query, operation_name = params.query, params.operation_name
    if operation_name is None and len(operation_kinds(query)) > 1:
        return respond(
            request_error(
                "The document has several operations: say which in operationName",
                "GRAPHQL_VALIDATION_FAILED",
            ),
            request_error_status(media_type),
            media_type,
        )
    cache_key = response_cache_key(services, params, actor)
    recording = None
    if cache_key is not None:
        entry = services.response_cache.get(cache_key)
        if entry is not None:
            await services.persisted_queries.remember(query, params.extensions)
            return respond_cached(entry, services, media_type)
        recording = services.response_cache.recording()
    schema = request.app.state.schema
    try:
        # Any: what either path returns (schema is app state, untyped).
        result: Any = await compiled_result(request, services, params, actor)
        outcomes = {}
        if isinstance(result, Handover):  # a mutation whose commands ran: see Handover
            outcomes, result = result.outcomes, None
        if result is None:
            result = await schema.execute(
                query,
                variable_values=params.variables,
                context_value=Context(services, actor, outcomes=outcomes),
                operation_name=operation_name,
                allowed_operation_types=allowed,
            )
    except InvalidOperationTypeError as error:
        # GET must not run a mutation (spec: 405); subscriptions need the WebSocket.
        if error.operation_type == OperationType.SUBSCRIPTION:
            # No HTTP method runs a subscription: open a WebSocket to this path instead.
            return respond(
                request_error(
                    "Subscriptions run over WebSocket at this path", "SUBSCRIPTION_NEEDS_WEBSOCKET"
                ),
                400,
                media_type,
            )
        return respond(
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
        return respond(
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
        return respond(body, 503, media_type, RETRY_AFTER)
    status = request_error_status(media_type) if is_request_error else 200
    return respond(body, status, media_type)


async def compiled_result(
    request: Request, services: Services, params: GraphQLRequest, actor: Actor | None
) -> ExecutionResult | Handover | None:
    """A query's result from its compiled plan (api/graphql/compiled/), once the document has
    passed the limits, or a POSTed order mutation's; None or a Handover: the Strawberry
    executor runs it. Counted per path."""
    kinds = operation_kinds(params.query)
    if is_query(kinds, params.operation_name):
        mutation = False
    elif request.method == "POST" and is_kind(kinds, params.operation_name, "mutation"):
        mutation = True
    else:
        return None
    compiled: CompiledReads = request.app.state.compiled
    result = None
    if compiled.enabled and not (
        services.settings.is_dev and request.headers.get(COMPILED_READS_HEADER) == "off"
    ):
        result = await compiled.execute(
            params.query,
            params.operation_name,
            params.variables,
            actor,
            services.read_engine,
            services if mutation else None,
        )
    if mutation:
        if result is None or isinstance(result, Handover):
            compiled.fallback_mutations += 1
        else:
            compiled.compiled_mutations += 1
    elif result is None:
        compiled.fallback += 1
    else:
        compiled.compiled += 1
    return result
