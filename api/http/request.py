"""Reading a GraphQL-over-HTTP request: media types, Accept negotiation (see api/http/view.py
for the rules), the parameters of GET and POST, and their limits."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
GRAPHQL_REQUEST = "application/graphql"  # legacy request type: the body is the query
CHARSET = "utf-8"
MAX_BODY = 1_000_000
OPERATION_COUNT_MAX_TOKENS = 100_000
PARAMETERS = ("query", "operationName", "variables", "extensions")
# Response headers every GraphQL answer carries: its media type depends on Accept.
VARY = {"Vary": "Accept"}


class BadRequest(Exception):
    """Not a well-formed GraphQL-over-HTTP request: 4xx whatever the media type."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        code: str = "BAD_REQUEST",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code
        self.headers = headers or {}


class QueryTooLarge(Exception):
    """A query longer than the limit: a GraphQL request error (QUERY_TOO_LARGE), found
    before the text is parsed, cached or stored as a persisted query."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"The query is longer than the limit of {max_bytes} bytes")
        self.message = str(self)


def utf8_length(text: str) -> int:
    if len(text) * 4 <= 1024:  # short enough whatever its characters
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


# -- Accept negotiation ------------------------------------------------------------------

OFFERS = (GRAPHQL_RESPONSE, JSON)
UTF8_NAMES = frozenset({"utf-8", "utf8"})


@dataclasses.dataclass(frozen=True)
class MediaRange:
    """One element of an Accept header: ``type/subtype``, its quality and charset."""

    type: str
    subtype: str
    quality: float
    charset: str | None = None

    def specificity(self, media_type: str) -> int | None:
        """How specifically this range names ``media_type``: 2 exactly, 1 as ``type/*``,
        0 as ``*/*``; None if it does not match (or asks for a charset other than UTF-8,
        the only one we write)."""
        if self.charset is not None and self.charset not in UTF8_NAMES:
            return None
        kind, _, subtype = media_type.partition("/")
        if self.type == "*":
            return 0 if self.subtype == "*" else None
        if self.type != kind:
            return None
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == subtype else None


def _quality(value: str) -> float:
    """An Accept ``q`` value; anything unparsable counts as 0 (not acceptable)."""
    try:
        quality = float(value)
    except ValueError:
        return 0.0
    return min(max(quality, 0.0), 1.0) if math.isfinite(quality) else 0.0


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header; elements that are not ``type/subtype`` are
    left out."""
    ranges = []
    for element in header.split(","):
        media, *params = (piece.strip() for piece in element.split(";"))
        kind, slash, subtype = media.lower().partition("/")
        if not (slash and kind and subtype):
            continue
        quality, charset = 1.0, None
        for param in params:
            name, _, value = param.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"')
            if name == "q":
                quality = _quality(value)
            elif name == "charset":
                charset = value.lower()
        ranges.append(MediaRange(kind, subtype, quality, charset))
    return ranges


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct Accept headers
def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header; None when we can offer nothing."""
    if accept is None or not accept.strip():
        return JSON  # no Accept header: application/json (see the module docstring)
    ranges = parse_accept(accept)
    best: tuple[tuple[float, bool, bool], str] | None = None
    for offer in OFFERS:
        matches = [(s, r.quality) for r in ranges if (s := r.specificity(offer)) is not None]
        if not matches:
            continue
        specificity = max(s for s, _ in matches)  # the most specific range decides
        quality = max(q for s, q in matches if s == specificity)
        if quality <= 0:
            continue
        explicit = specificity == 2
        # Named explicitly next to application/json: graphql-response+json, which
        # carries request errors as 4xx; reached through a wildcard only: application/json.
        preferred = (offer == GRAPHQL_RESPONSE) == explicit
        key = (quality, explicit, preferred)
        if best is None or key > best[0]:
            best = (key, offer)
    return None if best is None else best[1]


def accept_header(request: Request) -> str | None:
    """The Accept header, several of them joined as one list (RFC 9110, 5.3)."""
    values = request.headers.getlist("accept")
    return ", ".join(values) if values else None


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "query" not in request.query_params


# -- Request parameters ------------------------------------------------------------------


def _content_type(header: str | None) -> tuple[str, str | None]:
    """(media type, charset or None) of a Content-Type header; ("", None) if absent."""
    if header is None:
        return "", None
    media, *params = (piece.strip() for piece in header.split(";"))
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.lower(), charset


def _json_param(value: Any, name: str, *, encoded: bool) -> dict[str, Any] | None:
    """An optional map parameter (``variables``, ``extensions``): a JSON object in a POST
    body, or a JSON-encoded object in a GET query string (``encoded``)."""
    if value is None:
        return None
    if encoded:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRequest(f"'{name}' is not valid JSON") from None
        if value is None:
            return None
    if not isinstance(value, dict):
        where = "a JSON-encoded object" if encoded else "an object (not a JSON-encoded string)"
        raise BadRequest(f"'{name}' must be {where}")
    return value


def _get_params(request: Request) -> dict[str, Any]:
    """GET (and HEAD): the parameters from the query string; empty ones are absent."""
    params: dict[str, Any] = {}
    for name in PARAMETERS:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise BadRequest(f"'{name}' is given {len(values)} times in the query string")
        if values and values[0] != "":
            params[name] = values[0]
    return params


async def _read_body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed MAX_BODY."""
    too_large = BadRequest("Request body too large", 413, "PAYLOAD_TOO_LARGE")
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise too_large
    return bytes(body)


