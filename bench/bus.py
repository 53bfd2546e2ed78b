"""The ``bus`` phase: live subscriptions across API processes over the Redis change bus
(issue 16's bench rows), on a throwaway PostgreSQL and a throwaway Redis.

Three sides, one after the other, each on its own copy of the seeded databases, each
with ``--subscribers`` live subscriptions (graphql-transport-ws, ``myOrders``):

- ``1 process`` (the baseline): one ``shopfront serve`` leading the projectors inline,
  every subscriber on it, no Redis;
- ``2 processes, projectors inline in one``: two ``shopfront serve`` sharing Redis, one
  leading the projectors (``SHOPFRONT_PROJECTORS=inline``), the other only following
  (``off``);
- ``2 processes + shopfront project``: both API processes ``off``, a ``shopfront project``
  process leading, all three sharing Redis.

On the two-process sides the subscribers are split evenly over the API processes and the
mutations alternate between them, so a change reaches half of its subscribers through the
bus. Each side measures, as the latency phase does: mutation -> subscriber delivery
(``placeOrder`` at ``--latency-rate``, each order watched by its customer's
subscriptions) and the broadcast (``--broadcast-events`` orders of one customer whose
``myOrders`` all subscribers watch, at ``--broadcast-rate``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from bench import cluster, phases, procs, profile, servers
from bench.report import Row
from tests.servers import PostgresServer, RedisServer, postgres_server, redis_server

Result = dict[str, Any]
Plan = list[tuple[str, list[tuple[str, int]]]]  # (customer, order lines) per mutation
# As `make run-cluster`: the followers poll at the default interval, the bus wakes them.
POLL_INTERVAL = "0.5"
TARGET_MS = 50.0


@dataclasses.dataclass(frozen=True)
class SideSpec:
    name: str
    apis: tuple[str, ...]  # SHOPFRONT_PROJECTORS of each API process
    project: bool  # a `shopfront project` process beside them
    redis: bool


SIDES = (
    SideSpec("1 process", ("inline",), project=False, redis=False),
    SideSpec("2 processes, projectors inline in one", ("inline", "off"), False, True),
    SideSpec("2 processes + shopfront project", ("off", "off"), project=True, redis=True),
)
BASELINE = SIDES[0].name


def latency_plans(
    customers: Sequence[str],
    placeable: Sequence[str],
    subscribers: int,
    count: int,
    broadcast_events: int,
    rng: random.Random,
) -> tuple[list[str], Plan, list[str], Plan]:
    """(subscriptions, mutations) of the delivery measurement, then of the broadcast.
    Delivery: ``subscribers`` subscriptions over the customers in turn, ``count`` orders
    each by one of them. Broadcast: every subscription is the first customer's, and so is
    every order."""

    def lines() -> list[tuple[str, int]]:
        chosen = rng.sample(list(placeable), k=min(len(placeable), rng.randint(1, 3)))
        return [(sku, 1) for sku in chosen]

    own = [customers[i % len(customers)] for i in range(subscribers)]
    plan = [(rng.choice(own), lines()) for _ in range(count)]
    fan = [customers[0]] * subscribers
    broadcast = [(customers[0], lines()) for _ in range(broadcast_events)]
    return own, plan, fan, broadcast


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` dealt in turn over ``parts`` lists (sizes differ by one at most)."""
    return [list(items[i::parts]) for i in range(parts)]


def expected_deliveries(customers: Sequence[str], plan: Plan, placed: Sequence[bool]) -> int:
    """How many deliveries the placed orders owe: one per subscription of its customer."""
    per_customer = Counter(customers)
    return sum(per_customer[c] for (c, _), ok in zip(plan, placed, strict=True) if ok)


def _place_split(run: phases.Run, bases: Sequence[str], plan: Plan, rate: float) -> list[Result]:
    """``plan`` sent at ``rate`` in all, the mutations alternating over ``bases``; the
    answers in plan order."""
    orders = [(run.token(c), lines) for c, lines in plan]
    shares = split(orders, len(bases))

    async def all_of() -> list[list[Result]]:
        return list(
            await asyncio.gather(
                *(
                    phases._place_orders(base, share, rate / len(bases))
                    for base, share in zip(bases, shares, strict=True)
                )
            )
        )

    answered = asyncio.run(all_of())
    out: list[Result] = [{}] * len(plan)
    for index, answers in enumerate(answered):
        out[index :: len(bases)] = answers
    return out


