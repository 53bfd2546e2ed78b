"""The serving edge of a real ``shopfront serve`` process in prod: slow and greedy
clients (a 3 MB header, a trickled body, an 8 MB WebSocket message), /metrics only for
its bearer token, X-Forwarded-For believed only from configured proxies, forged
consistency tokens refused at once, and persisted queries stored only once they ran.

Two servers, started together: ``edge`` (prod, a 1 s body timeout, no metrics token)
and ``guarded`` (prod, a metrics token, a rate limit of 2 requests then about one a
minute). These settings are read by ``shopfront serve`` itself (uvicorn's own limits),
so the servers are processes, not the in-process servers of conftest.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import select
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import fresh_server
from tests.e2e.client import TIMEOUT, TRANSPORT_WS, error_codes

pytestmark = pytest.mark.timeout(150)

METRICS_TOKEN = "metrics-" + "m" * 40
BODY_TIMEOUT = 1.0
CONFIGURATIONS = {
    "edge": {"SHOPFRONT_ENV": "prod", "SHOPFRONT_BODY_READ_TIMEOUT": str(BODY_TIMEOUT)},
    "guarded": {
        "SHOPFRONT_ENV": "prod",
        "SHOPFRONT_METRICS_TOKEN": METRICS_TOKEN,
        "SHOPFRONT_RATE_LIMIT_PER_SECOND": "0.01",
        "SHOPFRONT_RATE_LIMIT_BURST": "2",
    },
}


@pytest.fixture(scope="module")
def ports(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    root = tmp_path_factory.mktemp("edge")
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(len(CONFIGURATIONS)) as pool:
        started = {
            name: pool.submit(stack.enter_context, fresh_server(template_dir, root / name, **env))
            for name, env in CONFIGURATIONS.items()
        }
        yield {name: future.result()[0] for name, future in started.items()}


def _client(port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT, trust_env=False)


def _post(port: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    with _client(port) as client:
        return client.post("/graphql", json=body, headers=headers or {})


# -- slow and greedy clients ---------------------------------------------------------------


def _answer(sock: socket.socket) -> bytes:
    """What the server answers until it closes the connection (b"" if it closed, or
    reset, at once)."""
    received = b""
    with contextlib.suppress(ConnectionError):
        while chunk := sock.recv(4096):
            received += chunk
    return received


def test_a_3_mb_header_is_refused(ports: dict[str, int]) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (3 * 2**20)
    with socket.create_connection(("127.0.0.1", ports["edge"]), timeout=TIMEOUT) as sock:
        with contextlib.suppress(ConnectionError):  # closed while we send: refused too
            sock.sendall(head + b"\r\n\r\n")
        answer = _answer(sock)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    with _client(ports["edge"]) as client:  # an ordinary request still works
        assert client.get("/healthz").status_code == 200


def test_a_trickled_body_is_cut_off_within_the_body_timeout(ports: dict[str, int]) -> None:
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", ports["edge"]), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        started = time.monotonic()
        # A byte every 0.3 s until the server answers (or 30 bytes: it never did).
        for _ in range(30):
            readable, _, _ = select.select([sock], [], [], 0.3)
            if readable:
                break
            sock.sendall(b" ")
        answered_after = time.monotonic() - started
        answer = _answer(sock)  # returns: the server closed the connection
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"REQUEST_TIMEOUT" in answer
    assert answered_after < BODY_TIMEOUT + 2, answered_after


async def test_an_8_mb_websocket_message_closes_the_socket_with_1009(
    ports: dict[str, int],
) -> None:
    url = f"ws://127.0.0.1:{ports['edge']}/graphql"
    big = '{"type": "connection_init", "payload": {"x": "' + "a" * 8 * 2**20 + '"}}'
    async with connect(
        url, subprotocols=[TRANSPORT_WS], proxy=None, max_size=None, open_timeout=TIMEOUT
    ) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.send(big)
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009, closed.value


# -- /metrics and X-Forwarded-For ----------------------------------------------------------


def test_metrics_are_not_served_in_prod_without_a_token(ports: dict[str, int]) -> None:
    with _client(ports["edge"]) as client:
        response = client.get("/metrics")
    assert response.status_code == 404
    assert "shopfront_" not in response.text


def test_metrics_are_served_in_prod_to_their_bearer_token_only(ports: dict[str, int]) -> None:
    with _client(ports["guarded"]) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 404, headers
            assert "shopfront_" not in response.text
        response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert "shopfront_event_log_head" in response.text


def test_x_forwarded_for_from_an_untrusted_peer_does_not_escape_the_rate_limit(
    ports: dict[str, int],
) -> None:
    statuses = []
    with _client(ports["guarded"]) as client:
        for n in range(4):  # burst 2: the third is refused, whatever address it claims
            forwarded = {"X-Forwarded-For": f"203.0.113.{n + 1}"}
            response = client.post("/graphql", json={"query": "{ __typename }"}, headers=forwarded)
            statuses.append(response.status_code)
    assert statuses[:2] == [200, 200], statuses
    assert statuses[2:] == [429, 429], statuses


# -- consistency tokens ----------------------------------------------------------------------


def test_a_forged_consistency_token_is_refused_at_once(ports: dict[str, int]) -> None:
    started = time.monotonic()
    response = _post(
        ports["edge"], {"query": "{ __typename }"}, {"Shopfront-Consistency": "sf1.99999999999"}
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 400, response.text
    body = response.json()
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "consistency token is ahead of the event log" in body["errors"][0]["message"]
    assert elapsed < 1.0, elapsed


def test_a_genuine_consistency_token_still_works(ports: dict[str, int]) -> None:
    email = f"edge-{uuid.uuid4().hex[:12]}@example.com"
    registered = _post(
        ports["edge"],
        {
            "query": 'mutation($e: String!) { registerCustomer(input: {email: $e, name: "E"}) '
            "{ consistencyToken userErrors { code } } }",
            "variables": {"e": email},
        },
    ).json()["data"]["registerCustomer"]
    assert registered["userErrors"] == [] and registered["consistencyToken"]
    response = _post(
        ports["edge"],
        {"query": "{ __typename }"},
        {"Shopfront-Consistency": registered["consistencyToken"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"__typename": "Query"}


# -- persisted queries ---------------------------------------------------------------------


def _persisted(query: str) -> dict[str, Any]:
    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def test_a_persisted_query_is_stored_only_once_it_ran(ports: dict[str, int]) -> None:
    port = ports["edge"]
    garbage = f"not graphql at all {uuid.uuid4().hex} {{{{"
    refused = _post(
        port,
        {"query": garbage, "extensions": _persisted(garbage)},
        {"Authorization": "Bearer not-a-token"},
    )
    assert refused.status_code == 401
    unparsable = _post(port, {"query": garbage, "extensions": _persisted(garbage)})
    assert error_codes(unparsable.json()) == ["GRAPHQL_PARSE_FAILED"]
    invalid = f"{{ noSuchField }} # {uuid.uuid4().hex}"
    _post(port, {"query": invalid, "extensions": _persisted(invalid)})
    for query in (garbage, invalid):
        by_hash = _post(port, {"extensions": _persisted(query)})
        assert error_codes(by_hash.json()) == ["PERSISTED_QUERY_NOT_FOUND"], query

    valid = f"{{ __typename }} # {uuid.uuid4().hex}"
    assert _post(port, {"query": valid, "extensions": _persisted(valid)}).status_code == 200
    by_hash = _post(port, {"extensions": _persisted(valid)})
    assert by_hash.json()["data"] == {"__typename": "Query"}
