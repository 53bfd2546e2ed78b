"""GraphQL errors with a stable ``extensions.code``; nothing internal leaks to clients."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import GraphQLError, GraphQLFormattedError, GraphQLSyntaxError, VariableDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from api.middleware.request_id import current_request_id
from domain.model import DomainError
from migrations.engine import database_unavailable, one_line

log = logging.getLogger("shopfront.errors")
# A database could not be reached or answer in time (a restart, a statement timeout): the
# request may be retried; HTTP answers 503 with Retry-After.
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "The database is unavailable; retry shortly"
SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)


class ApiError(Exception):
    """An error a resolver raises on purpose, with the code clients can branch on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def error_code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, (ApiError, DomainError)):
        return original.code
    if isinstance(original, InvalidOperationTypeError):
        # The legacy graphql-ws protocol runs subscriptions only.
        return "OPERATION_NOT_ALLOWED"
    if isinstance(original, CannotGetOperationTypeError):
        return "GRAPHQL_VALIDATION_FAILED"
    if isinstance(error, GraphQLSyntaxError):
        # A document over the size limits is tagged QUERY_TOO_LARGE where it is parsed
        # (``limits/documents.py``); any other syntax error is just that.
        return "GRAPHQL_PARSE_FAILED"
    nodes = error.nodes or ()
    if error.path is None and nodes and isinstance(nodes[0], VariableDefinitionNode):
        # A variable's value that does not coerce, reported at its definition before
        # execution (a scalar's own error, if any, as the original). Validation errors
        # that point at a definition too ("never used") are tagged where the document is
        # validated (``limits/documents.py``), so they do not get here.
        return "BAD_USER_INPUT"
    if original is None or isinstance(original, GraphQLError):
        # Raised by graphql-core itself: a bad input literal met during execution.
        return "GRAPHQL_VALIDATION_FAILED" if error.path is None else "BAD_USER_INPUT"
    if database_unavailable(original):
        return DATABASE_UNAVAILABLE
    return "INTERNAL_SERVER_ERROR"


def with_code(error: GraphQLError, *, expose_internal: bool) -> GraphQLError:
    """The same error with ``extensions.code``; unexpected ones logged and masked."""
    code = error_code(error)
    extensions: dict[str, Any] = {**(error.extensions or {}), "code": code}
    message = error.message
    if code == "OPERATION_NOT_ALLOWED":
        message = f"{message} here: send queries and mutations over HTTP or graphql-transport-ws"
    if not expose_internal:
        # graphql-core's "Did you mean ...?" would map the schema that introspection hides.
        message = SUGGESTION.sub("", message)
    if code == DATABASE_UNAVAILABLE:
        # One line, no traceback: during an outage every request would log one.
        log.warning(
            "database unavailable %s at %s: %s",
            current_request_id(),
            error.path,
            one_line(error.original_error) if error.original_error else "",
        )
        message = UNAVAILABLE_MESSAGE
    elif code == "INTERNAL_SERVER_ERROR":
        request_id = current_request_id()
        log.error(
            "internal error %s at %s: %s",
            request_id,
            error.path,
            error.message,
            exc_info=error.original_error,
        )
        extensions["requestId"] = request_id
        if not expose_internal:
            message = f"Internal server error (request id {request_id})"
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Gives every error of every result (HTTP and WebSocket) an ``extensions.code``."""

    def __init__(self, *, expose_internal: bool) -> None:
        self.expose_internal = expose_internal

    def _process(self, result: object) -> None:
        # A plain getattr: isinstance() against a runtime-checkable Protocol costs more than
        # the rest of this hook, which runs for every result sent to every subscriber.
        errors: list[GraphQLError] | None = getattr(result, "errors", None)
        if errors:
            result.errors = [  # type: ignore[attr-defined]
                coded(error, expose_internal=self.expose_internal) for error in errors
            ]

    def on_operation(self) -> Iterator[None]:
        yield
        self._process(self.execution_context.result)

    def on_stream_result(self, result: object) -> Iterator[None]:
        """Subscriptions (WebSocket): each result before it is sent."""
        self._process(result)
        yield


def coded(error: GraphQLError, *, expose_internal: bool) -> GraphQLError:
    """The error with its ``extensions.code`` (as it is if it has one already)."""
    if "code" in (error.extensions or {}):
        return error
    return with_code(error, expose_internal=expose_internal)


def formatted_errors(
    errors: Sequence[GraphQLError], *, expose_internal: bool
) -> list[GraphQLFormattedError]:
    """The ``errors`` entry of a response body: every error sent to a client is built
    here, each with its ``extensions.code``."""
    return [coded(error, expose_internal=expose_internal).formatted for error in errors]


def unavailable(errors: Sequence[GraphQLError] | None) -> bool:
    """Whether a result's errors say a database was unavailable (HTTP: 503)."""
    return any(
        (error.extensions or {}).get("code") == DATABASE_UNAVAILABLE for error in errors or ()
    )


def request_error(message: str, code: str = "BAD_REQUEST") -> dict[str, Any]:
    """The body of an error found before GraphQL could run (bad JSON, bad token...)."""
    error = GraphQLError(message, extensions={"code": code})
    return {"errors": formatted_errors([error], expose_internal=False)}
