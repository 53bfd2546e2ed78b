"""``shopfront schema diff [BASE]``: what the code's schema changes for clients.

The base is a file, a git revision whose ``schema.graphql`` is taken, or by default
``schema.graphql`` at the merge-base of HEAD with ``main``. graphql-core's
``find_breaking_changes`` / ``find_dangerous_changes`` classify the differences. A
breaking change fails the command unless ``schema-changes.md`` acknowledges it: the line
printed for it (``FIELD_REMOVED: Field Order.legacy was removed.``) appears there verbatim,
under an entry saying why clients can take it (see the file's own header).
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from graphql import (
    GraphQLSchema,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
)

SCHEMA_FILE = "schema.graphql"
CHANGES_FILE = "schema-changes.md"
DEFAULT_BRANCHES = ("main", "origin/main")


class BaseNotFound(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Change:
    kind: str
    description: str

    @property
    def line(self) -> str:
        return f"{self.kind}: {self.description}"


@dataclasses.dataclass(frozen=True)
class Diff:
    base: str
    breaking: list[Change]
    dangerous: list[Change]
    acknowledged: list[Change]

    @property
    def unacknowledged(self) -> list[Change]:
        return [change for change in self.breaking if change not in self.acknowledged]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        raise BaseNotFound(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout


def _default_revision(repo: Path) -> str:
    for branch in DEFAULT_BRANCHES:
        try:
            return _git(repo, "merge-base", "HEAD", branch).strip()[:12]
        except BaseNotFound:
            continue
    raise BaseNotFound("no `main` branch to compare with: name a BASE (file or git revision)")


def load_base(base: str | None, repo: Path) -> tuple[str, str]:
    """(description of the base, its SDL)."""
    if base is not None and Path(base).is_file():
        return base, Path(base).read_text()
    revision = base or _default_revision(repo)
    try:
        return f"{SCHEMA_FILE} at {revision}", _git(repo, "show", f"{revision}:{SCHEMA_FILE}")
    except BaseNotFound as error:
        raise BaseNotFound(
            f"{base or revision} is neither a file nor a revision: {error}"
        ) from None


def diff(old: GraphQLSchema, new: GraphQLSchema, base: str, acknowledgements: str) -> Diff:
    breaking = [Change(c.type.name, c.description) for c in find_breaking_changes(old, new)]
    dangerous = [Change(c.type.name, c.description) for c in find_dangerous_changes(old, new)]
    acknowledged = [change for change in breaking if change.line in acknowledgements]
    return Diff(base, breaking, dangerous, acknowledged)


def diff_with_base(code_sdl: str, base: str | None, repo: Path) -> Diff:
    name, base_sdl = load_base(base, repo)
    changes_file = repo / CHANGES_FILE
    acknowledgements = changes_file.read_text() if changes_file.is_file() else ""
    return diff(build_schema(base_sdl), build_schema(code_sdl), name, acknowledgements)
