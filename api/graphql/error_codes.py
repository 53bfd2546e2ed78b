"""Every ``extensions.code`` and ``userErrors.code`` a client can receive: where it comes,
with which HTTP status, and what the client should do. ``docs/errors.md`` is generated
from this table (``python -m api.graphql.error_codes > docs/errors.md``), and
tests/unit/test_error_codes.py keeps both in step with the codes the source uses."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorCode:
    where: str  # "request" (errors, nothing ran), "field" (errors, with data), "userError", "ws"
    status: str  # the HTTP status (or WebSocket close code) it comes with
    meaning: str
    action: str


_REQUEST_ERROR = "200 (`application/json`) or 400 (`application/graphql-response+json`)"
_FIELD = "200, in `errors` beside `data`"
_USER = "200, in the payload's `userErrors`"

CODES: dict[str, ErrorCode] = {
    # -- the request itself ----------------------------------------------------------------
    "BAD_REQUEST": ErrorCode(
        "request",
        "400",
        "Not a well-formed GraphQL-over-HTTP request (bad JSON, bad "
        "parameters, a bad `Shopfront-Consistency` header).",
        "Fix the request; do not retry it as is.",
    ),
    "UNSUPPORTED_MEDIA_TYPE": ErrorCode(
        "request",
        "415",
        "POST body not `application/json`.",
        "Send `Content-Type: application/json`.",
    ),
    "NOT_ACCEPTABLE": ErrorCode(
        "request",
        "406",
        "No acceptable response type in `Accept`.",
        "Accept `application/graphql-response+json` or `application/json`.",
    ),
    "METHOD_NOT_ALLOWED": ErrorCode(
        "request", "405 (`Allow: POST`)", "A mutation over GET.", "Send mutations with POST."
    ),
    "PAYLOAD_TOO_LARGE": ErrorCode(
        "request", "413", "The request body is over the size limit.", "Send a smaller request."
    ),
    "HEADERS_TOO_LARGE": ErrorCode(
        "request", "431", "The request headers are over 64 KiB.", "Send smaller headers."
    ),
    "REQUEST_TIMEOUT": ErrorCode(
        "request",
        "408",
        "The body did not arrive within `SHOPFRONT_BODY_READ_TIMEOUT`.",
        "Retry on a working connection.",
    ),
    "CORS_NOT_ALLOWED": ErrorCode(
        "request",
        "403 (a CORS preflight)",
        "The page's origin may not call the API (prod: not in `SHOPFRONT_CORS_ORIGINS`; dev "
        "also allows localhost, 127.0.0.1 and [::1] on any port).",
        "Add the origin to `SHOPFRONT_CORS_ORIGINS` and `SHOPFRONT_ALLOWED_ORIGINS`.",
    ),
    "BATCH_TOO_LARGE": ErrorCode(
        "request",
        "400",
        "A batch (a JSON array of operations) with none, or more than "
        "`SHOPFRONT_MAX_BATCH_OPERATIONS` (10).",
        "Send at most 10 operations per batch (Apollo: `batchMax: 10`).",
    ),
    "SUBSCRIPTION_NEEDS_WEBSOCKET": ErrorCode(
        "request",
        "400",
        "A subscription sent over HTTP.",
        "Open a WebSocket to `/graphql` (graphql-transport-ws).",
    ),
    "GRAPHQL_PARSE_FAILED": ErrorCode(
        "request", _REQUEST_ERROR, "The query is not valid GraphQL syntax.", "Fix the query."
    ),
    "GRAPHQL_VALIDATION_FAILED": ErrorCode(
        "request",
        _REQUEST_ERROR,
        "The query does not fit the schema (unknown field, wrong "
        "argument, a variable unused, undefined or in the wrong place, several operations "
        "without `operationName`, a fragment cycle).",
        "Fix the query; regenerate types from `schema.graphql`.",
    ),
    "BAD_USER_INPUT": ErrorCode(
        "request or field",
        f"{_REQUEST_ERROR}; 400 for a consistency token ahead of the log",
        "A variable or argument of the wrong type or value, or a consistency token from the "
        "future.",
        "Fix the value.",
    ),
    "QUERY_TOO_LARGE": ErrorCode(
        "request",
        _REQUEST_ERROR,
        "The document is over `SHOPFRONT_MAX_QUERY_BYTES` (64 KiB) or the token limit.",
        "Send a smaller document; use persisted queries for big ones.",
    ),
    "QUERY_TOO_DEEP": ErrorCode(
        "request",
        _REQUEST_ERROR,
        "Nested deeper than the depth limit (12 for data, 20 inside introspection).",
        "Flatten the query.",
    ),
    "TOO_MANY_ALIASES": ErrorCode(
        "request",
        _REQUEST_ERROR,
        "More aliases than the limit (30), or more than 10 `__schema`/`__type` fields.",
        "Ask fewer aliased fields.",
    ),
    "TOO_MANY_OPERATIONS": ErrorCode(
        "request",
        _REQUEST_ERROR,
        "More operations in one document than the limit (10).",
        "Send fewer operations per document.",
    ),
    "QUERY_TOO_COSTLY": ErrorCode(
        "request",
        _REQUEST_ERROR,
        "The estimated cost (fields x page sizes) is over the limit.",
        "Ask for smaller pages (`first`) or fewer fields.",
    ),
    "PERSISTED_QUERY_NOT_FOUND": ErrorCode(
        "request",
        _REQUEST_ERROR,
        "An automatic persisted query's hash this process does "
        "not know (message `PersistedQueryNotFound`).",
        "Send the query again with its hash (Apollo's link does this itself).",
    ),
    "PERSISTED_QUERY_HASH_MISMATCH": ErrorCode(
        "request",
        "400",
        "The query's sha256 is not the hash sent with it.",
        "Send the hash of the exact query text.",
    ),
    "PERSISTED_QUERY_VERSION_UNSUPPORTED": ErrorCode(
        "request", "400", "A persisted-query protocol version other than 1.", "Use version 1."
    ),
    "UNAUTHENTICATED": ErrorCode(
        "request or field",
        "401 with `WWW-Authenticate: Bearer` for a bad token (the "
        "message says why: expired, malformed, bad signature, ...); 200 field error when an "
        "operation needs a sign-in",
        "The token is missing, bad or expired, or the operation needs one.",
        "Sign in again (get a new token); do not retry with the same token.",
    ),
    "RATE_LIMITED": ErrorCode(
        "request or ws",
        "429 with `Retry-After`; over a WebSocket an `error` message with `extensions.retryAfter`",
        "Over the rate limit of the caller or its address, or of sign-ups per address.",
        "Wait `Retry-After` (or `retryAfter`) seconds, then retry.",
    ),
    "READ_MODEL_BEHIND": ErrorCode(
        "request",
        "503 with `Retry-After`",
        "The read models did not reach the `Shopfront-Consistency` token within 5 s.",
        "Retry after the given seconds.",
    ),
    "DATABASE_UNAVAILABLE": ErrorCode(
        "request or field",
        "503 with `Retry-After` when the whole request failed on it; a field error otherwise",
        "The database did not answer (restarting, unreachable, over its statement timeout).",
        "Retry after the given seconds; nothing was half-applied.",
    ),
    # -- while executing --------------------------------------------------------------------
    "FORBIDDEN": ErrorCode(
        "field or userError",
        f"{_FIELD}, or {_USER}",
        "Signed in, but not allowed (not staff, not the order's customer).",
        "Do not retry; sign in as someone allowed.",
    ),
    "NOT_FOUND": ErrorCode(
        "field or userError",
        f"{_FIELD}, or {_USER}",
        "No such id (or not one you may see).",
        "Check the id.",
    ),
    "INTERNAL_SERVER_ERROR": ErrorCode(
        "field",
        f"{_FIELD}, with `extensions.requestId`",
        "A bug; in prod the message is only the request id.",
        "Report the request id; retrying may help.",
    ),
    "OPERATION_NOT_ALLOWED": ErrorCode(
        "ws",
        "an `error` message for the operation",
        "A query or mutation over the legacy `graphql-ws` protocol, which runs subscriptions only.",
        "Send queries and mutations over HTTP, or use graphql-transport-ws.",
    ),
    "TOO_MANY_SUBSCRIPTIONS": ErrorCode(
        "ws",
        "an `error` message for the operation",
        "Over the live subscriptions allowed per identity.",
        "Complete subscriptions you no longer need.",
    ),
    "TOO_MANY_CONNECTIONS": ErrorCode(
        "ws",
        "close 4403 (legacy protocol: `connection_error` first)",
        "Over the WebSockets allowed per identity.",
        "Close other sockets; graphql-ws retries 4403 itself.",
    ),
    # -- business rules (userErrors) --------------------------------------------------------
    "INVALID_INPUT": ErrorCode(
        "userError",
        _USER,
        "A value breaks a rule (empty name, bad email, negative price, "
        "quantity out of range); `field` says which.",
        "Show the message next to `field`.",
    ),
    "EMAIL_TAKEN": ErrorCode(
        "userError", _USER, "That email is already registered.", "Sign in instead."
    ),
    "SKU_TAKEN": ErrorCode("userError", _USER, "That SKU already exists.", "Pick another SKU."),
    "UNKNOWN_SKU": ErrorCode(
        "userError", _USER, "An order line names a SKU that does not exist.", "Refresh the catalog."
    ),
    "OUT_OF_STOCK": ErrorCode(
        "userError",
        _USER,
        "Not enough stock for a line; nothing was reserved.",
        "Show the stock left; let the customer order less.",
    ),
    "INVALID_STATE": ErrorCode(
        "userError",
        _USER,
        "The order is not in a state that allows this (e.g. shipping an unpaid order).",
        "Refresh the order and show what it allows.",
    ),
    "VERSION_CONFLICT": ErrorCode(
        "userError",
        _USER,
        "`expectedVersion` is not the order's version: someone changed it.",
        "Refresh the order and ask the user again.",
    ),
    "IDEMPOTENCY_KEY_REUSED": ErrorCode(
        "userError",
        _USER,
        "The `idempotencyKey` was used before with other lines.",
        "Use a new key for a new order.",
    ),
    "CONFLICT": ErrorCode(
        "userError",
        _USER,
        "The data kept changing concurrently; the command was not applied.",
        "Retry the mutation.",
    ),
}


def markdown() -> str:
    """docs/errors.md."""
    lines = [
        "# Error codes",
        "",
        "<!-- Generated by `python -m api.graphql.error_codes > docs/errors.md`; do not edit. -->",
        "",
        "Business failures come in a mutation's `userErrors { field message code }`; every",
        "other error is a GraphQL error with `extensions.code`. Nothing else reaches a client:",
        "no 500s, no stack traces. Request errors (nothing ran) come without `data`; field",
        "errors come beside it.",
        "",
        "| code | where | HTTP status | meaning | what the client should do |",
        "| --- | --- | --- | --- | --- |",
    ]
    for code, entry in CODES.items():
        cells = (f"`{code}`", entry.where, entry.status, entry.meaning, entry.action)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
