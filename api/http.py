"""GraphQL over HTTP (graphql-over-http spec): GET for queries, POST for everything,
``application/json`` and ``application/graphql-response+json`` responses."""

from __future__ import annotations

import functools
import logging
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from api import consistency
from api.auth import InvalidToken, actor_from_header
from api.context import Context
from api.errors import request_error, with_code
from api.services import Services

log = logging.getLogger("shopfront.http")

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
MAX_BODY = 1_000_000


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


def _media_ranges(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    return ranges


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header; None when we can offer nothing."""
    if not accept:
        return JSON
    best: tuple[float, str] | None = None
    for media, quality in _media_ranges(accept):
        if quality <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            offer = GRAPHQL_RESPONSE
        elif media in (JSON, "application/*", "*/*"):
            offer = JSON
        else:
            continue
        # Prefer graphql-response+json on a tie: it carries request errors as 4xx.
        rank = quality + (0.001 if offer == GRAPHQL_RESPONSE else 0)
        if best is None or rank > best[0]:
            best = (rank, offer)
    return None if best is None else best[1]


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "query" not in request.query_params


def _json_param(value: Any, name: str) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRequest(f"'{name}' is not valid JSON") from None
    if value is not None and not isinstance(value, dict):
        raise BadRequest(f"'{name}' must be an object")
    return value


async def _read_params(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        return dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest("Request body too large", 413, "PAYLOAD_TOO_LARGE")
    if content_type == "application/graphql":
        return {"query": body.decode("utf-8", errors="replace")}
    if content_type != JSON:
        raise BadRequest("POST needs Content-Type: application/json", 415, "UNSUPPORTED_MEDIA_TYPE")
    try:
        params = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON") from None
    if not isinstance(params, dict):
        raise BadRequest("The request body must be a JSON object")
    return params


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
    timeout = services.settings.read_your_writes_timeout
    if await services.runner.wait_for(position, timeout):
        return None
    return request_error(
        f"The read models have not reached this consistency token within {timeout:g} s; "
        "retry shortly",
        "READ_MODEL_BEHIND",
    )


@functools.lru_cache(maxsize=1024)
def _operation_count(query: str) -> int:
    """How many operations a document defines (0 if it does not parse: reported later)."""
    try:
        document = parse(query)
    except GraphQLError:
        return 0
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


def _respond(
    body: dict[str, Any], status: int, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=media_type)


async def graphql_http(request: Request, services: Services) -> Response:
    media_type = negotiate(request.headers.get("accept"))
    if media_type is None:
        return _respond(
            request_error(
                "Accept application/graphql-response+json or application/json", "NOT_ACCEPTABLE"
            ),
            406,
            JSON,
        )
    try:
        params = await _read_params(request)
        query = params.get("query")
        if not isinstance(query, str) or not query.strip():
            raise BadRequest("'query' must be a non-empty string")
        operation_name = params.get("operationName")
        if operation_name is not None and not isinstance(operation_name, str):
            raise BadRequest("'operationName' must be a string")
        variables = _json_param(params.get("variables"), "variables")
        _json_param(params.get("extensions"), "extensions")
        actor = actor_from_header(
            services.settings.jwt_secret, request.headers.get("authorization")
        )
        behind = await _await_consistency(request, services)
    except BadRequest as error:
        return _respond(request_error(error.message, error.code), error.status, media_type)
    except InvalidToken as error:
        return _respond(
            request_error(str(error), "UNAUTHENTICATED"),
            401,
            media_type,
            {"WWW-Authenticate": "Bearer"},
        )
    if behind is not None:
        return _respond(behind, 503, media_type, {"Retry-After": "1"})
    allowed = (
        (OperationType.QUERY,)
        if request.method == "GET"
        else (OperationType.QUERY, OperationType.MUTATION)
    )
    if operation_name is None and _operation_count(query) > 1:
        return _respond(
            request_error(
                "The document has several operations: say which in operationName",
                "GRAPHQL_VALIDATION_FAILED",
            ),
            400 if media_type == GRAPHQL_RESPONSE else 200,
            media_type,
        )
    schema = request.app.state.schema
    try:
        result = await schema.execute(
            query,
            variable_values=variables,
            context_value=Context(services, actor),
            operation_name=operation_name,
            allowed_operation_types=allowed,
        )
    except InvalidOperationTypeError as error:
        if error.operation_type == OperationType.SUBSCRIPTION:
            message, status = "Subscriptions run over WebSocket at this path", 405
        else:
            message, status = "Mutations need POST", 405
        return _respond(
            request_error(message, "METHOD_NOT_ALLOWED"), status, media_type, {"Allow": "POST"}
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
    body: dict[str, Any] = {}
    if result.errors:
        expose = services.settings.is_dev
        body["errors"] = [
            (
                error
                if "code" in (error.extensions or {})
                else with_code(error, expose_internal=expose)
            ).formatted
            for error in result.errors
        ]
    is_request_error = isinstance(result, PreExecutionError) or (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors)
    )
    if not is_request_error:
        body["data"] = result.data
    body["extensions"] = {**(result.extensions or {}), "readModel": read_model_extension(services)}
    status = 400 if is_request_error and media_type == GRAPHQL_RESPONSE else 200
    return _respond(body, status, media_type)


def graphiql_response(default_headers: str | None) -> Response:
    from api.graphiql import render_page

    return HTMLResponse(render_page(default_headers=default_headers))
