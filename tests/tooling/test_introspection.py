"""The standard introspection queries of frontend tools answer from a real dev server,
and the schema a tool builds from the answer is ``schema.graphql``:

* graphql-js's ``getIntrospectionQuery()`` (what GraphiQL, graphql-codegen and Apollo
  send), printed by Node from the ``graphql`` npm package pinned in package-lock.json here;
* graphql-core's ``get_introspection_query()``, with every option.

Node.js and npm are needed for the first: without them the test fails (`make test-deps`
installs them).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from graphql import (
    build_client_schema,
    build_schema,
    get_introspection_query,
    lexicographic_sort_schema,
    print_schema,
)

from tests import required_tools

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.timeout(required_tools.NPM_CI_TIMEOUT + 120)


class LiveAppLike(Protocol):
    base_url: str


@pytest.fixture(scope="session")
def js_queries() -> dict[str, str]:
    """graphql-js's introspection queries, from ``npm ci``'s pinned ``graphql``."""
    node = required_tools.node_modules(HERE)
    done = subprocess.run(
        [node, "introspection_queries.mjs"], cwd=HERE, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    queries: dict[str, str] = json.loads(done.stdout)
    return queries


def _sorted_sdl(sdl_or_schema: Any) -> str:
    return print_schema(lexicographic_sort_schema(sdl_or_schema))


def _introspect(base_url: str, query: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": query, "operationName": "IntrospectionQuery"},
        headers={"Accept": "application/graphql-response+json"},
        timeout=30,
        trust_env=False,
    )
    assert response.status_code == 200, response.text[:2000]
    body = response.json()
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def _assert_is_the_exported_schema(data: dict[str, Any]) -> None:
    exported = build_schema((ROOT / "schema.graphql").read_text())
    assert _sorted_sdl(build_client_schema(data)) == _sorted_sdl(exported)  # type: ignore[arg-type]


@pytest.mark.parametrize("variant", ["default", "everything"])
def test_graphql_js_introspection_answers(
    js_queries: dict[str, str], live_app: LiveAppLike, variant: str
) -> None:
    _assert_is_the_exported_schema(_introspect(live_app.base_url, js_queries[variant]))


def test_graphql_core_introspection_answers(live_app: LiveAppLike) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        one_of=True,
    )
    _assert_is_the_exported_schema(_introspect(live_app.base_url, query))
