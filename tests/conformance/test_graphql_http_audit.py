"""GraphQL-over-HTTP conformance: the reference audit of the ``graphql-http`` npm package
(``auditServer``), run by ``audit.mjs`` with Node against the live server.

The audit grades each check by the spec's requirement level: a failed MUST is an
"error", a failed SHOULD a "warn", a failed MAY a "notice". Shopfront follows every one
of them, so this test wants every audit "ok": no error, no warning and no notice (the
notices cover optional behaviour we do implement, such as JSON ``variables`` in a GET
query string; losing one would be a regression).

Node.js (>= 18, for the global ``fetch``) and npm are needed: ``make test-deps`` installs
them, and without them the test fails (``tests/required_tools.py``). ``npm ci`` installs
the pinned packages (package-lock.json) when node_modules is missing or out of date.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests import required_tools

HERE = Path(__file__).resolve().parent
LOCKFILE = HERE / "package-lock.json"
NODE_MODULES = HERE / "node_modules"
NPM_CI_TIMEOUT = 300
AUDIT_TIMEOUT = 120


class LiveAppLike(Protocol):
    base_url: str


def _installed_matches_lockfile() -> bool:
    """Whether node_modules holds exactly the versions package-lock.json pins."""
    if not NODE_MODULES.is_dir():
        return False
    packages: dict[str, dict[str, Any]] = json.loads(LOCKFILE.read_text())["packages"]
    for location, entry in packages.items():
        if not location:  # "" is the project itself
            continue
        manifest = HERE / location / "package.json"
        try:
            installed = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return False
        if installed.get("version") != entry.get("version"):
            return False
    return True


def _ensure_node_modules(npm: str) -> None:
    if _installed_matches_lockfile():
        return
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    assert _installed_matches_lockfile(), "npm ci did not install what package-lock.json pins"


def _run_audit(node: str, url: str) -> dict[str, Any]:
    done = subprocess.run(
        [node, "audit.mjs", url],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT,
    )
    # 0: no error, 1: some error (the summary says which); anything else: it did not run.
    if done.returncode not in (0, 1):
        pytest.fail(f"audit.mjs could not run ({done.returncode}):\n{done.stderr}")
    try:
        summary: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"audit.mjs printed no JSON summary:\n{done.stdout}\n{done.stderr}")
    assert (done.returncode == 0) == (summary["error"] == 0), (done.returncode, summary)
    return summary


@pytest.fixture(scope="session")
def node() -> str:
    """Node.js with the audit's packages installed; requested before ``live_app`` so that
    a machine without Node fails before a server is started."""
    node, npm = required_tools.node_and_npm()
    _ensure_node_modules(npm)
    return node


@pytest.mark.timeout(NPM_CI_TIMEOUT + AUDIT_TIMEOUT + 60)
def test_graphql_http_audit_passes(
    node: str, live_app: LiveAppLike, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _run_audit(node, f"{live_app.base_url}/graphql")

    total, ok = summary["total"], summary["ok"]
    warn, error, notice = summary["warn"], summary["error"], summary["notice"]
    with capsys.disabled():  # shown in the CI log even when pytest captures output
        print(
            f"\ngraphql-http audit: {total} audits, {ok} ok, {warn} warnings, "
            f"{error} errors, {notice} notices"
        )
    problems = json.dumps(summary["notOk"], indent=2)
    assert total > 0, summary
    assert ok + warn + error + notice == total, summary
    assert error == 0, f"{error} MUST audits fail:\n{problems}"
    assert warn == 0, f"{warn} SHOULD audits fail:\n{problems}"
    assert notice == 0, f"{notice} MAY audits fail:\n{problems}"
