"""SHOPFRONT_ENV=prod: no GraphiQL, no introspection, internal errors masked (with a
request id to quote), X-Request-ID on every response, JSON log lines carrying the
request id; and no start at all without a real JWT secret."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from graphql import GraphQLError, get_introspection_query

from api.app import build_app
from api.graphql.errors import with_code
from api.settings import DEV_JWT_SECRET, Settings
from tests.e2e.client import GRAPHQL_RESPONSE, JSON, TIMEOUT, Json, bearer

from .conftest import Exited
from .support import Server, request_error

pytestmark = pytest.mark.timeout(150)

PRODUCTS = "{ products(first: 5) { edges { node { sku name } } } }"


def never_asked(query: str) -> str:
    """``query`` with a unique comment: no answer cached by an earlier request (the
    response cache is keyed by the document) can stand in for running it."""
    return f"{query} # {uuid.uuid4().hex}"


@pytest.fixture
async def http(prod_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=prod_server.base_url, timeout=TIMEOUT, trust_env=False
    ) as client:
        yield client


async def test_no_graphiql_in_prod(http: httpx.AsyncClient) -> None:
    for accept in ("text/html", "text/html,application/xhtml+xml,*/*;q=0.8"):
        response = await http.get("/graphql", headers={"Accept": accept})
        assert not response.headers["content-type"].startswith("text/html"), response.headers
        assert "graphiql" not in response.text.lower(), response.text[:500]
        assert "<html" not in response.text.lower(), response.text[:500]
    # Queries over GET still work, as the API.
    response = await http.get("/graphql", params={"query": "{ __typename }"})
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}


async def test_introspection_is_refused_in_prod(http: httpx.AsyncClient) -> None:
    for query in (
        "{ __schema { types { name } } }",
        '{ __type(name: "Order") { fields { name } } }',
        "query Sneaky { products { edges { node { sku } } } ...S }\n"
        "fragment S on Query { __schema { queryType { name } } }",
        get_introspection_query(descriptions=True),  # what tools send
    ):
        response = await http.post(
            "/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE}
        )
        body = request_error(response, 400, "GRAPHQL_VALIDATION_FAILED")
        assert "introspection" in body["errors"][0]["message"].lower(), body
        assert "Order" not in response.text and "Mutation" not in response.text
    # __typename is not introspection of the schema: clients (Apollo, Relay) rely on it.
    response = await http.post("/graphql", json={"query": "{ __typename }"})
    assert response.json()["data"] == {"__typename": "Query"}


# Mistakes whose answers in dev suggest the names they were near.
NEAR_MISSES = (
    ("{ prodcts(first: 1) { edges { cursor } } }", None, "products"),
    ("{ products(frist: 1) { edges { cursor } } }", None, "first"),
    ("{ myOrders(status: PAYD) { edges { cursor } } }", None, "PAID"),
    ("query($s: OrderStatus) { myOrders(status: $s) { edges { cursor } } }", {"s": "PAYD"}, "PAID"),
    ("query($p: PlaceOrderInpt) { __typename }", None, "PlaceOrderInput"),
    ("{ products(first: 1) { edges { nod { sku } } } }", None, "node"),
)


async def test_errors_make_no_suggestions_in_prod(
    http: httpx.AsyncClient, dev_server: Server
) -> None:
    async with httpx.AsyncClient(
        base_url=dev_server.base_url, timeout=TIMEOUT, trust_env=False
    ) as dev:
        for query, variables, near in NEAR_MISSES:
            body: Json = {"query": query, "variables": variables}
            prod_answer = await http.post("/graphql", json=body)
            dev_answer = await dev.post("/graphql", json=body)
            # In dev, the suggestion helps (and shows this test would see one).
            assert "Did you mean" in dev_answer.text and near in dev_answer.text, dev_answer.text
            errors = prod_answer.json()["errors"]
            assert errors and errors[0]["extensions"]["code"] in (
                "GRAPHQL_VALIDATION_FAILED",
                "BAD_USER_INPUT",
            ), errors
            assert "Did you mean" not in prod_answer.text, prod_answer.text
            assert near not in prod_answer.text, prod_answer.text


@contextmanager
def read_table_gone(server: Server, table: str) -> Iterator[None]:
    """An infrastructure failure: a read table disappears (renamed) under the server."""
    url = server.env["SHOPFRONT_READ_DATABASE_URL"]
    path = url.split(":///", 1)[1]
    with sqlite3.connect(path, timeout=10) as conn:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")
    try:
        yield
    finally:
        with sqlite3.connect(path, timeout=10) as conn:
            conn.execute(f"ALTER TABLE {table}_gone RENAME TO {table}")


async def test_an_internal_error_is_masked_with_a_request_id(
    http: httpx.AsyncClient, prod_server: Server
) -> None:
    with read_table_gone(prod_server, "catalog_products"):
        response = await http.post("/graphql", json={"query": never_asked(PRODUCTS)})
    assert response.status_code == 200, response.text  # executed: a field error
    body: Json = response.json()
    request_id = response.headers["x-request-id"]
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR", body
    assert error["extensions"]["requestId"] == request_id, (body, response.headers)
    assert request_id in error["message"], body
    assert error["path"] == ["products"], body
    for secret in ("catalog_products", "no such table", "sqlite", "Traceback", "Error:"):
        assert secret.lower() not in response.text.lower(), response.text
    # The table is back: so is the catalog.
    body = (await http.post("/graphql", json={"query": PRODUCTS})).json()
    assert "errors" not in body and body["data"] == {"products": {"edges": []}}, body

    # The operator finds the details in the log, under the same request id.
    deadline = time.monotonic() + 5
    while True:
        records = [
            entry
            for entry in _log_records(prod_server)
            if entry.get("request_id") == request_id and entry["level"] == "error"
        ]
        if records or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert records, prod_server.log_text()[-3000:]
    assert "catalog_products" in json.dumps(records), records


def test_with_code_masks_unexpected_errors_unless_told_to_expose_them() -> None:
    try:
        raise RuntimeError("secret detail: password=hunter2")
    except RuntimeError as error:
        original = GraphQLError("secret detail: password=hunter2", original_error=error)
    masked = with_code(original, expose_internal=False).formatted
    assert masked["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    request_id = masked["extensions"]["requestId"]
    assert isinstance(request_id, str) and request_id in masked["message"]
    assert "secret" not in json.dumps(masked) and "hunter2" not in json.dumps(masked)
    exposed = with_code(original, expose_internal=True).formatted
    assert "secret detail" in exposed["message"]  # dev: the developer sees it


async def test_every_response_carries_a_request_id(http: httpx.AsyncClient) -> None:
    seen: set[str] = set()
    for method, path, kwargs in (
        ("POST", "/graphql", {"json": {"query": PRODUCTS}}),
        ("POST", "/graphql", {"content": b"{not json", "headers": {"Content-Type": JSON}}),
        ("POST", "/graphql", {"json": {"query": "{ me { id } }"}, "headers": bearer("x.y.z")}),
        ("GET", "/graphql", {"params": {"query": "{ nope }"}}),
        ("GET", "/healthz", {}),
        ("GET", "/no-such-path", {}),
    ):
        response = await http.request(method, path, **kwargs)
        assert response.status_code < 500, response.text
        request_id = response.headers.get("x-request-id")
        assert request_id and len(request_id) >= 8, (path, response.headers)
        seen.add(request_id)
    assert len(seen) == 6  # one per request
    # A sane id from the caller (a proxy) is kept; a hostile one is replaced.
    response = await http.post(
        "/graphql", json={"query": PRODUCTS}, headers={"X-Request-ID": "edge-proxy-1234abcd"}
    )
    assert response.headers["x-request-id"] == "edge-proxy-1234abcd"
    response = await http.post(
        "/graphql",
        json={"query": PRODUCTS},
        headers={"X-Request-ID": "<script>alert(1)</script> " + "x" * 100},
    )
    assert response.headers["x-request-id"].isalnum(), response.headers


def _log_records(server: Server) -> list[Json]:
    """The log records of the server: every line but the start-up banner, as JSON."""
    records = []
    for line in server.log_text().splitlines():
        if not line.strip() or line.startswith("Shopfront on http://"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"a log line that is not JSON: {line!r}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


async def test_logs_are_json_lines_with_a_request_id(
    http: httpx.AsyncClient, prod_server: Server
) -> None:
    # Something worth a log line, under a request id of our choosing.
    request_id = f"log-test-{uuid.uuid4().hex}"
    with read_table_gone(prod_server, "catalog_products"):
        await http.post(
            "/graphql", json={"query": never_asked(PRODUCTS)}, headers={"X-Request-ID": request_id}
        )
    deadline = time.monotonic() + 5
    while not any(r.get("request_id") == request_id for r in _log_records(prod_server)):
        assert time.monotonic() < deadline, prod_server.log_text()[-3000:]
        await asyncio.sleep(0.1)
    records = _log_records(prod_server)
    for record in records:
        assert {"time", "level", "logger", "message", "request_id"} <= record.keys(), record
        assert record["request_id"] is None or isinstance(record["request_id"], str), record
    assert any(r["logger"].startswith("uvicorn") for r in records), records  # start-up


def test_prod_refuses_to_start_without_a_real_jwt_secret(
    prod_without_secret: Exited, tmp_path: Path
) -> None:
    output = prod_without_secret.output
    assert prod_without_secret.returncode is not None, f"it started serving: {output}"
    assert prod_without_secret.returncode != 0, output
    assert "SHOPFRONT_JWT_SECRET must be set" in output, output
    assert "Traceback" not in output, output
    assert "Uvicorn running" not in output, output
    # ... and the dev-only secret, given explicitly, is no better.
    settings = Settings(
        env="prod",
        jwt_secret=DEV_JWT_SECRET,
        write_database_url=f"sqlite+aiosqlite:///{tmp_path}/write.db",
        read_database_url=f"sqlite+aiosqlite:///{tmp_path}/read.db",
    )
    with pytest.raises(RuntimeError, match="SHOPFRONT_JWT_SECRET must be set"):
        build_app(settings)
