"""The ``cluster`` phase: Shopfront as several processes on one throwaway PostgreSQL.

Two ratios, each side measured in alternating rounds while the other side's processes
stand idle:

- uncached reads (``myOrders(first: 20)``, ``product(sku)``): ``shopfront serve --workers 2``
  against ``--workers 1``, both with ``SHOPFRONT_PROJECTORS=off`` beside one
  ``shopfront project`` process, on the same databases (reads change nothing);
- ``placeOrder``: one API process leading the projectors itself (``inline``) against one
  API process with ``SHOPFRONT_PROJECTORS=off`` plus a ``shopfront project`` process,
  each on its own copy of the seeded databases (so neither side's leader projects the
  other's orders).
"""

from __future__ import annotations

import dataclasses
import os
import random
import resource
import statistics
import subprocess
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench import loadgen, phases, procs, servers
from bench.config import Config
from bench.loadgen import MARKER, Entry, LoadResult, Workload
from tests.servers import PostgresServer, postgres_server

Result = dict[str, Any]
SEEDED = ("bench_write", "bench_read")
# The leader polls the event log for other processes' commits, and a mutation through a
# process that does not lead waits for that poll: as `make run-cluster`, poll often.
POLL_INTERVAL = os.environ.get("SHOPFRONT_PROJECTION_POLL_INTERVAL", "0.1")


def database_env(pg: PostgresServer, write: str, read: str) -> dict[str, str]:
    return {
        **servers.shopfront_env(Path("unused")),
        "SHOPFRONT_WRITE_DATABASE_URL": pg.url(write),
        "SHOPFRONT_READ_DATABASE_URL": pg.url(read),
        "SHOPFRONT_PROJECTION_POLL_INTERVAL": POLL_INTERVAL,
    }


