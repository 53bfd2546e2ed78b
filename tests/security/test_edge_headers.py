"""Every header the serving edge adds, exactly, for each kind of answer: an executed
operation, a cross-origin one (allowed and refused), a CORS preflight (allowed and
refused), a rate-limited request, a request whose headers are too large, and a path
other than /graphql. The request id, metrics, security headers, limits, CORS and rate
limit are one ASGI middleware (api/middleware/edge.py); this pins what each answer gets
from it, in order, so that merging or reordering its steps changes nothing a client
sees."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from tests.e2e.client import TIMEOUT, bearer

from .support import EVIL_ORIGIN, SHOP_ORIGIN, Server, hs256

pytestmark = pytest.mark.timeout(120)

QUERY = {"query": "{ products(first: 1) { totalCount } }"}
SECURITY = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'",
    ),
]
GRAPHQL_VARY = ("vary", "Accept, Origin")
PREFLIGHT = [
    ("access-control-allow-methods", "GET, POST"),
    ("access-control-max-age", "600"),
    (
        "access-control-allow-headers",
        "Accept, Accept-Language, Authorization, Content-Language, Content-Type, "
        "Shopfront-Consistency",
    ),
]
_REQUEST_ID = re.compile(r"[0-9a-f]{16}")


def _headers(response: httpx.Response, drop: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The response's headers in order, without those uvicorn adds (date, server) and the
    length, and with a generated request id checked and replaced by ``<id>``."""
    found = []
    for name, value in response.headers.multi_items():
        if name in ("date", "server", "content-length", *drop):
            continue
        if name == "x-request-id" and _REQUEST_ID.fullmatch(value):
            value = "<id>"
        found.append((name, value))
    return found


def _post(server: Server, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT, trust_env=False) as client:
        return client.post("/graphql", json=QUERY, headers=headers or {})


def test_an_executed_operation(dev_server: Server) -> None:
    response = _post(dev_server)
    assert response.status_code == 200
    assert _headers(response) == [
        GRAPHQL_VARY,
        ("content-type", "application/json; charset=utf-8"),
        *SECURITY,
        ("cache-control", "no-store"),
        ("x-request-id", "<id>"),
    ]


def test_a_sane_request_id_is_kept_and_another_replaced(dev_server: Server) -> None:
    kept = _post(dev_server, {"X-Request-ID": "client-chosen.id_1"})
    assert kept.headers.get_list("x-request-id") == ["client-chosen.id_1"]
    replaced = _post(dev_server, {"X-Request-ID": "no spaces<allowed>"})
    assert _REQUEST_ID.fullmatch(replaced.headers["x-request-id"])


def test_an_allowed_origin(dev_server: Server) -> None:
    response = _post(dev_server, {"Origin": SHOP_ORIGIN})
    assert response.status_code == 200
    assert _headers(response) == [
        GRAPHQL_VARY,
        ("content-type", "application/json; charset=utf-8"),
        ("access-control-expose-headers", "Retry-After"),
        ("access-control-allow-origin", SHOP_ORIGIN),
        *SECURITY,
        ("cache-control", "no-store"),
        ("x-request-id", "<id>"),
    ]


def test_a_refused_origin_gets_no_allow_origin(dev_server: Server) -> None:
    response = _post(dev_server, {"Origin": EVIL_ORIGIN})
    assert _headers(response) == [
        GRAPHQL_VARY,
        ("content-type", "application/json; charset=utf-8"),
        ("access-control-expose-headers", "Retry-After"),
        *SECURITY,
        ("cache-control", "no-store"),
        ("x-request-id", "<id>"),
    ]


def _preflight(server: Server, origin: str, method: str = "POST") -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT, trust_env=False) as client:
        return client.options(
            "/graphql",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "content-type, authorization",
            },
        )


def test_preflights(dev_server: Server) -> None:
    allowed = _preflight(dev_server, SHOP_ORIGIN)
    assert allowed.status_code == 200 and allowed.text == "OK"
    assert _headers(allowed) == [
        (
            "vary",
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
            "Access-Control-Request-Private-Network",
        ),
        *PREFLIGHT,
        ("access-control-allow-origin", SHOP_ORIGIN),
        ("content-type", "text/plain; charset=utf-8"),
        *SECURITY,
        ("cache-control", "no-store"),
        ("x-request-id", "<id>"),
    ]
    refused = _preflight(dev_server, EVIL_ORIGIN)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "CORS_NOT_ALLOWED"
    assert _headers(refused) == [
        ("content-type", "application/json; charset=utf-8"),
        *SECURITY,
        ("cache-control", "no-store"),
        ("x-request-id", "<id>"),
    ]


def test_another_path(dev_server: Server) -> None:
    with httpx.Client(base_url=dev_server.base_url, timeout=TIMEOUT, trust_env=False) as client:
        response = client.get("/healthz", headers={"Origin": SHOP_ORIGIN})
    assert _headers(response) == [
        ("content-type", "application/json"),
        ("access-control-expose-headers", "Retry-After"),
        ("access-control-allow-origin", SHOP_ORIGIN),
        ("vary", "Origin"),
        *SECURITY,
        ("x-request-id", "<id>"),
    ]


def test_a_rate_limited_request(slow_refill_server: Server) -> None:
    headers = {"Origin": SHOP_ORIGIN, **bearer(hs256("edge-headers-429"))}
    answers = [_post(slow_refill_server, headers) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert _headers(answers[-1]) == [
        ("content-type", "application/json; charset=utf-8"),
        ("retry-after", answers[-1].headers["retry-after"]),
        ("access-control-expose-headers", "Retry-After"),
        ("vary", "Origin"),
        *SECURITY,
        ("cache-control", "no-store"),
        ("x-request-id", "<id>"),
    ]
    assert int(answers[-1].headers["retry-after"]) >= 1


def test_headers_too_large(dev_server: Server) -> None:
    port = int(dev_server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + b"X-Big: "
            + b"a" * 70_000
            + b"\r\nContent-Length: 2\r\n\r\n{}"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    names = [line.split(":", 1)[0].lower() for line in lines[1:]]
    kept = [name for name in names if name not in ("date", "server")]
    assert kept == [
        "content-type",
        "content-length",
        "connection",
        *(name for name, _ in SECURITY),
        "cache-control",
        "x-request-id",
    ]
    assert b"HEADERS_TOO_LARGE" in body
