"""PostgreSQL for both databases: the same Alembic migrations, a real ``shopfront serve``
on a real PostgreSQL server, and a race for the last units that must sell exactly the
stock, with gap-free event positions and every projection caught up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrations.runner import upgrade
from tests.conftest import ROOT, free_port, postgres_env, start_server, stop_server
from tests.e2e.client import Api, Json, api_client, unique
from tests.reliability.support import staff_token
from tests.servers import PostgresServer, postgres_server

STOCK = 10
BUYERS = 50


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def _env(server: PostgresServer) -> dict[str, str]:
    return postgres_env(server)


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "api", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _columns(url: str) -> dict[str, set[str]]:
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {
            table: {column["name"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names()
        }
    finally:
        engine.dispose()


def test_migrations_give_postgresql_the_tables_sqlite_gets(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    upgrade(f"sqlite+aiosqlite:///{tmp_path}/write.db", f"sqlite+aiosqlite:///{tmp_path}/read.db")
    env = _env(postgres)
    _cli(env, "migrate")
    _cli(env, "migrate")  # a second run is a no-op
    for which in ("write", "read"):
        on_postgres = _columns(
            env[f"SHOPFRONT_{which.upper()}_DATABASE_URL"].replace("+asyncpg", "+psycopg")
        )
        on_sqlite = _columns(f"sqlite:///{tmp_path}/{which}.db")
        assert len(on_sqlite) > 5, on_sqlite
        assert on_postgres == on_sqlite, which


async def test_a_race_for_the_last_units_on_postgresql(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    env = _env(postgres)
    _cli(env, "migrate")
    port = free_port()
    process = start_server(env, port, tmp_path / "server.log")
    try:
        async with api_client(f"http://127.0.0.1:{port}") as api:
            await _race(api)
            caught_up = await api.data(
                "{ projections { name position headPosition lag } }", token=staff_token()
            )
    finally:
        stop_server(process)
    assert "Traceback" not in (tmp_path / "server.log").read_text()

    write = sa.create_engine(env["SHOPFRONT_WRITE_DATABASE_URL"].replace("asyncpg", "psycopg"))
    try:
        with write.connect() as conn:
            positions = conn.execute(sa.text("SELECT position FROM events ORDER BY position"))
            found = [row[0] for row in positions]
    finally:
        write.dispose()
    assert found == list(range(1, len(found) + 1)), "event positions have a gap"
    for projection in caught_up["projections"]:
        assert projection["position"] == found[-1], projection


async def _race(api: Api) -> None:
    sku = unique("PGRACE").upper()
    product = await api.add_product(staff_token(), sku=sku, stock=STOCK, price_cents=999)
    assert product["stockAvailable"] == STOCK
    buyers = await asyncio.gather(*(api.register_customer(f"Racer {n}") for n in range(BUYERS)))

    async def buy(token: str) -> Json:
        return await api.order_mutation(
            "placeOrder",
            "PlaceOrderInput",
            {"lines": [{"sku": sku, "quantity": 1}], "idempotencyKey": unique("race")},
            token=token,
            fields="id status lines { sku quantity }",
        )

    payloads = await asyncio.wait_for(asyncio.gather(*(buy(token) for token, _ in buyers)), 60)
    won = [p for p in payloads if not p["userErrors"]]
    codes = Counter(e["code"] for p in payloads for e in p["userErrors"])
    assert len(won) == STOCK, f"{len(won)} orders for {STOCK} units"
    assert codes == {"OUT_OF_STOCK": BUYERS - STOCK}, codes
    assert await api.stock_of(sku) == 0