async def _post_params(request: Request) -> dict[str, Any] | list[Any]:
    content_type, charset = _content_type(request.headers.get("content-type"))
    if content_type not in (JSON, GRAPHQL_REQUEST):
        raise BadRequest(
            "POST needs Content-Type: application/json",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            {"Accept": JSON},
        )
    if charset is not None and charset not in UTF8_NAMES:
        raise BadRequest(
            f"The request body must be UTF-8, not {charset}",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            {"Accept": f"{JSON}; charset={CHARSET}"},
        )
    body = await _read_body(request)
    if content_type == GRAPHQL_REQUEST:
        try:
            return {"query": body.decode(CHARSET)}
        except UnicodeDecodeError:
            raise BadRequest("The request body is not valid UTF-8") from None
    if not body.strip():
        raise BadRequest("The request body is empty: send a JSON object with 'query'")
    try:
        params = orjson.loads(body)  # UTF-8 only, as the spec requires
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON") from None
    if isinstance(params, list):  # a batch: checked by read_params
        return params
    if not isinstance(params, dict):
        raise BadRequest("The request body must be a JSON object (or an array of them)")
    return params


@dataclasses.dataclass(frozen=True)
class GraphQLRequest:
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


Resolve = Callable[[str | None, dict[str, Any] | None], str | None]


async def read_params(request: Request, max_batch: int) -> dict[str, Any] | list[dict[str, Any]]:
    """The request's parameters: one operation's (GET, or a POSTed JSON object), or a
    batch's (a POSTed JSON array of objects, as Apollo's BatchHttpLink sends, at most
    ``max_batch`` of them); BadRequest if not well-formed."""
    if request.method in ("GET", "HEAD"):
        return _get_params(request)
    params = await _post_params(request)
    if not isinstance(params, list):
        return params
    if not params or len(params) > max_batch:
        raise BadRequest(
            f"A batch holds 1 to {max_batch} operations, not {len(params)}", code="BATCH_TOO_LARGE"
        )
    if not all(isinstance(item, dict) for item in params):
        raise BadRequest("Each operation of a batch must be a JSON object")
    return params


def graphql_request(
    params: dict[str, Any],
    *,
    from_url: bool,
    resolve: Resolve | None = None,
    max_query_bytes: int | None = None,
) -> GraphQLRequest:
    """One operation's GraphQL-over-HTTP parameters; BadRequest if not well-formed,
    QueryTooLarge if its query is longer than ``max_query_bytes``. ``resolve``
    (persisted queries) turns (query, extensions) into the query to run."""
    extensions = _json_param(params.get("extensions"), "extensions", encoded=from_url)
    query = params.get("query")
    if (
        isinstance(query, str)
        and max_query_bytes is not None
        and utf8_length(query) > max_query_bytes
    ):
        raise QueryTooLarge(max_query_bytes)
    if resolve is not None:
        query = resolve(query, extensions)
    if query is None:
        raise BadRequest("'query' is required")
    if not isinstance(query, str):
        raise BadRequest("'query' must be a string")
    if not query.strip():
        raise BadRequest("'query' must be a non-empty string")
    operation_name = params.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequest("'operationName' must be a string")
    return GraphQLRequest(
        query=query,
        operation_name=operation_name,
        variables=_json_param(params.get("variables"), "variables", encoded=from_url),
        extensions=extensions,
    )
