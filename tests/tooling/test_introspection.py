"""The standard introspection queries of frontend tools answer from a real dev server,
and the schema a tool builds from the answer is ``schema.graphql``:

* graphql-js's ``getIntrospectionQuery()`` (what GraphiQL, graphql-codegen and Apollo
  send), printed by Node from the ``graphql`` npm package pinned in package-lock.json here;
* graphql-core's ``get_introspection_query()``, with every option.

Node.js and npm are needed for the first: without them it is skipped on a developer
machine and fails on CI (``CI=true``), as the graphql-http audit (tests/conformance).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn, Protocol

import httpx
import pytest
from graphql import (
    build_client_schema,
    build_schema,
    get_introspection_query,
    lexicographic_sort_schema,
    print_schema,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LOCKFILE = HERE / "package-lock.json"
NODE_MODULES = HERE / "node_modules"
NPM_CI_TIMEOUT = 300

pytestmark = pytest.mark.timeout(NPM_CI_TIMEOUT + 120)


class LiveAppLike(Protocol):
    base_url: str


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required on CI)")
    pytest.skip(reason)


def _installed_matches_lockfile() -> bool:
    packages: dict[str, dict[str, Any]] = json.loads(LOCKFILE.read_text())["packages"]
    for location, entry in packages.items():
        if not location:  # "" is the project itself
            continue
        try:
            installed = json.loads((HERE / location / "package.json").read_text())
        except (OSError, ValueError):
            return False
        if installed.get("version") != entry.get("version"):
            return False
    return True


@pytest.fixture(scope="session")
def js_queries() -> dict[str, str]:
    """graphql-js's introspection queries, from ``npm ci``'s pinned ``graphql``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed for graphql-js's introspection query")
    if not _installed_matches_lockfile():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
        assert _installed_matches_lockfile(), "npm ci did not install what the lock file pins"
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