def measure_latency(
    run: phases.Run,
    bases: Sequence[str],
    name: str,
    customers: Sequence[str],
    plan: Plan,
    rate: float,
    profiled: Mapping[str, int] | None = None,
) -> Result:
    """One subscription per entry of ``customers``, dealt evenly over the API processes
    at ``bases``; ``plan`` sent at ``rate`` (alternating over them); each delivery timed
    from the change's commit (its ``occurredAt``) to its arrival. ``profiled``: processes
    (by name) sampled with py-spy while the plan is sent (--profile; counted run)."""
    tokens = {c: run.token(c) for c in set(customers)}
    opened: list[phases.Subscribers] = []
    try:
        for index, (base, share) in enumerate(
            zip(bases, split(customers, len(bases)), strict=True)
        ):
            ws_url = base.replace("http://", "ws://") + "/graphql"
            subscribers = phases.open_subscribers(
                run, ws_url, [tokens[c] for c in share], record=True, name=f"{name}-{index}",
                timeout=300,
            )  # fmt: skip
            opened.append(subscribers)
            live = phases._wait_subscriptions(base, subscribers.opened, 60)
            phases.log(
                f"{name}: {subscribers.opened} subscribers open on {base} "
                f"({subscribers.failed} failed), {live} live there"
            )
        time.sleep(1.0)
        seconds = len(plan) / rate + 2.0
        samplers = _start_profiles(run, name, profiled or {}, seconds)
        sent = _place_split(run, bases, plan, rate)
        time.sleep(2.0)  # let the last deliveries arrive
        profiles = _profiles(samplers, seconds)
    finally:
        messages = [m for subscribers in opened for m in phases.close_subscribers(subscribers)]
    placed = [r.get("order") is not None for r in sent]
    result = phases._deliveries(messages, sent, expected_deliveries(customers, plan, placed))
    result.update(
        subscribers=sum(s.opened for s in opened),
        failed_to_open=sum(s.failed for s in opened),
        rate=rate,
        processes=len(bases),
        profiles=profiles,
    )
    phases.log(
        f"{name}: {result['delivered']}/{result['expected']} delivered, p50 "
        f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms (load {procs.load_average()})"
    )
    return result


Samplers = dict[str, tuple[Any, Any]]


def _start_profiles(
    run: phases.Run, name: str, pids: Mapping[str, int], seconds: float
) -> Samplers:
    out: Samplers = {}
    for who, pid in pids.items():
        folded = run.work / "profiles" / f"{name}-{who}.txt"
        sampler = profile.start(pid, seconds, folded)
        if sampler is None:
            phases.log("  --profile: py-spy is not installed (.venv/bin/pip install py-spy)")
            return out
        out[who] = (sampler, folded)
    return out


def _profiles(samplers: Samplers, seconds: float) -> Result:
    out: Result = {}
    for who, (sampler, folded) in samplers.items():
        try:
            sampler.wait(seconds + 60)
        finally:
            procs.stop(sampler)
        summary: Result = profile.summarize(folded) if folded.exists() else {"samples": 0}
        summary["folded_stacks"] = str(folded)
        phases.log(f"  profile of {who}: {profile.describe(summary)}")
        out[who] = summary
    return out


@contextmanager
def start_side(
    run: phases.Run, pg: PostgresServer, redis: RedisServer, spec: SideSpec
) -> Iterator[tuple[list[str], dict[str, int]]]:
    """The side's processes on its own copy of the seeded databases: the API base URLs,
    and every process's pid by name."""
    slug = spec.name.replace(" ", "-").replace(",", "").replace("+", "and")
    write, read = (name.replace("bench", slug.replace("-", "_")) for name in cluster.SEEDED)
    for copy, template in ((write, cluster.SEEDED[0]), (read, cluster.SEEDED[1])):
        pg.create_database(copy, template=template)
    env = {
        **cluster.database_env(pg, write, read),
        "SHOPFRONT_PROJECTION_POLL_INTERVAL": POLL_INTERVAL,
    }
    if spec.redis:
        env["SHOPFRONT_REDIS_URL"] = redis.url
    with ExitStack() as stack:
        if spec.project:
            project = procs.start(
                [str(procs.BIN / "shopfront"), "project"],
                env=env,
                log=run.logs / f"bus-{slug}-project.log",
            )
            stack.callback(procs.stop, project)
        pids = {"project": project.pid} if spec.project else {}
        bases = []
        for index, role in enumerate(spec.apis):
            port = procs.free_port()
            api = procs.start(
                servers.shopfront_command(port),
                env={**env, "SHOPFRONT_PROJECTORS": role},
                log=run.logs / f"bus-{slug}-api{index}.log",
            )
            stack.callback(procs.stop, api)
            base = f"http://127.0.0.1:{port}"
            procs.wait_http(base + "/readyz", api)
            bases.append(base)
            pids[f"api{index} ({role})"] = api.pid
        yield bases, pids


