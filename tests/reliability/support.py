"""Shared by the reliability tests: tokens, the SQLite files behind a running server,
row-for-row snapshots of the read tables, and a dedicated server process that a test may
kill and restart on the same database files.

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy.engine import make_url

from api.auth import make_token
from api.database import create_sync_engine
from projections.registry import PROJECTORS
from projections.runner import ProjectionRunner
from tests.conftest import TEST_SECRET, free_port, start_server, stop_server

TOKEN_TTL = dt.timedelta(hours=1)
JSON_COLUMNS = frozenset({"doc"})
# Not read models: the migration marker, and the checkpoints (a rebuild rewinds them).
NOT_READ_MODELS = frozenset({"alembic_version", "projection_checkpoints"})

Json = dict[str, Any]
Row = dict[str, Any]
Snapshot = dict[str, list[Row]]


def staff_token(sub: str = "staff-reliability") -> str:
    return make_token(TEST_SECRET, sub, "staff", TOKEN_TTL)


def sqlite_path(url: str) -> Path:
    """The file behind a ``sqlite+aiosqlite:///...`` URL."""
    database = make_url(url).database
    assert database, url
    return Path(database)


def open_db(path: Path) -> sqlite3.Connection:
    """A connection for SELECTs only (WAL: sees every transaction the server committed)."""
    assert path.exists(), path
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def query_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
    with contextlib.closing(open_db(path)) as conn:
        return [dict(row) for row in conn.execute(sql, params)]


def read_snapshot(path: Path) -> Snapshot:
    """Every row of every read table (all tables but NOT_READ_MODELS), JSON documents
    parsed, rows in a canonical order: equal snapshots mean equal tables, row for row."""
    result: Snapshot = {}
    with contextlib.closing(open_db(path)) as conn:
        tables = [
            str(name)
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in sorted(tables):
            if table in NOT_READ_MODELS:
                continue
            rows = [
                {
                    key: json.loads(value) if key in JSON_COLUMNS else value
                    for key, value in dict(row).items()
                }
                for row in conn.execute(f'SELECT * FROM "{table}"')
            ]
            rows.sort(key=lambda row: json.dumps(row, sort_keys=True, default=str))
            result[table] = rows
    return result


def _fresh_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)


async def rebuild_from_scratch(template_dir: Path, target: Path, write_url: str) -> Snapshot:
    """Project the whole event log of ``write_url`` from position 0 into a fresh copy of
    the migrated, empty read database (``target``/read.db); returns its snapshot."""
    await asyncio.to_thread(_fresh_copy, template_dir / "read.db", target / "read.db")
    log = create_sync_engine(write_url, "log")
    engine = create_sync_engine(f"sqlite+aiosqlite:///{target}/read.db", "projector")
    runner = ProjectionRunner(log, engine, PROJECTORS)
    try:
        await runner.catch_up(timeout=30)
        assert not runner.errors, runner.errors
    finally:
        runner.close()
        engine.dispose()
        log.dispose()
    return await asyncio.to_thread(read_snapshot, target / "read.db")


def assert_same_tables(live: Snapshot, rebuilt: Snapshot) -> None:
    assert live.keys() == rebuilt.keys(), (sorted(live), sorted(rebuilt))
    for name in sorted(rebuilt):
        got, want = live[name], rebuilt[name]
        assert len(got) == len(want), f"{name}: {len(got)} rows live, {len(want)} rebuilt"
        for got_row, want_row in zip(got, want, strict=True):
            assert got_row == want_row, f"{name} differs from the rebuild:\n{got_row}\n{want_row}"


@dataclasses.dataclass
class Server:
    """``shopfront serve`` as a child process on given database files (via ``env``)."""

    env: dict[str, str]
    log: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_db(self) -> Path:
        return sqlite_path(self.env["SHOPFRONT_WRITE_DATABASE_URL"])

    @property
    def read_db(self) -> Path:
        return sqlite_path(self.env["SHOPFRONT_READ_DATABASE_URL"])

    async def start(self) -> None:
        """Start on a new free port; returns once /readyz says ready."""
        assert self.process is None or self.process.poll() is not None
        self.port = free_port()
        self.process = await asyncio.to_thread(start_server, self.env, self.port, self.log)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            await asyncio.to_thread(stop_server, self.process)


async def graphql(
    http: httpx.AsyncClient, query: str, variables: Json | None = None, token: str | None = None
) -> Json:
    """One GraphQL request that must succeed (HTTP 200, no errors); returns ``data``."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, (response.status_code, response.text[:2000])
    body = cast(Json, response.json())
    assert not body.get("errors"), body["errors"]
    return cast(Json, body["data"])


PROJECTIONS = "{ projections { name position headPosition lag state } }"


async def wait_projections_caught_up(
    http: httpx.AsyncClient, token: str, timeout: float = 15.0
) -> list[Json]:
    """Poll the staff ``projections`` query until every projection has lag 0."""
    deadline = time.monotonic() + timeout
    while True:
        states = cast(list[Json], (await graphql(http, PROJECTIONS, token=token))["projections"])
        assert states, "no projections reported"
        assert all(s["state"] != "error" for s in states), states
        if all(s["lag"] == 0 and s["position"] == s["headPosition"] for s in states):
            return states
        assert time.monotonic() < deadline, f"projections did not catch up: {states}"
        await asyncio.sleep(0.1)
