"""docs/errors.md lists every error code a client can receive: it is generated from
api/graphql/error_codes.py, and every code-like string in api/ and domain/ is in that table (a new
code without documentation fails here), as every documented code is still used."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from api.graphql.error_codes import CODES, markdown

ROOT = Path(__file__).resolve().parents[2]
CODE_LIKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^(FORBIDDEN|UNAUTHENTICATED|CONFLICT)$")
# Upper-case strings of the source that are not error codes.
NOT_CODES = {
    "SHOPFRONT_",  # the settings' prefix
    "STATIC_PREFIX",
    "STATIC_DIR",
    "BREAKING",  # schema diff output
}
STATUSES = {"PLACED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED", "REFUNDED"}


def _code_like_strings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in ("api", "domain"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "error_codes.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and CODE_LIKE.match(node.value)
                    and node.value not in NOT_CODES | STATUSES
                ):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.setdefault(node.value, []).append(where)
    return found


def test_docs_errors_md_is_generated_from_the_table() -> None:
    assert (ROOT / "docs" / "errors.md").read_text() == markdown(), (
        "docs/errors.md is out of date: python -m api.graphql.error_codes > docs/errors.md"
    )


def test_every_code_in_the_source_is_documented() -> None:
    used = _code_like_strings()
    undocumented = {code: where for code, where in used.items() if code not in CODES}
    assert not undocumented, f"add these to api/graphql/error_codes.py: {undocumented}"


def test_every_documented_code_is_still_used() -> None:
    used = _code_like_strings()
    assert len(used) > 20, used
    stale = sorted(code for code in CODES if code not in used)
    assert not stale, f"no longer raised anywhere: {stale}"