def measure_side(run: phases.Run, pg: PostgresServer, redis: RedisServer, spec: SideSpec) -> Result:
    cfg = run.cfg
    count = max(1, round(cfg.latency_rate * cfg.latency_seconds))
    own, plan, fan, broadcast = latency_plans(
        run.picks.customers, run.picks.placeable, cfg.subscribers, count, cfg.broadcast_events,
        random.Random(11),
    )  # fmt: skip
    phases.log(f"bus: {spec.name} (load {procs.load_average()})")
    with start_side(run, pg, redis, spec) as (bases, pids):
        profiled = pids if cfg.profile else None
        phases._restock(bases[0], run)
        slug = "bus-" + str(SIDES.index(spec))
        each = measure_latency(run, bases, slug + "-each", own, plan, cfg.latency_rate, profiled)
        fanned = measure_latency(
            run, bases, slug + "-broadcast", fan, broadcast, cfg.broadcast_rate, profiled
        )
    return {"one_each": each, "broadcast": fanned, "load_average": procs.load_average()}


def phase_bus(run: phases.Run) -> Result:
    # One subscription per customer, as the latency phase on its larger data set.
    cfg = dataclasses.replace(
        run.cfg, cluster_customers=max(run.cfg.cluster_customers, run.cfg.subscribers)
    )
    with postgres_server() as pg, redis_server() as redis:
        seconds = cluster.seed(dataclasses.replace(run, cfg=cfg), pg)
        picks = cluster.pick(pg)
        phases.log(f"bus: PostgreSQL seeded in {seconds:.0f} s ({len(picks.customers)} customers)")
        on_pg = dataclasses.replace(run, cfg=cfg, picks=picks, pids={})
        sides = {spec.name: measure_side(on_pg, pg, redis, spec) for spec in SIDES}
        version = pg.sql("SHOW server_version")
    return {"postgresql": version, "seed_seconds": round(seconds, 1), "sides": sides}


FIGURES = (
    ("one_each", "mutation -> subscriber delivery, {n:,} subscribers"),
    ("broadcast", "same, each event broadcast to all {n:,} subscribers"),
)


def _figure(measured: Mapping[str, Any]) -> str:
    return (
        f"p50 {measured['p50_ms']:.1f} ms, p99 {measured['p99_ms']:.1f} ms "
        f"({measured['delivered']:,}/{measured['expected']:,} delivered)"
    )


def rows(result: Mapping[str, Any] | None, subscribers: int) -> list[Row]:
    """Per figure and multi-process side: its p50/p99 against p99 <= 50 ms, with the one
    process's figure of the same run next to it."""
    if result is None:
        return []
    if "error" in result:
        return [Row("Redis change bus, 2 API processes", "failed: " + str(result["error"]),
                    "-", "-", f"p99 <= {TARGET_MS:g} ms", False)]  # fmt: skip
    sides = result["sides"]
    out = []
    for key, figure in FIGURES:
        base = sides[BASELINE][key]
        for name, side in sides.items():
            if name == BASELINE:
                continue
            mine = side[key]
            ratio = mine["p99_ms"] / base["p99_ms"] if base["p99_ms"] else math.nan
            met = mine["delivered"] == mine["expected"] and mine["p99_ms"] <= TARGET_MS
            out.append(
                Row(
                    f"{figure.format(n=subscribers)} over {name}",
                    _figure(mine),
                    f"{_figure(base)} ({BASELINE})",
                    f"{ratio:.2f}",
                    f"p99 <= {TARGET_MS:g} ms",
                    met,
                )
            )
    return out


def commands() -> list[str]:
    """How the bus phase's processes were started (ports are picked at run time)."""
    return [
        "bus PostgreSQL and Redis: tests/servers.py postgres_server(), redis_server(); "
        "seeded as the cluster phase (--cluster-* sizes, at least --subscribers customers), "
        "each side on its own CREATE DATABASE ... TEMPLATE copy",
        f"bus processes: the cluster processes' settings, SHOPFRONT_PROJECTION_POLL_INTERVAL="
        f"{POLL_INTERVAL}, SHOPFRONT_REDIS_URL=redis://127.0.0.1:PORT/0 on the 2-process sides",
        "bus 1 process: .venv/bin/shopfront serve (SHOPFRONT_PROJECTORS=inline), no Redis",
        "bus 2 processes, projectors inline in one: .venv/bin/shopfront serve twice, "
        "SHOPFRONT_PROJECTORS=inline and =off",
        "bus 2 processes + shopfront project: .venv/bin/shopfront serve twice with "
        "SHOPFRONT_PROJECTORS=off, and .venv/bin/shopfront project",
    ]
