"""``python -m bench``: seed (or reuse) the data set, run the phases, print the table."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import signal
import time
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import Any

from bench import (
    bus,
    cluster,
    config,
    dataset,
    engines,
    loadgen,
    on_postgresql,
    phases,
    procs,
    report,
)


class PhaseTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise PhaseTimeout("phase time limit reached")


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def measure(run: phases.Run, names: tuple[str, ...], results: dict[str, Any]) -> None:
    """Run the phases ``names`` on ``run``'s engine, each under the time limit; a phase
    that fails records its error and the others go on."""
    for name in names:
        phases.log(f"phase {name} on {run.engine} (load average {procs.load_average()})")
        began = time.monotonic()
        try:
            with time_limit(run.cfg.phase_timeout):
                results[name] = {**phases.PHASES, "bus": bus.phase_bus}[name](run)
        except Exception as error:
            traceback.print_exc()
            results[name] = {"error": f"{type(error).__name__}: {error}"}
        finally:
            procs.stop_all()
        results[name]["phase_seconds"] = round(time.monotonic() - began, 1)
        results[name]["load_average_after"] = procs.load_average()


def main(argv: list[str] | None = None) -> None:
    cfg = config.parse(argv)
    signal.signal(signal.SIGTERM, _on_term)
    limit = procs.raise_nofile(cfg.idle_subscriptions * 2 + 4096)
    started = time.time()
    machine = report.machine(dataset.CACHE.parent)
    phases.log("Shopfront bench: " + report.command())
    if cfg.loadgen == "auto" and loadgen.wrk_path() is None:
        phases.log("wrk is not installed (apt-get install wrk): using the Python load generator")
    if limit < cfg.idle_subscriptions + 1024:
        phases.log(f"open-files limit is {limit}: fewer idle subscriptions may open")
    sizes = dataset.Sizes(cfg.customers, cfg.products, cfg.orders, cfg.random_seed)
    work = dataset.CACHE / "run"
    shutil.rmtree(work, ignore_errors=True)
    plan = engines.per_engine(cfg.phases, cfg.db)
    once = engines.once(cfg.phases)
    for name, engine in engines.left_out(cfg.phases, cfg.db):
        phases.log(f"phase {name} is not measured on {engines.LABELS[engine]}")
    # The cluster and bus phases seed PostgreSQL themselves: alone, they need no SQLite
    # data set (the per-engine phases on PostgreSQL load the SQLite one's rows).
    on_sqlite = any(name not in ("cluster", "bus") for name in cfg.phases)
    meta: dict[str, Any] | None = None
    if on_sqlite:
        phases.log(f"data set {sizes.key}: seeding (or reusing) under {dataset.CACHE / 'data'}")
        source, reused, meta = dataset.ensure_seeded(sizes, cfg.seed_timeout)
        if reused:
            phases.log(f"reused the seeded databases in {source} (made in {meta['seconds']} s)")
        else:
            phases.log(f"seeded {source} in {meta['seconds']} s")
        dataset.working_copy(source, work / "db")
        picks = phases.pick(work / "db")
    else:
        source, reused, picks = work / "db", False, phases.Picks([], [], [], [], [])
    run = phases.Run(cfg, source, work, picks)
    results: dict[str, Any] = {}
    results_pg: dict[str, Any] = {}
    pg_meta: dict[str, object] = {}
    try:
        measure(run, plan.get("sqlite", ()), results)
        if plan.get("postgresql"):
            try:
                with on_postgresql.prepared(run) as (pg_run, pg_meta):
                    measure(pg_run, plan["postgresql"], results_pg)
            except Exception as error:  # no server, seeding failed: every row says so
                traceback.print_exc()
                failed = {"error": f"PostgreSQL: {type(error).__name__}: {error}"}
                for name in plan["postgresql"]:
                    results_pg.setdefault(name, dict(failed))
        measure(run, once, results)
    finally:
        procs.stop_all()
    machine["load average at end"] = procs.load_average()
    counts = (cfg.subscribers, cfg.idle_subscriptions, cfg.connections)
    rows = report.rows(results, *counts)
    rows += bus.rows(results.get("bus"), cfg.subscribers)
    print()
    if plan.get("postgresql"):
        per_engine = {
            "sqlite": report.rows({k: v for k, v in results.items() if k not in once}, *counts),
            "postgresql": report.rows(results_pg, *counts),
        }
        shown = {engine: per_engine[engine] for engine in plan}
        print(engines.table(engines.pair(shown), list(shown)))
        once_rows = report.rows({k: v for k, v in results.items() if k in once}, *counts)
        once_rows += bus.rows(results.get("bus"), cfg.subscribers)
        if once_rows:
            print()
            print(report.table(once_rows))
    else:
        print(report.table(rows))
    print()
    if meta is not None:
        print(
            f"data set: {cfg.customers:,} customers, {cfg.products:,} products, "
            f"{cfg.orders:,} orders, {meta['events']:,} events "
            f"({'reused' if reused else 'seeded'}: {source})"
        )
    if pg_meta:
        print(
            f"PostgreSQL data set: the SQLite data set's rows, {pg_meta['events']:,} events "
            f"(loaded in {pg_meta['seconds']} s; PostgreSQL {pg_meta['postgresql']})"
        )
    if "cluster" in cfg.phases:
        print(
            f"cluster data set (PostgreSQL): {cfg.cluster_customers:,} customers, "
            f"{cfg.cluster_products:,} products, {cfg.cluster_orders:,} orders"
        )
    for key, value in machine.items():
        print(f"{key}: {value}")
    print(f"command: {report.command()}")
    if on_sqlite:
        for line in report.commands(sizes, cfg.connections, cfg.duration):
            print(f"  {line}")
    if plan.get("postgresql"):
        for line in on_postgresql.commands(cfg):
            print(f"  {line}")
    if "cluster" in cfg.phases:
        for line in cluster.commands(cfg):
            print(f"  {line}")
    if "bus" in cfg.phases:
        for line in bus.commands():
            print(f"  {line}")
    print(f"took: {time.time() - started:.0f} s")
    out = cfg.out or dataset.CACHE / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "config": {**dataclasses.asdict(cfg), "out": str(cfg.out)},
                "dataset": {**(meta or {}), "folder": str(source), "reused": reused},
                "machine": machine,
                "command": report.command(),
                "results": results,
                "results_postgresql": results_pg,
                "dataset_postgresql": pg_meta,
                "table": [dataclasses.asdict(r) for r in rows],
            },
            indent=2,
            default=str,
        )
    )
    print(f"results: {out}")
