"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from api.database import create_sync_engine
from domain import write_tables as w
from migrations.runner import config, upgrade
from projections import read_tables as r
from tests.conftest import empty_url

DATABASES = {"write": w.metadata, "read": r.metadata}


@pytest.fixture
def urls(template_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Both databases migrated from nothing to head, in new empty databases (files, or
    PostgreSQL databases with --db=postgresql)."""
    found = {which: empty_url(template_dir, tmp_path, which) for which in DATABASES}
    upgrade(found["write"], found["read"])
    return found


@pytest.fixture
def engines(urls: dict[str, str]) -> Iterator[dict[str, Engine]]:
    made = {which: create_sync_engine(url, "log") for which, url in urls.items()}
    try:
        yield made
    finally:
        for engine in made.values():
            engine.dispose()


def _differences(engine: Engine, metadata: sa.MetaData) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


@pytest.mark.parametrize("which", list(DATABASES))
def test_migrated_schema_matches_the_metadata(engines: dict[str, Engine], which: str) -> None:
    assert _differences(engines[which], DATABASES[which]) == []


def test_event_log_head_starts_at_zero(engines: dict[str, Engine]) -> None:
    with engines["write"].connect() as conn:
        rows = conn.execute(sa.select(w.event_log_head.c.id, w.event_log_head.c.position)).all()
    assert [tuple(row) for row in rows] == [(1, 0)]


def test_upgrade_again_is_a_no_op(urls: dict[str, str], engines: dict[str, Engine]) -> None:
    upgrade(urls["write"], urls["read"])
    with engines["write"].connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(w.event_log_head)) == 1
    for which, metadata in DATABASES.items():
        assert _differences(engines[which], metadata) == []


@pytest.mark.parametrize("which", list(DATABASES))
def test_downgrade_to_base_and_back(
    urls: dict[str, str], engines: dict[str, Engine], which: str
) -> None:
    cfg = config(which, urls[which])
    command.downgrade(cfg, "base")
    left = set(sa.inspect(engines[which]).get_table_names())
    assert left <= {"alembic_version"}
    command.upgrade(cfg, "head")
    assert _differences(engines[which], DATABASES[which]) == []