def _shopfront(run: phases.Run, args: list[str], env: Mapping[str, str], log: Path) -> None:
    """Run one ``shopfront`` command to its end; fails loudly (the output is in ``log``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        subprocess.run(
            [str(procs.BIN / "shopfront"), *args],
            cwd=procs.ROOT,
            env={**os.environ, **env},
            stdout=sink,
            stderr=sink,
            check=True,
            timeout=run.cfg.seed_timeout,
        )


def seed(run: phases.Run, pg: PostgresServer) -> float:
    """Create, migrate and seed the two databases through the CLI; seconds it took."""
    cfg = run.cfg
    started = time.monotonic()
    for name in SEEDED:
        pg.create_database(name)
    env = database_env(pg, *SEEDED)
    log = run.logs / "cluster-seed.log"
    _shopfront(run, ["migrate"], env, log)
    sizes = (
        ("--customers", cfg.cluster_customers),
        ("--products", cfg.cluster_products),
        ("--orders", cfg.cluster_orders),
        ("--random-seed", cfg.random_seed),
    )
    _shopfront(run, ["seed", *(str(part) for pair in sizes for part in pair)], env, log)
    return time.monotonic() - started


def _column(pg: PostgresServer, query: str) -> list[str]:
    output = pg.sql(query, SEEDED[1])
    return [line for line in output.splitlines() if line]


def pick(pg: PostgresServer) -> phases.Picks:
    """The same choices as the SQLite phases make, read from the seeded PostgreSQL."""
    return phases.Picks(
        history_customers=_column(
            pg,
            "SELECT customer_id FROM order_history GROUP BY customer_id "
            f"ORDER BY count(*) DESC, customer_id LIMIT {phases.HISTORY_CUSTOMERS}",
        ),
        customers=_column(pg, "SELECT customer_id FROM customer_profiles ORDER BY customer_id"),
        skus=_column(pg, "SELECT sku FROM catalog_products ORDER BY sku"),
        placeable=_column(
            pg,
            "SELECT sku FROM catalog_products ORDER BY stock_available DESC, sku "
            f"LIMIT {phases.PLACEABLE_SKUS}",
        ),
        orders=[
            (order_id, customer_id)
            for order_id, customer_id in (
                line.split("|")
                for line in _column(
                    pg,
                    "SELECT order_id, customer_id FROM order_detail "  # psql -A: a|b
                    f"ORDER BY order_id LIMIT {phases.HISTORY_CUSTOMERS}",
                )
            )
        ],
    )


def postmaster_pid(pg: PostgresServer) -> int:
    return int((pg.directory / "data" / "postmaster.pid").read_text().split()[0])


def cpu_snapshot(groups: Collection[int], postmaster: int) -> tuple[dict[int, float], float]:
    """CPU seconds used so far by each process of ``groups`` (uvicorn's workers are
    children of the process the bench started, in its group), and by PostgreSQL (the
    postmaster and its backends)."""
    ticks = os.sysconf("SC_CLK_TCK")
    side: dict[int, float] = {}
    postgres = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        pid, parent, group = int(stat.parent.name), int(fields[1]), int(fields[2])
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        if group in groups:
            side[pid] = seconds
        elif postmaster in (pid, parent):
            postgres += seconds
    return side, postgres


@dataclasses.dataclass(frozen=True)
class Side:
    """One configuration under test: where to send requests, which process groups serve it."""

    name: str
    base: str
    groups: tuple[int, ...]
    postmaster: int  # of the PostgreSQL it uses


@contextmanager
def start_side(
    run: phases.Run,
    pg: PostgresServer,
    name: str,
    env: Mapping[str, str],
    workers: int,
    projector: bool,
) -> Iterator[Side]:
    """An API (``workers`` processes on one port) and, if ``projector``, a ``shopfront
    project`` process beside it; stopped on leaving."""
    slug = name.replace(" ", "-")
    with ExitStack() as stack:
        started: list[subprocess.Popen[bytes]] = []
        if projector:
            project = procs.start(
                [str(procs.BIN / "shopfront"), "project"],
                env=env,
                log=run.logs / f"cluster-{slug}-project.log",
            )
            stack.callback(procs.stop, project)
            started.append(project)
        port = procs.free_port()
        command = [*servers.shopfront_command(port), "--workers", str(workers)]
        api = procs.start(command, env=env, log=run.logs / f"cluster-{slug}-api.log")
        stack.callback(procs.stop, api)
        started.append(api)
        base = f"http://127.0.0.1:{port}"
        procs.wait_http(base + "/readyz", api)
        if any(p.poll() is not None for p in started):
            raise RuntimeError(f"a process of {name} exited, see {run.logs}")
        yield Side(name, base, tuple(p.pid for p in started), postmaster_pid(pg))


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent not idle so far (all processes, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children: the load generator of a round."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclasses.dataclass(frozen=True)
class Round:
    result: LoadResult
    side_cores: float  # the side's own processes (API workers, projector process)
    busiest_cores: float  # the busiest one of them: are the workers evenly loaded?
    postgres_cores: float
    loadgen_cores: float
    machine_cores: float  # everything: both sides, load generator, PostgreSQL, others


def _load(run: phases.Run, side: Side, workload: Workload, seconds: float) -> Round:
    """One round against ``side``, with the cores each party kept busy meanwhile."""
    side_before, pg_before = cpu_snapshot(side.groups, side.postmaster)
    others_before = (children_cpu_seconds(), busy_cpu_seconds())
    result = loadgen.run(
        side.base,
        workload,
        connections=run.cfg.connections,
        duration=seconds,
        workdir=run.work / "load",
        tool=run.cfg.loadgen,
    )
    side_after, pg_after = cpu_snapshot(side.groups, side.postmaster)
    others_after = (children_cpu_seconds(), busy_cpu_seconds())
    per_process = [t - side_before.get(pid, 0.0) for pid, t in side_after.items()]
    loadgen_cores, machine_cores = (
        (b - a) / result.seconds for a, b in zip(others_before, others_after, strict=True)
    )
    return Round(
        result,
        side_cores=sum(per_process) / result.seconds,
        busiest_cores=max(per_process, default=0.0) / result.seconds,
        postgres_cores=(pg_after - pg_before) / result.seconds,
        loadgen_cores=loadgen_cores,
        machine_cores=machine_cores,
    )


def _summary(rounds: list[Round]) -> Result:
    out = phases._summary([r.result for r in rounds], [r.side_cores for r in rounds])
    out["busiest_process_cpu_cores"] = statistics.median(r.busiest_cores for r in rounds)
    out["postgres_cpu_cores"] = statistics.median(r.postgres_cores for r in rounds)
    out["loadgen_cpu_cores"] = statistics.median(r.loadgen_cores for r in rounds)
    out["machine_busy_cores"] = statistics.median(r.machine_cores for r in rounds)
    return out


def alternate(
    run: phases.Run, ours: Side, baseline: Side, workload: Workload
) -> tuple[Result, Result]:
    """Warm both sides, then ``--rounds`` rounds each, alternating which goes first."""
    for side in (ours, baseline):
        _load(run, side, workload, run.cfg.warmup)
    rounds: dict[str, list[Round]] = {ours.name: [], baseline.name: []}
    for r in range(run.cfg.rounds):
        for side in (ours, baseline) if r % 2 == 0 else (baseline, ours):
            done = _load(run, side, workload, run.cfg.duration)
            rounds[side.name].append(done)
            phases.log(
                f"  {workload.name} {side.name}: {done.result.rps:.0f} req/s "
                f"(p99 {done.result.p99_ms:.1f} ms, {done.result.errors} errors; CPU cores: "
                f"side {done.side_cores:.2f} (busiest process {done.busiest_cores:.2f}), "
                f"PostgreSQL {done.postgres_cores:.2f}, load generator "
                f"{done.loadgen_cores:.2f}, machine {done.machine_cores:.2f}; "
                f"load {procs.load_average()})"
            )
    return _summary(rounds[ours.name]), _summary(rounds[baseline.name])


def measure_reads(run: phases.Run, pg: PostgresServer) -> Result:
    """Uncached reads through 2 API processes against 1, one projector process beside."""
    env = {
        **database_env(pg, *SEEDED),
        "SHOPFRONT_PROJECTORS": "off",
        "SHOPFRONT_RESPONSE_CACHE_MB": "0",
    }
    out: Result = {}
    with ExitStack() as stack:
        # The projector process leads; the API processes only follow.
        project = procs.start(
            [str(procs.BIN / "shopfront"), "project"],
            env=database_env(pg, *SEEDED),
            log=run.logs / "cluster-reads-project.log",
        )
        stack.callback(procs.stop, project)
        two = stack.enter_context(start_side(run, pg, "2 processes", env, 2, projector=False))
        one = stack.enter_context(start_side(run, pg, "1 process", env, 1, projector=False))
        for workload, _, _ in phases._read_workloads(run):
            mine, baseline = alternate(run, two, one, workload)
            out[workload.name] = {"ours": mine, "baseline": baseline}
    return out


def _orders(pg: PostgresServer, database: str) -> int:
    return int(pg.sql("SELECT count(*) FROM orders", database))


def measure_writes(run: phases.Run, pg: PostgresServer) -> Result:
    """placeOrder with the projectors in their own process against inline, each side on
    its own copy of the seeded databases."""
    for copy in ("split", "inline"):
        for name in SEEDED:
            pg.create_database(name.replace("bench", copy), template=name)
    plan = phases._order_plan(run, 2000, random.Random(7))
    workload = Workload(
        "place_order",
        "/graphql",
        tuple(
            Entry(f"Bearer {run.token(c)}", phases._place_body(lines, MARKER)) for c, lines in plan
        ),
    )
    with ExitStack() as stack:
        split_env = {**database_env(pg, "split_write", "split_read"), "SHOPFRONT_PROJECTORS": "off"}
        split = stack.enter_context(
            start_side(run, pg, "projector process", split_env, 1, projector=True)
        )
        inline_env = {**database_env(pg, "inline_write", "inline_read")}
        inline = stack.enter_context(start_side(run, pg, "inline", inline_env, 1, projector=False))
        for side in (split, inline):
            phases._restock(side.base, run)
        before = {db: _orders(pg, db) for db in ("split_write", "inline_write")}
        mine, baseline = alternate(run, split, inline, workload)
        mine["orders_committed"] = _orders(pg, "split_write") - before["split_write"]
        baseline["orders_committed"] = _orders(pg, "inline_write") - before["inline_write"]
    return {"ours": mine, "baseline": baseline}


def phase_cluster(run: phases.Run) -> Result:
    with postgres_server() as pg:
        seconds = seed(run, pg)
        picks = pick(pg)
        phases.log(
            f"cluster: PostgreSQL seeded in {seconds:.0f} s ({len(picks.customers)} customers, "
            f"{len(picks.skus)} products)"
        )
        on_pg = dataclasses.replace(run, picks=picks, pids={})
        version = pg.sql("SHOW server_version")
        reads = measure_reads(on_pg, pg)
        writes = measure_writes(on_pg, pg)
    return {
        "postgresql": version,
        "seed_seconds": round(seconds, 1),
        "sizes": {
            "customers": run.cfg.cluster_customers,
            "products": run.cfg.cluster_products,
            "orders": run.cfg.cluster_orders,
        },
        "reads": reads,
        "writes": writes,
    }


def commands(cfg: Config) -> list[str]:
    """How the cluster phase's processes were started (ports are picked at run time)."""
    shared = " ".join(
        f"{k}={v}"
        for k, v in servers.shopfront_env(Path("unused")).items()
        if "DATABASE_URL" not in k
    )
    url = "postgresql+asyncpg://postgres@127.0.0.1:PORT"
    sizes = (
        f"--customers {cfg.cluster_customers} --products {cfg.cluster_products} "
        f"--orders {cfg.cluster_orders} --random-seed {cfg.random_seed}"
    )
    return [
        "cluster PostgreSQL: tests/servers.py postgres_server() (initdb, trust, fsync off, "
        "loopback); databases bench_write, bench_read",
        f"cluster seed: SHOPFRONT_WRITE_DATABASE_URL={url}/bench_write "
        f"SHOPFRONT_READ_DATABASE_URL={url}/bench_read .venv/bin/shopfront migrate && "
        f".venv/bin/shopfront seed {sizes}",
        f"cluster processes: {shared} SHOPFRONT_PROJECTION_POLL_INTERVAL={POLL_INTERVAL}",
        "cluster reads: SHOPFRONT_PROJECTORS=off SHOPFRONT_RESPONSE_CACHE_MB=0 .venv/bin/shopfront "
        "serve --host 127.0.0.1 --port PORT --workers 2 (vs --workers 1), both beside one "
        ".venv/bin/shopfront project",
        "cluster placeOrder: SHOPFRONT_PROJECTORS=off .venv/bin/shopfront serve --workers 1 + "
        ".venv/bin/shopfront project (databases split_*) vs .venv/bin/shopfront serve "
        "--workers 1 with SHOPFRONT_PROJECTORS=inline (databases inline_*), both copies "
        "(CREATE DATABASE ... TEMPLATE) of the seeded pair",
    ]
