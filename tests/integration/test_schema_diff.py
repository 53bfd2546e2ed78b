"""``shopfront schema diff``: breaking changes against a base fail unless acknowledged in
schema-changes.md; dangerous ones are listed; the default base is schema.graphql at the
merge-base with main."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SCHEMA = (ROOT / "schema.graphql").read_text()


def _diff(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "api", "schema", "diff", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _with_extra_field(sdl: str) -> str:
    """The schema as it would be if Order had one more field, which the code lacks."""
    marker = "type Order implements Node {\n"
    assert marker in sdl
    return sdl.replace(marker, marker + "  legacyTotal: Int!\n", 1)


def test_the_committed_schema_has_no_changes(tmp_path: Path) -> None:
    base = tmp_path / "base.graphql"
    base.write_text(SCHEMA)
    done = _diff(tmp_path, str(base))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "none that could break a client" in done.stdout


def test_a_removed_field_is_breaking_until_acknowledged(tmp_path: Path) -> None:
    base = tmp_path / "base.graphql"
    base.write_text(_with_extra_field(SCHEMA))
    done = _diff(tmp_path, str(base))
    assert done.returncode == 1, done.stdout + done.stderr
    line = "FIELD_REMOVED: Field Order.legacyTotal was removed."
    assert f"BREAKING {line}" in done.stdout
    assert "Deprecate first" in done.stdout

    (tmp_path / "schema-changes.md").write_text(f"## Order.legacyTotal removed\n- {line}\n")
    done = _diff(tmp_path, str(base))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"acknowledged {line}" in done.stdout


def test_a_dangerous_change_is_listed_and_passes(tmp_path: Path) -> None:
    base = tmp_path / "base.graphql"
    base.write_text(SCHEMA.replace("  CANCELLED\n", "", 1))
    done = _diff(tmp_path, str(base))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dangerous VALUE_ADDED_TO_ENUM: Enum value OrderStatus.CANCELLED was added." in (
        done.stdout
    )


def test_the_default_base_is_the_merge_base_with_main(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "schema.graphql").write_text(_with_extra_field(SCHEMA))
    git("add", "schema.graphql")
    git("commit", "-q", "-m", "base")
    git("checkout", "-q", "-b", "feature")
    (tmp_path / "schema.graphql").write_text(SCHEMA)
    git("commit", "-q", "-am", "drop the field")

    done = _diff(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FIELD_REMOVED: Field Order.legacyTotal was removed." in done.stdout

    done = _diff(tmp_path, "nosuchrevision")
    assert done.returncode == 2
    assert "neither a file nor a revision" in done.stdout
