"""The per-engine phases on PostgreSQL: a throwaway server (tests/servers.py), the data
set seeded through the CLI with the sizes and random seed of the SQLite one (as the
cluster phase seeds its own), and the same picks read back from it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from bench import cluster, phases
from bench.config import Config
from tests.servers import postgres_server


@contextmanager
def prepared(run: phases.Run) -> Iterator[tuple[phases.Run, dict[str, object]]]:
    """``run`` pointed at a seeded PostgreSQL (its ``pg`` set), and what was seeded;
    the server is stopped and removed on leaving."""
    cfg = run.cfg
    with postgres_server() as pg:
        counts = (cfg.customers, cfg.products, cfg.orders)
        seconds = cluster.seed(run, pg, counts, "postgresql-seed.log")
        picks = cluster.pick(pg)
        version = pg.sql("SHOW server_version").strip()
        events = int(pg.sql("SELECT position FROM event_log_head", phases.PG_WRITE))
        phases.log(
            f"PostgreSQL {version}: seeded in {seconds:.0f} s ({len(picks.customers)} customers, "
            f"{len(picks.skus)} products, {events} events)"
        )
        meta: dict[str, object] = {
            "postgresql": version,
            "seconds": round(seconds, 1),
            "events": events,
        }
        yield dataclasses.replace(run, picks=picks, pids={}, pg=pg), meta


def commands(cfg: Config) -> list[str]:
    """How the PostgreSQL side of the per-engine phases was set up."""
    url = "postgresql+asyncpg://postgres@127.0.0.1:PORT"
    sizes = (
        f"--customers {cfg.customers} --products {cfg.products} --orders {cfg.orders} "
        f"--random-seed {cfg.random_seed}"
    )
    return [
        "PostgreSQL: tests/servers.py postgres_server() (initdb, trust, loopback, fsync=off, "
        "synchronous_commit=off); databases bench_write, bench_read",
        f"PostgreSQL seed: SHOPFRONT_WRITE_DATABASE_URL={url}/bench_write "
        f"SHOPFRONT_READ_DATABASE_URL={url}/bench_read .venv/bin/shopfront migrate && "
        f".venv/bin/shopfront seed {sizes}",
        "PostgreSQL server and baseline: as on SQLite, with those two URLs "
        f"(baseline: BENCH_READ_DATABASE_URL={url}/bench_read)",
        "PostgreSQL placeOrder baseline: bench/raw_writes_pg.py (psycopg, one connection, "
        "one commit per order) on bench_raw_write (CREATE DATABASE ... TEMPLATE bench_write)",
    ]
