"""The per-engine phases on PostgreSQL: a throwaway server (tests/servers.py), both
databases migrated through the CLI (as the cluster phase does) and filled with the rows of
the seeded SQLite data set, and the same picks read back from it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench import cluster, pg_load, phases
from bench.config import Config
from tests.servers import PostgresServer, postgres_server


def load(run: phases.Run, pg: PostgresServer) -> float:
    """Create and migrate the two databases, then copy the seeded SQLite rows into them;
    seconds it took."""
    started = time.monotonic()
    for name in (phases.PG_WRITE, phases.PG_READ):
        pg.create_database(name)
    env = cluster.database_env(pg, phases.PG_WRITE, phases.PG_READ)
    cluster._shopfront(run, ["migrate"], env, run.logs / "postgresql-migrate.log")
    for name, database in (("write.db", phases.PG_WRITE), ("read.db", phases.PG_READ)):
        rows = pg_load.load(run.source / name, pg.url(database))
        phases.log(f"PostgreSQL {database}: {rows:,} rows loaded from {run.source / name}")
    return time.monotonic() - started


@contextmanager
def prepared(run: phases.Run) -> Iterator[tuple[phases.Run, dict[str, object]]]:
    """``run`` pointed at a seeded PostgreSQL (its ``pg`` set), and what was seeded;
    the server is stopped and removed on leaving."""
    with postgres_server() as pg:
        seconds = load(run, pg)
        picks = cluster.pick(pg)
        version = pg.sql("SHOW server_version").strip()
        events = int(pg.sql("SELECT position FROM event_log_head", phases.PG_WRITE))
        phases.log(
            f"PostgreSQL {version}: loaded in {seconds:.0f} s ({len(picks.customers)} customers, "
            f"{len(picks.skus)} products, {events} events)"
        )
        same = picks == run.picks
        phases.log(f"PostgreSQL picks (customers, SKUs, orders) equal SQLite's: {same}")
        meta: dict[str, object] = {
            "same_picks": same,
            "postgresql": version,
            "seconds": round(seconds, 1),
            "events": events,
        }
        yield dataclasses.replace(run, picks=picks, pids={}, pg=pg), meta


def commands(cfg: Config) -> list[str]:
    """How the PostgreSQL side of the per-engine phases was set up."""
    url = "postgresql+asyncpg://postgres@127.0.0.1:PORT"
    return [
        "PostgreSQL: tests/servers.py postgres_server() (initdb, trust, loopback, fsync=off, "
        "synchronous_commit=off); databases bench_write, bench_read",
        f"PostgreSQL data: SHOPFRONT_WRITE_DATABASE_URL={url}/bench_write "
        f"SHOPFRONT_READ_DATABASE_URL={url}/bench_read .venv/bin/shopfront migrate, then "
        "every row of the seeded SQLite write.db and read.db copied in (bench/pg_load.py)",
        "PostgreSQL server and baseline: as on SQLite, with those two URLs "
        f"(baseline: BENCH_READ_DATABASE_URL={url}/bench_read)",
        "PostgreSQL placeOrder baseline: bench/raw_writes_pg.py (psycopg, one connection, "
        "one commit per order) on bench_raw_write (CREATE DATABASE ... TEMPLATE bench_write)",
    ]
