"""The real `shopfront` CLI, run as subprocesses against fresh databases."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from api.auth import decode_token
from api.database import create_sync_engine
from domain import write_tables as w
from projections import read_tables as r
from projections.registry import PROJECTORS
from tests.conftest import (
    ROOT,
    TEST_SECRET,
    _env_for,
    empty_url,
    free_port,
    fresh_settings,
    stop_server,
)
from tests.integration.integration_support import checkpoints, snapshot
from tests.reliability.support import database_of, query_rows_raw, scalar, table_names

JWT = re.compile(r"^[\w-]+\.[\w-]+\.[\w-]+$")


@dataclasses.dataclass(frozen=True)
class Shop:
    path: Path
    env: dict[str, str]

    @property
    def write_url(self) -> str:
        return self.env["SHOPFRONT_WRITE_DATABASE_URL"]

    @property
    def read_url(self) -> str:
        return self.env["SHOPFRONT_READ_DATABASE_URL"]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout

    def event_count(self) -> int:
        return int(scalar(database_of(self.write_url), "SELECT count(*) FROM events"))


def _shop(path: Path, write_url: str | None = None, read_url: str | None = None) -> Shop:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFRONT_")}
    env.update(
        {
            "SHOPFRONT_WRITE_DATABASE_URL": write_url or f"sqlite+aiosqlite:///{path}/write.db",
            "SHOPFRONT_READ_DATABASE_URL": read_url or f"sqlite+aiosqlite:///{path}/read.db",
            "SHOPFRONT_JWT_SECRET": TEST_SECRET,
            "SHOPFRONT_LOG_LEVEL": "warning",
            "COLUMNS": "200",  # rich wraps tables and messages at the terminal width
        }
    )
    return Shop(path, env)


@pytest.fixture(scope="module")
def migrated(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Shop, str]:
    """Two empty databases, then `shopfront migrate`."""
    path = tmp_path_factory.mktemp("cli")
    write, read = (empty_url(template_dir, path, which) for which in ("write", "read"))
    shop = _shop(path, write, read)
    return shop, shop.ok("migrate")


@pytest.fixture(scope="module")
def seeded(migrated: tuple[Shop, str]) -> Shop:
    shop, _ = migrated
    out = shop.ok("seed", "--customers", "5", "--products", "5", "--orders", "20")
    assert "Seeded 5 products, 5 customers, 20 orders." in out
    return shop


def test_migrate_creates_both_schemas(migrated: tuple[Shop, str]) -> None:
    shop, out = migrated
    assert "latest migration" in out
    write, read = database_of(shop.write_url), database_of(shop.read_url)
    assert set(table_names(write)) == {*w.metadata.tables, "alembic_version"}
    assert set(table_names(read)) == {*r.metadata.tables, "alembic_version"}
    assert query_rows_raw(write, "SELECT id, position FROM event_log_head") == [(1, 0)]


def _status(shop: Shop) -> dict[str, list[str]]:
    """`projections status` as {name: [position, head, lag, lag ms, state, parked]}."""
    rows = {}
    for line in shop.ok("projections", "status").splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if cells and cells[0] in PROJECTORS:
            rows[cells[0]] = cells[1:]
    return rows


def test_seed_then_status_shows_no_lag(seeded: Shop) -> None:
    head = seeded.event_count()
    assert head > 20
    status = _status(seeded)
    assert set(status) == set(PROJECTORS)
    for name, (position, head_position, lag, _lag_ms, state, parked) in status.items():
        assert (position, head_position, lag) == (str(head), str(head), "0"), name
        assert state in ("idle", "running"), name
        assert parked == "0", name


def test_rebuild_one_projection_keeps_identical_rows(seeded: Shop) -> None:
    engine = create_sync_engine(seeded.read_url, "log")
    try:
        before = snapshot(engine)
        before_checkpoints = checkpoints(engine)
        out = seeded.ok("projections", "rebuild", "order_history")
        assert "Rebuilt order_history" in out
        assert snapshot(engine) == before
        assert checkpoints(engine) == before_checkpoints
    finally:
        engine.dispose()


def test_rebuild_into_a_new_read_database(seeded: Shop, template_dir: Path, tmp_path: Path) -> None:
    """The read database is lost: a fresh one (migrated, no checkpoint rows yet) is
    rebuilt from the event log and ends up equal to the one that was lost."""
    fresh = _shop(tmp_path, seeded.write_url, empty_url(template_dir, tmp_path, "read"))
    fresh.ok("migrate")
    out = fresh.ok("projections", "rebuild")
    assert "Rebuilt" in out
    lost = create_sync_engine(seeded.read_url, "log")
    rebuilt = create_sync_engine(fresh.read_url, "log")
    try:
        assert snapshot(rebuilt) == snapshot(lost)
        head = seeded.event_count()
        assert checkpoints(rebuilt) == dict.fromkeys(PROJECTORS, head)
    finally:
        lost.dispose()
        rebuilt.dispose()


def test_rebuild_of_an_unknown_projection_fails_clearly(seeded: Shop) -> None:
    done = seeded.run("projections", "rebuild", "nope")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Unknown projection 'nope'" in output
    assert all(name in output for name in PROJECTORS)  # says what would have been valid
    assert "Traceback" not in output


def test_token_prints_a_jwt_the_api_accepts(tmp_path: Path) -> None:
    out = _shop(tmp_path).ok("token", "--sub", "X", "--role", "staff")
    (token,) = [line for line in out.splitlines() if JWT.match(line)]
    actor = decode_token(TEST_SECRET, token)
    assert (actor.id, actor.role) == ("X", "staff")


def test_demo_seed_runs_once_and_prints_two_tokens(template_dir: Path, tmp_path: Path) -> None:
    settings = fresh_settings(template_dir, tmp_path)  # migrated, empty copies
    shop = _shop(tmp_path, settings.write_database_url, settings.read_database_url)
    first = shop.ok("seed", "--demo")
    assert "skipped" not in first
    seeded_events = shop.event_count()
    assert seeded_events > 0
    second = shop.ok("seed", "--demo")
    assert "skipped" in second
    assert shop.event_count() == seeded_events

    engine = create_sync_engine(shop.write_url, "log")
    try:
        with engine.connect() as conn:
            demo_id = conn.scalar(
                sa.select(w.customers.c.id).where(w.customers.c.email == "demo@shopfront.example")
            )
    finally:
        engine.dispose()
    for out in (first, second):
        tokens = [line for line in out.splitlines() if JWT.match(line)]
        actors = [decode_token(TEST_SECRET, token) for token in tokens]
        assert [(a.id, a.role) for a in actors] == [(demo_id, "customer"), ("staff-demo", "staff")]


def test_export_schema_matches_the_committed_schema(tmp_path: Path) -> None:
    committed = ROOT / "schema.graphql"
    if not committed.exists():
        pytest.skip("no schema.graphql committed")
    out = _shop(tmp_path).ok("export-schema")
    assert out == committed.read_text()


# -- `shopfront serve`: start-up refusals ------------------------------------------------------


def _serve(template_dir: Path, work: Path, host: str, **env: str | None) -> tuple[int | None, str]:
    """``shopfront serve --host host`` on a free port and its own databases, with ``env``
    on top (None: left unset), run from ``work`` (no .env file): (its exit code, or None
    if it served /readyz instead and was stopped; its output)."""
    full_env = _env_for(fresh_settings(template_dir, work / "db"))
    full_env["PYTHONPATH"] = str(ROOT)
    full_env["COLUMNS"] = "200"  # rich wraps its messages at the terminal width
    for name, value in env.items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    port, log = free_port(), work / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--host", host, "--port", str(port)],
            cwd=work,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return None, log.read_text()
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            stop_server(process)
    return process.returncode, log.read_text()


def test_serve_refuses_the_dev_secret_on_a_network_address(
    template_dir: Path, tmp_path: Path
) -> None:
    # Refused before it binds: nothing listens beyond loopback, even for a moment.
    code, out = _serve(template_dir, tmp_path, "0.0.0.0", SHOPFRONT_JWT_SECRET=None)
    assert code == 2, out
    assert "Refusing to start" in out and "dev-only JWT secret" in out, out
    assert "Set SHOPFRONT_JWT_SECRET" in out, out
    assert "Traceback" not in out


def test_serve_with_the_dev_secret_on_loopback_still_starts(
    template_dir: Path, tmp_path: Path
) -> None:
    code, out = _serve(template_dir, tmp_path, "127.0.0.1", SHOPFRONT_JWT_SECRET=None)
    assert code is None, out  # it served /readyz
    assert "dev-only secret" in out  # the start-up warning


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHOPFRONT_JWT_SECRET": "short-but-not-the-dev-one"}, "at least 32 bytes"),
        (
            {"SHOPFRONT_TEST_CRASH_BEFORE_COMMIT": "order_detail"},
            "SHOPFRONT_TEST_CRASH_BEFORE_COMMIT is a test-only fault hook",
        ),
    ],
    ids=["short-secret", "crash-hook"],
)
def test_serve_in_prod_refuses_unsafe_settings(
    template_dir: Path, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    code, out = _serve(template_dir, tmp_path, "127.0.0.1", SHOPFRONT_ENV="prod", **env)
    assert code == 2, out
    assert "Refusing to start" in out and message in out, out
    assert "Traceback" not in out
