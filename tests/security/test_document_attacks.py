"""Small documents that cost a lot, and large documents, against a real ``shopfront
serve`` process (its log and its memory are under test):

* fragments spread twice in each of 40 chained fragments (2**40 paths, under 2 KB) are
  refused at once, and ``/healthz`` answers meanwhile;
* a fragment that spreads itself is a validation error, with no stack trace logged;
* a query of almost 1 MB (one comment) is refused (QUERY_TOO_LARGE) over HTTP and over
  both WebSocket protocols, before it is parsed or cached: the process does not grow.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_server
from tests.e2e.client import GRAPHQL_RESPONSE, legacy_ws, transport_ws

from .support import no_leak, request_error

pytestmark = pytest.mark.timeout(150)

HUGE = 900_000  # characters of comment: under the 1 MB request body limit
# Bounds far above what the refusals take, far below what the attacks took before.
FAST = 1.0  # seconds
GROWTH = 10 * 1024  # KiB of resident memory after 40 huge documents


class Limits:
    def __init__(self, port: int, pid: int, log: Path) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/graphql"
        self.pid = pid
        self.log = log

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limits]:
    work = tmp_path_factory.mktemp("document-attacks")
    with fresh_server(template_dir, work, SHOPFRONT_LOG_LEVEL="info") as (port, process):
        yield Limits(port, process.pid, work / "server.log")


@pytest.fixture
async def http(server: Limits) -> AsyncIterator[httpx.AsyncClient]:
    # A short timeout: before the fix the first attack held the server for hours.
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10, trust_env=False) as client:
        yield client


async def post(http: httpx.AsyncClient, query: str) -> httpx.Response:
    return await http.post("/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE})


def doubling_chain(levels: int) -> str:
    """Each fragment spreads the next one twice: 2**levels paths to the last."""
    tag = uuid.uuid4().hex[:6]  # a new document each time: nothing cached helps
    fragments = [
        f"fragment F{tag}{i} on Query {{ ...F{tag}{i + 1} ...F{tag}{i + 1} }}"
        for i in range(levels)
    ]
    fragments.append(f"fragment F{tag}{levels} on Query {{ __typename }}")
    return f"{{ ...F{tag}0 }}\n" + "\n".join(fragments)


async def test_a_fragment_doubling_chain_is_refused_at_once(
    http: httpx.AsyncClient, server: Limits
) -> None:
    healthz: list[float] = []
    attacks_done = asyncio.Event()

    async def poll_healthz() -> None:
        async with httpx.AsyncClient(
            base_url=server.base_url, timeout=10, trust_env=False
        ) as other:
            for _ in range(1000):  # bounded; stops when the attacks are over
                started = time.perf_counter()
                response = await other.get("/healthz")
                healthz.append(time.perf_counter() - started)
                assert response.status_code == 200
                if attacks_done.is_set() and len(healthz) >= 3:
                    return

    poller = asyncio.create_task(poll_healthz())
    try:
        for _ in range(5):
            query = doubling_chain(40)
            assert len(query.encode()) < 2500
            started = time.perf_counter()
            response = await post(http, query)
            took = time.perf_counter() - started
            body = request_error(response, 400, "QUERY_TOO_COSTLY")
            assert "cost" in body["errors"][0]["message"].lower(), body
            assert took < FAST, took
    finally:
        attacks_done.set()
        await asyncio.wait_for(poller, 30)
    assert healthz and max(healthz) < FAST, healthz


async def test_a_fragment_cycle_is_a_validation_error_without_a_stack_trace(
    http: httpx.AsyncClient, server: Limits
) -> None:
    for query in (
        "{ ...A }\nfragment A on Query { __typename ...A }",
        "{ ...A }\nfragment A on Query { __typename ...B }\nfragment B on Query { ...A }",
        # a cycle under a field, reached through a chain
        '{ __type(name: "Order") { ...T0 } }\nfragment T0 on __Type { ofType { ...T1 } }\n'
        "fragment T1 on __Type { name ...T0 }",
    ):
        body = request_error(await post(http, query), 400, "GRAPHQL_VALIDATION_FAILED")
        assert "within itself" in body["errors"][0]["message"], body
    # The server is fine, and logged nothing like a stack trace for any of it.
    assert (await http.get("/healthz")).status_code == 200
    log = server.log.read_text(errors="replace")
    for sign in ("Traceback", "RecursionError", 'File "', "INTERNAL_SERVER_ERROR"):
        assert sign not in log, log[-3000:]


def huge_query() -> str:
    return "{ __typename }\n# " + uuid.uuid4().hex + "x" * HUGE


async def test_a_huge_query_is_refused_over_http_and_not_kept(
    http: httpx.AsyncClient, server: Limits
) -> None:
    # Just under the limit (64 KiB): answered.
    response = await post(http, "{ __typename }\n#" + "x" * 60_000)
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}
    request_error(await post(http, huge_query()), 400, "QUERY_TOO_LARGE")  # warm up
    before = server.rss_kib()
    for _ in range(40):
        body = request_error(await post(http, huge_query()), 400, "QUERY_TOO_LARGE")
        assert "65536 bytes" in body["errors"][0]["message"], body
    grown = server.rss_kib() - before
    assert grown < GROWTH, f"the server grew by {grown} KiB"
    # application/json: the same refusal as a 200 (graphql-over-http), still no data
    response = await http.post(
        "/graphql", json={"query": huge_query()}, headers={"Accept": "application/json"}
    )
    request_error(response, 200, "QUERY_TOO_LARGE")


async def test_a_huge_query_is_refused_over_websocket(server: Limits) -> None:
    async with transport_ws(server.ws_url, None) as client:
        op = await client.subscribe(huge_query())  # warm up
        assert (await client.receive_for(op))["type"] == "error"
        before = server.rss_kib()
        for _ in range(40):
            op = await client.subscribe(huge_query())
            message = await client.receive_for(op)
            no_leak(str(message))
            assert message["type"] == "error", str(message)[:2000]
            assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_LARGE", message
        grown = server.rss_kib() - before
        assert grown < GROWTH, f"the server grew by {grown} KiB"
        # The socket is still usable.
        op = await client.subscribe("query { __typename }")
        assert await client.next_data(op) == {"__typename": "Query"}

    async with legacy_ws(server.ws_url, None) as legacy:
        op = await legacy.start(huge_query())
        message = await legacy.receive_for(op)
        assert message["type"] == "error", str(message)[:2000]
        assert message["payload"]["extensions"]["code"] == "QUERY_TOO_LARGE", message
        # Still usable (this protocol runs subscriptions only: an invalid one is enough).
        op = await legacy.start("subscription { nope }")
        message = await legacy.receive_for(op)
        assert message["payload"]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", message
