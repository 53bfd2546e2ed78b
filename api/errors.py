"""GraphQL errors with a stable ``extensions.code``; nothing internal leaks to clients."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

log = logging.getLogger("shopfront.errors")


class ApiError(Exception):
    """An error a resolver raises on purpose, with the code clients can branch on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def bad_input(message: str) -> ApiError:
    return ApiError("BAD_USER_INPUT", message)


def error_code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, ApiError):
        return original.code
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if original is None:
        # No path: raised before execution (validation or variable coercion).
        if error.message.startswith("Variable '$"):
            return "BAD_USER_INPUT"
        return "GRAPHQL_VALIDATION_FAILED" if error.path is None else "BAD_USER_INPUT"
    return "INTERNAL_SERVER_ERROR"


def format_error(error: GraphQLError, *, expose_internal: bool) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    code = error_code(error)
    extensions = {**(formatted.get("extensions") or {}), "code": code}
    if code == "INTERNAL_SERVER_ERROR":
        request_id = uuid.uuid4().hex[:16]
        log.error(
            "internal error %s at %s", request_id, error.path, exc_info=error.original_error
        )
        extensions["requestId"] = request_id
        if not expose_internal:
            formatted["message"] = f"Internal server error (request id {request_id})"
    formatted["extensions"] = extensions
    return formatted


def request_error(message: str, code: str = "BAD_REQUEST") -> dict[str, Any]:
    """The body of an error found before GraphQL could run (bad JSON, bad token...)."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}
