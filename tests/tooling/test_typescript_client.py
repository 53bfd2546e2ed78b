"""The typed TypeScript client in examples/typescript-client, as a frontend team builds it:
graphql-codegen generates the operations' types from the exported schema.graphql and
from a running server's introspection (the two must agree with the committed
src/generated/graphql.ts), and ``tsc --noEmit`` type-checks the client against them. A
schema change that breaks a screen's operation fails here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import required_tools
from tests.conftest import ROOT, LiveApp
from tests.required_tools import NPM_CI_TIMEOUT

EXAMPLE = ROOT / "examples" / "typescript-client"
GENERATED = EXAMPLE / "src" / "generated" / "graphql.ts"
TIMEOUT = 120


@pytest.fixture(scope="module")
def example() -> Path:
    required_tools.node_modules(EXAMPLE)
    return EXAMPLE


def _npx(example: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(required_tools.node_and_npm()[1]).with_name("npx")), "--no-install", *args],
        cwd=example,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _codegen(example: Path, schema: str, out: Path) -> str:
    done = _npx(
        example,
        "graphql-codegen",
        "--config",
        "codegen.ts",
        SHOPFRONT_SCHEMA=schema,
        SHOPFRONT_CODEGEN_OUT=str(out),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out.read_text()


@pytest.mark.timeout(NPM_CI_TIMEOUT + TIMEOUT)
def test_codegen_from_schema_graphql_gives_the_committed_types(
    example: Path, tmp_path: Path
) -> None:
    generated = _codegen(example, str(ROOT / "schema.graphql"), tmp_path / "graphql.ts")
    assert "export type PlaceOrderMutation" in generated
    assert generated == GENERATED.read_text(), (
        "examples/typescript-client/src/generated/graphql.ts is out of date: "
        "run `npm run codegen` there and review the diff"
    )


@pytest.mark.timeout(NPM_CI_TIMEOUT + TIMEOUT)
def test_codegen_from_the_live_server_gives_the_same_types(
    example: Path, live_app: LiveApp, tmp_path: Path
) -> None:
    generated = _codegen(example, f"{live_app.base_url}/graphql", tmp_path / "graphql.ts")
    assert generated == GENERATED.read_text()


@pytest.mark.timeout(NPM_CI_TIMEOUT + TIMEOUT)
def test_the_client_type_checks_against_the_generated_types(example: Path) -> None:
    done = _npx(example, "tsc", "--noEmit")
    assert done.returncode == 0, done.stdout + done.stderr
