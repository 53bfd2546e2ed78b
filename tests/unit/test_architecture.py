"""The one-way flow of the design, checked on the source: ``mutation -> command -> events ->
projectors -> read tables -> queries/subscriptions``. The read side does not know the edge,
the domain knows neither, and what serves GraphQL reads never touches a write table."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What serves GraphQL: the whole api/graphql/ tree (queries, subscriptions, types, and the
# mutations, which reach the write side through the command bus only).
GRAPHQL_READS = ["api/graphql"]


def _modules(*places: str) -> Iterator[Path]:
    for place in places:
        path = ROOT / place
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute names (``from x import y`` gives ``x`` and
    ``x.y``: y may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations(places: list[str], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in _modules(*places):
        for name in sorted(imported(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_projections_do_not_import_the_api() -> None:
    assert violations(["projections"], ("api",)) == []


def test_domain_imports_neither_the_api_nor_the_projections() -> None:
    assert violations(["domain"], ("api", "projections")) == []


def test_graphql_reads_do_not_touch_write_tables() -> None:
    assert violations(GRAPHQL_READS, ("domain.write_tables",)) == []


def test_migrations_do_not_import_the_api() -> None:
    assert violations(["migrations"], ("api",)) == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from domain import write_tables\nimport api.bootstrap\n")
    assert imported(module) >= {"domain.write_tables", "api.bootstrap"}
