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
AUDIT_TIMEOUT = 120


class LiveAppLike(Protocol):
    base_url: str


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
    return required_tools.node_modules(HERE)


@pytest.mark.timeout(required_tools.NPM_CI_TIMEOUT + AUDIT_TIMEOUT + 60)
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
