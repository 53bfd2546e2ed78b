"""What graphql-ws's own client (npm, pinned: tests/tooling/ws-client) sees when the
server refuses its connection_init: the close code it treats as final (4401 for a bad
token, 4400 for a payload it cannot read) with the reason, within a second, and no
retry (4403 would be retried for about 41 s).

Node.js and npm are needed: without them the test is skipped on a developer machine and
fails on CI (``CI=true``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from typing import Any, NoReturn

import pytest

from tests.conftest import ROOT

from .support import Server, hs256

HERE = ROOT / "tests" / "tooling" / "ws-client"
NPM_CI_TIMEOUT = 300
RUN_TIMEOUT = 60

pytestmark = pytest.mark.timeout(NPM_CI_TIMEOUT + 4 * RUN_TIMEOUT)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required on CI)")
    pytest.skip(reason)


def _installed_matches_lockfile() -> bool:
    packages: dict[str, dict[str, Any]] = json.loads((HERE / "package-lock.json").read_text())[
        "packages"
    ]
    for location, entry in packages.items():
        if not location:
            continue
        try:
            installed = json.loads((HERE / location / "package.json").read_text())
        except (OSError, ValueError):
            return False
        if installed.get("version") != entry.get("version"):
            return False
    return True


@pytest.fixture(scope="session")
def node() -> str:
    """Node.js, with graphql-ws and ws installed from the lock file."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed for graphql-ws's client")
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
    return node


def connect(node: str, server: Server, params: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [node, "connect.mjs", server.ws_url, json.dumps(params)],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    outcome: dict[str, Any] = json.loads(done.stdout)
    return outcome


def assert_refused_at_once(outcome: dict[str, Any], code: int, reason: str) -> None:
    assert outcome["settled"], f"the client was still retrying after 5 s: {outcome}"
    assert (outcome["code"], outcome["reason"]) == (code, reason), outcome
    assert outcome["elapsedMs"] < 1000, outcome
    assert outcome["connects"] == 1, outcome


def test_a_good_token_connects(node: str, dev_server: Server) -> None:
    token = hs256("ws-client-good")
    outcome = connect(node, dev_server, {"Authorization": f"Bearer {token}"})
    assert outcome.get("completed"), outcome


def test_an_expired_token_is_final_and_says_why(node: str, dev_server: Server) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    token = hs256("ws-client-expired", exp=past)
    outcome = connect(node, dev_server, {"Authorization": f"Bearer {token}"})
    assert_refused_at_once(outcome, 4401, "The token has expired")


def test_a_malformed_token_is_final_and_says_why(node: str, dev_server: Server) -> None:
    outcome = connect(node, dev_server, {"Authorization": "Bearer not-a-jwt"})
    assert_refused_at_once(outcome, 4401, "The token is malformed")


def test_a_payload_in_an_unknown_shape_is_final_and_says_why(node: str, dev_server: Server) -> None:
    outcome = connect(node, dev_server, {"jwt": hs256("ws-client-shape")})
    assert_refused_at_once(
        outcome, 4400, 'connection_init payload: put the token in Authorization ("Bearer <token>")'
    )
