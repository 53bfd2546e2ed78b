"""The measurements. Each phase starts the processes it needs, measures, stops them, and
returns a JSON-able dict; the report turns those into the table."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import math
import random
import select
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from api.auth import make_token
from bench import dataset, history, loadgen, procs, profile, raw_writes, raw_writes_pg, servers
from bench.config import Config
from bench.loadgen import MARKER, Entry, LoadResult, Workload
from bench.screens import (
    MY_ORDERS,
    MY_ORDERS_FLAT,
    MY_ORDERS_SUBSCRIPTION,
    ORDER,
    PAGE,
    PLACE_ORDER,
    PRODUCT,
    PRODUCTS,
    body,
    global_id,
)
from projections.read_tables import metadata as read_metadata
from projections.registry import PROJECTORS
from tests.servers import PostgresServer

Result = dict[str, Any]
TOKEN_TTL = dt.timedelta(hours=12)
HISTORY_CUSTOMERS = 256
PLACEABLE_SKUS = 200
RESTOCK = 100_000
SUBSCRIBERS_PER_PROCESS = 2_500
# The PostgreSQL databases of a run on that engine (bench/on_postgresql.py seeds them).
PG_WRITE, PG_READ, PG_RAW_WRITE = "bench_write", "bench_read", "bench_raw_write"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclasses.dataclass(frozen=True)
class Picks:
    """Who and what the requests are about, read from the seeded read model."""

    history_customers: list[str]  # the customers with the most orders: full pages
    customers: list[str]
    skus: list[str]
    placeable: list[str]  # the SKUs with the most stock left
    orders: list[tuple[str, str]]  # (order id, customer id) for the order detail screen


def pick(folder: Path) -> Picks:
    conn = sqlite3.connect(folder / "read.db")
    try:
        history_customers = [
            row[0]
            for row in conn.execute(
                "SELECT customer_id FROM order_history GROUP BY customer_id "
                "ORDER BY count(*) DESC, customer_id LIMIT ?",
                (HISTORY_CUSTOMERS,),
            )
        ]
        customers = [
            row[0]
            for row in conn.execute(
                "SELECT customer_id FROM customer_profiles ORDER BY customer_id"
            )
        ]
        skus = [row[0] for row in conn.execute("SELECT sku FROM catalog_products ORDER BY sku")]
        placeable = [
            row[0]
            for row in conn.execute(
                "SELECT sku FROM catalog_products ORDER BY stock_available DESC, sku LIMIT ?",
                (PLACEABLE_SKUS,),
            )
        ]
        orders = conn.execute(
            "SELECT order_id, customer_id FROM order_detail ORDER BY order_id LIMIT ?",
            (HISTORY_CUSTOMERS,),
        ).fetchall()
    finally:
        conn.close()
    return Picks(history_customers, customers, skus, placeable, orders)


@dataclasses.dataclass
class Run:
    cfg: Config
    source: Path  # the cached seeded databases (never written)
    work: Path  # var/bench/run: working copies, logs, scripts
    picks: Picks
    pids: dict[str, int] = dataclasses.field(default_factory=dict)  # base URL -> server pid
    pg: PostgresServer | None = None  # set: the phases run on its databases, not SQLite's

    @property
    def engine(self) -> str:
        return "sqlite" if self.pg is None else "postgresql"

    def db_env(self) -> dict[str, str]:
        """Shopfront's database settings on this run's engine."""
        if self.pg is None:
            return dataset.db_env(self.folder)
        return {
            "SHOPFRONT_WRITE_DATABASE_URL": self.pg.url(PG_WRITE),
            "SHOPFRONT_READ_DATABASE_URL": self.pg.url(PG_READ),
        }

    def count_orders(self) -> int:
        if self.pg is None:
            return _count_orders(self.folder / "write.db")
        return raw_writes_pg.count_orders(self.pg.url(PG_WRITE))

    @property
    def folder(self) -> Path:
        return self.work / "db"

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def token(self, customer_id: str) -> str:
        return make_token(servers.JWT_SECRET, customer_id, "customer", TOKEN_TTL)

    def staff_token(self) -> str:
        return make_token(servers.JWT_SECRET, "staff-bench", "staff", TOKEN_TTL)


def graphql(base: str, query: str, variables: dict[str, Any], token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.post(
        base + "/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()


# -- order history screen: read table vs joins on the write model ------------------------


def phase_history(run: Run) -> Result:
    customers = run.picks.history_customers
    differ, compared, per_page = history.compare(run.folder, customers, PAGE)
    log(f"history: {compared} pages compared, {differ} differ, {per_page:.1f} orders per page")
    figures = history.measure(run.folder, customers, PAGE, run.cfg.history_seconds, run.cfg.rounds)
    log(
        "history: read table {read_table_us_per_page:.0f} us/page "
        "(SQL alone {read_table_sql_us_per_page:.0f}), joins {joins_us_per_page:.0f} us/page "
        "(SQL alone {joins_sql_us_per_page:.0f})".format(**figures)
    )
    orders = _count_orders(run.folder / "write.db")
    return {
        **figures,
        "pages_differ": differ,
        "pages_compared": compared,
        "orders_per_page": per_page,
        "orders_in_write_model": orders,
    }


# -- HTTP throughput: GraphQL vs plain Starlette --------------------------------------


def _summary(results: Sequence[LoadResult], cpu: Sequence[float]) -> Result:
    return {
        "server_cpu_cores": statistics.median(cpu) if cpu else None,
        "rps": statistics.median(r.rps for r in results),
        "rounds_rps": [round(r.rps, 1) for r in results],
        "requests": sum(r.requests for r in results),
        "errors": sum(r.errors for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
        "tool": results[0].tool,
    }


def _load(
    run: Run, base: str, workload: Workload, seconds: float, cpu: list[float] | None = None
) -> LoadResult:
    """Drive ``base`` with ``workload``; append to ``cpu`` how many cores the server
    process kept busy meanwhile (its pid is the one serving ``base``)."""
    pid = run.pids.get(base)
    used = procs.cpu_seconds(pid) if pid else 0.0
    result = loadgen.run(
        base,
        workload,
        connections=run.cfg.connections,
        duration=seconds,
        workdir=run.work / "load",
        tool=run.cfg.loadgen,
    )
    if pid and cpu is not None:
        cpu.append((procs.cpu_seconds(pid) - used) / result.seconds)
    return result


def measure_pair(
    run: Run, ours: tuple[str, Workload], baseline: tuple[str, Workload]
) -> tuple[Result, Result]:
    measured = measure_sides(run, {"ours": ours, "baseline": baseline})
    return measured["ours"], measured["baseline"]


def measure_sides(run: Run, sides: dict[str, tuple[str, Workload]]) -> dict[str, Result]:
    """Each side warmed up, then measured in rounds, the order of the sides turning each
    round (so that no side always runs first or last); ``ours`` is profiled if asked."""
    for base, workload in sides.values():
        _load(run, base, workload, run.cfg.warmup)
    names = list(sides)
    results: dict[str, list[LoadResult]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(run.cfg.rounds):
        for side in names[r % len(names) :] + names[: r % len(names)]:
            base, workload = sides[side]
            result = _load(run, base, workload, run.cfg.duration, cpu[side])
            results[side].append(result)
            log(
                f"  {workload.name} {side}: {result.rps:.0f} req/s (p99 {result.p99_ms:.1f} ms, "
                f"server CPU {cpu[side][-1]:.2f} cores, load {procs.load_average()})"
            )
    out = {name: _summary(results[name], cpu[name]) for name in names}
    out["ours"]["profile"] = maybe_profile(run, *sides["ours"])
    return out


def maybe_profile(run: Run, base: str, workload: Workload) -> Result | None:
    """With --profile: one more round of ``workload``, sampled with py-spy (not counted)."""
    pid = run.pids.get(base)
    if not run.cfg.profile or pid is None:
        return None
    folded = run.work / "profiles" / f"{workload.name}.txt"
    sampler = profile.start(pid, run.cfg.duration, folded)
    if sampler is None:
        log("  --profile: py-spy is not installed (.venv/bin/pip install py-spy)")
        return None
    try:
        _load(run, base, workload, run.cfg.duration)
        sampler.wait(run.cfg.duration + 60)
    finally:
        procs.stop(sampler)
    summary: Result = profile.summarize(folded) if folded.exists() else {"samples": 0}
    summary["folded_stacks"] = str(folded)
    log(f"  profile of {workload.name}: {profile.describe(summary)}")
    return summary


def _same_answers(base: str, plain: str, workload: Workload, path: str) -> bool:
    for entry in workload.entries[:10]:
        headers = {"Content-Type": "application/json"}
        if entry.authorization:
            headers["Authorization"] = entry.authorization
        ours = httpx.post(base + "/graphql", content=entry.body, headers=headers, timeout=30)
        theirs = httpx.post(plain + path, content=entry.body, headers=headers, timeout=30)
        if ours.json().get("data") != theirs.json().get("data"):
            return False
    return True


# The read screens: (name, GraphQL document, path of its baseline routes).
READS = (
    ("my_orders", MY_ORDERS, "my-orders"),
    ("my_orders_flat", MY_ORDERS_FLAT, "my-orders-flat"),
    ("product", PRODUCT, "product"),
    ("products", PRODUCTS, "products"),
    ("order", ORDER, "order"),
)
# Measured with the response cache on too (after the uncached rows).
CACHED_READS = ("my_orders", "product")
# Measured uncached on the Strawberry executor too (compiled reads off): before/after.
STRAWBERRY_READS = ("my_orders", "my_orders_flat")
# (name suffix, server settings, the screens measured)
READ_VARIANTS: tuple[tuple[str, dict[str, str], tuple[str, ...]], ...] = (
    ("_uncached", {"SHOPFRONT_RESPONSE_CACHE_MB": "0"}, tuple(name for name, _, _ in READS)),
    (
        "_strawberry",
        {"SHOPFRONT_RESPONSE_CACHE_MB": "0", "SHOPFRONT_COMPILED_READS": "false"},
        STRAWBERRY_READS,
    ),
    ("", {}, CACHED_READS),
)


def _read_entries(run: Run, name: str, query: str) -> tuple[list[Entry], list[Entry]]:
    """The requests of a screen: as a signed-in client sends them (to Shopfront and the
    plain route), and for the bare route (no token: the customer is a variable)."""
    picks = run.picks
    signed: list[Entry] = []
    bare: list[Entry] = []
    if name.startswith("my_orders"):
        for c in picks.history_customers:
            signed.append(Entry(f"Bearer {run.token(c)}", body(query, {"first": PAGE})))
            bare.append(Entry(None, body(query, {"first": PAGE, "customer": c})))
    elif name == "order":
        for order_id, c in picks.orders:
            variables = {"id": global_id("Order", order_id)}
            signed.append(Entry(f"Bearer {run.token(c)}", body(query, variables)))
            bare.append(Entry(None, body(query, {**variables, "customer": c})))
    elif name == "product":
        signed = bare = [Entry(None, body(query, {"sku": sku})) for sku in picks.skus]
    else:
        signed = bare = [Entry(None, body(query, {"first": PAGE}))]
    return signed, bare


def _read_workloads(run: Run) -> list[tuple[Workload, Workload, Workload]]:
    """(Shopfront, plain route, bare route) per read screen."""
    out = []
    for name, query, path in READS:
        signed, bare = _read_entries(run, name, query)
        out.append(
            (
                Workload(name, "/graphql", tuple(signed)),
                Workload(name + "_plain", f"/{path}", tuple(signed)),
                Workload(name + "_bare", f"/bare/{path}", tuple(bare)),
            )
        )
    return out


def phase_reads(run: Run) -> Result:
    """The read figures uncached first: a Shopfront process with
    SHOPFRONT_RESPONSE_CACHE_MB=0 (every request executed, on the compiled path where it
    has a plan) against the plain and the bare route, in turning rounds; then the order
    history screen uncached on the Strawberry executor (compiled reads off); then
    Shopfront as configured by default (response cache on) against the plain route."""
    plain_server, plain = servers.start_baseline(
        run.db_env()["SHOPFRONT_READ_DATABASE_URL"], run.logs / "baseline.log"
    )
    run.pids[plain] = plain_server.pid
    out: Result = {}
    try:
        for variant, extra_env, screens in READ_VARIANTS:
            server, base = servers.start_shopfront(
                run.folder, run.logs / f"shopfront-reads{variant}.log", **run.db_env(), **extra_env
            )
            run.pids[base] = server.pid
            try:
                for ours, theirs, bare in _read_workloads(run):
                    if ours.name not in screens:
                        continue
                    # Named per variant: the log lines and profile files tell them apart.
                    ours = dataclasses.replace(ours, name=ours.name + variant)
                    same = _same_answers(base, plain, ours, theirs.path)
                    log(f"{ours.name}: GraphQL and plain route give the same data: {same}")
                    hits, misses = servers.cache_lookups(base)
                    paths = servers.operation_paths(base)
                    sides = {"ours": (base, ours), "baseline": (plain, theirs)}
                    if variant == "_uncached":
                        sides["bare"] = (plain, bare)
                    measured = measure_sides(run, sides)
                    hits2, misses2 = servers.cache_lookups(base)
                    paths2 = servers.operation_paths(base)
                    lookups = hits2 - hits + misses2 - misses
                    mine = measured["ours"]
                    mine["cache_hit_ratio"] = (hits2 - hits) / lookups if lookups else None
                    executed = sum(paths2.values()) - sum(paths.values())
                    compiled = paths2.get("compiled", 0) - paths.get("compiled", 0)
                    mine["compiled_ratio"] = compiled / executed if executed else None
                    out[ours.name] = {**measured, "same_data": same}
            finally:
                procs.stop(server)
        return out
    finally:
        procs.stop(plain_server)


# -- placeOrder over HTTP vs raw sqlite3 ----------------------------------------------


def _order_plan(
    run: Run, count: int, rng: random.Random
) -> list[tuple[str, list[tuple[str, int]]]]:
    skus = run.picks.placeable
    return [
        (
            rng.choice(run.picks.customers),
            [(sku, 1) for sku in rng.sample(skus, k=min(len(skus), rng.randint(1, 3)))],
        )
        for _ in range(count)
    ]


def _place_body(lines: Sequence[tuple[str, int]], key: str | None) -> str:
    variables: dict[str, Any] = {
        "input": {"lines": [{"sku": sku, "quantity": qty} for sku, qty in lines]}
    }
    if key is not None:
        variables["input"]["idempotencyKey"] = key
    return body(PLACE_ORDER, variables)


def _restock(base: str, run: Run) -> None:
    staff = run.staff_token()
    mutation = (
        "mutation R($input: RestockProductInput!) { restockProduct(input: $input) "
        "{ userErrors { code message } } }"
    )
    for sku in run.picks.placeable:
        answer = graphql(base, mutation, {"input": {"sku": sku, "quantity": RESTOCK}}, staff)
        errors = answer.get("errors") or answer["data"]["restockProduct"]["userErrors"]
        if errors:
            raise RuntimeError(f"restock {sku}: {errors}")


def _count_orders(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute("SELECT count(*) FROM orders").fetchone()
        return int(count)
    finally:
        conn.close()


RAW_LABEL = {"sqlite": "raw sqlite3", "postgresql": "raw psycopg"}
RawPlace = Callable[
    [Sequence[str], Sequence[Sequence[tuple[str, int]]], float, random.Random], tuple[int, float]
]


def _raw_writes_baseline(run: Run) -> RawPlace:
    """The raw placeOrder baseline on its own copy of the seeded write model, restocked
    as Shopfront's copy is: a function placing orders for some seconds."""
    if run.pg is not None:
        url = run.pg.url(PG_RAW_WRITE)
        run.pg.sql(f'DROP DATABASE IF EXISTS "{PG_RAW_WRITE}"')
        run.pg.create_database(PG_RAW_WRITE, template=PG_WRITE)
        raw_writes_pg.restock(url, run.picks.placeable, RESTOCK)
        return functools.partial(raw_writes_pg.run, url)
    raw_folder = run.work / "raw"
    shutil.rmtree(raw_folder, ignore_errors=True)
    raw_folder.mkdir(parents=True)
    shutil.copyfile(run.source / "write.db", raw_folder / "write.db")
    with contextlib.closing(sqlite3.connect(raw_folder / "write.db")) as conn, conn:
        conn.executemany(
            "UPDATE products SET stock_on_hand = stock_on_hand + ? WHERE sku = ?",
            [(RESTOCK, sku) for sku in run.picks.placeable],
        )
    return functools.partial(raw_writes.run, raw_folder / "write.db")


# (result key, server settings): placeOrder as served, then on the Strawberry executor
# (compiled mutations off), each in rounds turning with the raw baseline.
WRITE_VARIANTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("ours", {}),
    ("strawberry", {"SHOPFRONT_COMPILED_MUTATIONS": "false"}),
)


def phase_writes(run: Run) -> Result:
    rng = random.Random(7)
    plan = _order_plan(run, 2000, rng)
    raw_place = _raw_writes_baseline(run)
    raw: list[tuple[int, float]] = []
    out: Result = {"connections": run.cfg.connections}
    for key, env in WRITE_VARIANTS:
        out[key] = _writes_on(run, key, env, plan, raw_place, raw, rng)
    raw_rates = [done / secs for done, secs in raw]
    out["baseline"] = {
        "rps": statistics.median(raw_rates),
        "rounds_rps": [round(x, 1) for x in raw_rates],
        "orders": sum(done for done, _ in raw),
        "label": RAW_LABEL[run.engine],
    }
    return out


def _writes_on(
    run: Run,
    key: str,
    env: dict[str, str],
    plan: list[tuple[str, list[tuple[str, int]]]],
    raw_place: RawPlace,
    raw: list[tuple[int, float]],
    rng: random.Random,
) -> Result:
    """placeOrder over HTTP on a server with these settings, in rounds turning with the
    raw baseline (whose rounds are added to ``raw``); ``ours`` is profiled if asked."""
    server, base = servers.start_shopfront(
        run.folder, run.logs / f"shopfront-writes-{key}.log", **run.db_env(), **env
    )
    run.pids[base] = server.pid
    cpu: list[float] = []
    try:
        _restock(base, run)
        workload = Workload(
            "place_order" if key == "ours" else f"place_order_{key}",
            "/graphql",
            tuple(Entry(f"Bearer {run.token(c)}", _place_body(lines, MARKER)) for c, lines in plan),
        )
        raw_customers = [c for c, _ in plan]
        raw_orders = [lines for _, lines in plan]
        _load(run, base, workload, run.cfg.warmup)
        raw_place(raw_customers, raw_orders, run.cfg.warmup, rng)
        http: list[LoadResult] = []
        placed = 0
        for r in range(run.cfg.rounds):
            for side in ("ours", "baseline") if r % 2 == 0 else ("baseline", "ours"):
                if side == "ours":
                    before = run.count_orders()
                    result = _load(run, base, workload, run.cfg.duration, cpu)
                    placed += run.count_orders() - before
                    http.append(result)
                    log(
                        f"  placeOrder over HTTP ({key}): {result.rps:.0f}/s (p99 "
                        f"{result.p99_ms:.0f} ms, server CPU {cpu[-1]:.2f} cores, load "
                        f"{procs.load_average()})"
                    )
                else:
                    done, secs = raw_place(raw_customers, raw_orders, run.cfg.duration, rng)
                    raw.append((done, secs))
                    load = procs.load_average()
                    log(f"  placeOrder {RAW_LABEL[run.engine]}: {done / secs:.0f}/s (load {load})")
        ours = _summary(http, cpu)
        ours["orders_committed"] = placed
        if key == "ours":
            ours["profile"] = maybe_profile(run, base, workload)
        return ours
    finally:
        procs.stop(server)


# -- subscriptions ----------------------------------------------------------------------


@dataclasses.dataclass
class Subscribers:
    processes: list[tuple[subprocess.Popen[bytes], Path]]
    opened: int
    failed: int


def _read_line(process: subprocess.Popen[bytes], deadline: float) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            return process.stdout.readline().decode().strip()
        if process.poll() is not None:
            raise RuntimeError(f"subscriber process exited with {process.returncode}")
    raise TimeoutError("subscribers did not get ready in time")


def open_subscribers(
    run: Run, ws_url: str, tokens: Sequence[str], *, record: bool, name: str, timeout: float
) -> Subscribers:
    count = max(1, math.ceil(len(tokens) / SUBSCRIBERS_PER_PROCESS))
    if record:
        count = max(count, 2)  # spread the receiving work: arrival times stay honest
    chunks = [list(tokens[i::count]) for i in range(count)]
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    for index, chunk in enumerate(chunks):
        spec = run.work / "subs" / f"{name}-{index}.json"
        out = spec.with_suffix(".out.json")
        spec.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        spec.write_text(
            json.dumps(
                {
                    "url": ws_url,
                    "tokens": chunk,
                    "query": MY_ORDERS_SUBSCRIPTION,
                    "record": record,
                    "compression": run.cfg.ws_compression,
                    "concurrency": 100,
                    "out": str(out),
                }
            )
        )
        process = procs.start(
            [sys.executable, "-m", "bench.subscribers", str(spec)],
            log=run.logs / f"subscribers-{name}-{index}.log",
            pipe_stdout=True,
            pipe_stdin=True,
        )
        started.append((process, out))
    opened = failed = 0
    deadline = time.monotonic() + timeout
    for process, _ in started:
        line = _read_line(process, deadline)
        _, got, lost = line.split()
        opened, failed = opened + int(got), failed + int(lost)
    return Subscribers(started, opened, failed)


def close_subscribers(subscribers: Subscribers) -> list[tuple[float, str]]:
    messages: list[tuple[float, str]] = []
    for process, _ in subscribers.processes:
        if process.stdin is not None:
            try:
                process.stdin.write(b"STOP\n")
                process.stdin.close()
            except BrokenPipeError:
                pass
    for process, out in subscribers.processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(60)
        procs.stop(process)
        if out.exists():
            messages.extend((t, m) for t, m in json.loads(out.read_text())["messages"])
    return messages


def _wait_subscriptions(base: str, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    live = servers.live_subscriptions(base)
    while live < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        live = servers.live_subscriptions(base)
    return live


async def _place_orders(
    base: str, plan: Sequence[tuple[str, list[tuple[str, int]]]], rate: float
) -> list[Result]:
    """Send placeOrder at ``rate`` per second (open loop); what each answered."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        start = time.monotonic() + 0.2

        async def one(i: int, token: str, lines: list[tuple[str, int]]) -> Result:
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            sent = time.time()
            answer = await client.post(
                "/graphql",
                content=_place_body(lines, None),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            done = time.time()
            payload = answer.json()["data"]["placeOrder"]
            order = payload["order"]
            return {
                "sent": sent,
                "done": done,
                "order": None if order is None else order["id"],
                "errors": payload["userErrors"],
            }

        return list(await asyncio.gather(*(one(i, t, ln) for i, (t, ln) in enumerate(plan))))


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def _deliveries(
    messages: Sequence[tuple[float, str]], sent: Sequence[Result], expected: int
) -> Result:
    by_order = {r["order"]: r for r in sent if r["order"] is not None}
    from_commit: list[float] = []
    from_send: list[float] = []
    for arrived, text in messages:
        message = json.loads(text)
        if message.get("type") != "next":
            continue
        event = message["payload"]["data"]["myOrders"]
        request = by_order.get(event["order"]["id"])
        if request is None or event["event"] != "OrderPlaced":
            continue
        occurred = dt.datetime.fromisoformat(event["occurredAt"]).timestamp()
        from_commit.append((arrived - occurred) * 1000)
        from_send.append((arrived - request["sent"]) * 1000)
    return {
        "delivered": len(from_commit),
        "expected": expected,
        "p50_ms": _percentile(from_commit, 50),
        "p99_ms": _percentile(from_commit, 99),
        "max_ms": max(from_commit, default=math.nan),
        "from_request_p50_ms": _percentile(from_send, 50),
        "from_request_p99_ms": _percentile(from_send, 99),
        "mutations": len(sent),
        "mutation_errors": sum(1 for r in sent if r["errors"] or r["order"] is None),
        "mutation_p50_ms": _percentile([(r["done"] - r["sent"]) * 1000 for r in sent], 50),
    }


def _latency_variant(
    run: Run,
    base: str,
    name: str,
    customers: Sequence[str],
    plan: Sequence[tuple[str, list[tuple[str, int]]]],
    rate: float,
    server_pid: int | None = None,
) -> Result:
    """Open one subscription per entry of ``customers`` (their ``myOrders``), send ``plan``
    at ``rate``, and measure each delivery. With --profile and ``server_pid``: the plan is
    sent once more afterwards (not counted) with py-spy sampling the server."""
    ws_url = base.replace("http://", "ws://") + "/graphql"
    profiled: Result | None = None
    tokens = {c: run.token(c) for c in set(customers)}
    subscribers = open_subscribers(
        run, ws_url, [tokens[c] for c in customers], record=True, name=name, timeout=300
    )
    try:
        live = _wait_subscriptions(base, subscribers.opened, 60)
        log(
            f"{name}: {subscribers.opened} subscribers open ({subscribers.failed} failed), "
            f"{live} live on the server"
        )
        time.sleep(1.0)
        per_customer = Counter(customers)
        orders = [(tokens[c], lines) for c, lines in plan]
        sent = asyncio.run(_place_orders(base, orders, rate))
        time.sleep(2.0)  # let the last deliveries arrive
        if run.cfg.profile and server_pid is not None:
            profiled = _profile_deliveries(run, base, name, server_pid, orders, rate)
    finally:
        messages = close_subscribers(subscribers)
    expected = sum(
        per_customer[c] for (c, _), r in zip(plan, sent, strict=True) if r["order"] is not None
    )
    result = _deliveries(messages, sent, expected)
    result.update(subscribers=subscribers.opened, failed_to_open=subscribers.failed, rate=rate)
    result["profile"] = profiled
    log(
        f"{name}: {result['delivered']}/{expected} delivered, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms"
    )
    return result


def _profile_deliveries(
    run: Run,
    base: str,
    name: str,
    pid: int,
    orders: Sequence[tuple[str, list[tuple[str, int]]]],
    rate: float,
) -> Result | None:
    seconds = len(orders) / rate + 3.0
    folded = run.work / "profiles" / f"{name}.txt"
    sampler = profile.start(pid, seconds, folded)
    if sampler is None:
        return None
    try:
        asyncio.run(_place_orders(base, orders, rate))
        sampler.wait(seconds + 60)
    finally:
        procs.stop(sampler)
    summary: Result = profile.summarize(folded) if folded.exists() else {"samples": 0}
    summary["folded_stacks"] = str(folded)
    log(f"  profile of {name}: {profile.describe(summary)}")
    return summary


def phase_latency(run: Run) -> Result:
    cfg, rng = run.cfg, random.Random(11)
    server, base = servers.start_shopfront(
        run.folder, run.logs / "shopfront-latency.log", **run.db_env()
    )
    try:
        _restock(base, run)
        n = cfg.subscribers
        pool = run.picks.customers
        # 1,000 customers, one subscription each; each order reaches its customer's one.
        own = [pool[i % len(pool)] for i in range(n)]
        count = max(1, round(cfg.latency_rate * cfg.latency_seconds))
        plan = [(rng.choice(own), _order_plan(run, 1, rng)[0][1]) for _ in range(count)]
        one_each = _latency_variant(run, base, "latency-each", own, plan, cfg.latency_rate)
        # 1,000 subscriptions of one customer: every order is delivered 1,000 times.
        fan = [pool[0]] * n
        plan = [(pool[0], _order_plan(run, 1, rng)[0][1]) for _ in range(cfg.broadcast_events)]
        broadcast = _latency_variant(
            run, base, "latency-broadcast", fan, plan, cfg.broadcast_rate, server_pid=server.pid
        )
        return {"one_each": one_each, "broadcast": broadcast}
    finally:
        procs.stop(server)


def phase_memory(run: Run) -> Result:
    n = run.cfg.idle_subscriptions
    server, base = servers.start_shopfront(
        run.folder, run.logs / "shopfront-memory.log", **run.db_env()
    )
    ws_url = base.replace("http://", "ws://") + "/graphql"
    pool = run.picks.customers
    try:
        # Warm the code paths (WebSocket, Strawberry's protocol handler) before the baseline.
        warm = open_subscribers(
            run, ws_url, [run.token(c) for c in pool[:20]], record=False, name="warm", timeout=60
        )
        _wait_subscriptions(base, warm.opened, 30)
        close_subscribers(warm)
        time.sleep(2.0)
        before = procs.rss_bytes(server.pid)
        started = time.monotonic()
        tokens = {c: run.token(c) for c in pool[: min(n, len(pool))]}
        chosen = [tokens[pool[i % len(tokens)]] for i in range(n)]
        idle = open_subscribers(run, ws_url, chosen, record=False, name="idle", timeout=600)
        try:
            live = _wait_subscriptions(base, idle.opened, 120)
            opened_in = time.monotonic() - started
            time.sleep(3.0)
            after = procs.rss_bytes(server.pid)
            live = servers.live_subscriptions(base)
        finally:
            close_subscribers(idle)
        per = (after - before) / max(live, 1)
        log(
            f"memory: {live} idle subscriptions (asked {n}, {idle.failed} failed) in "
            f"{opened_in:.0f} s; RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB, "
            f"{per / 1024:.1f} KiB each"
        )
        return {
            "asked": n,
            "live": live,
            "failed_to_open": idle.failed,
            "rss_before": before,
            "rss_after": after,
            "bytes_per_subscription": per,
            "seconds_to_open": opened_in,
        }
    finally:
        procs.stop(server)


# -- projection rebuild vs raw bulk insert ------------------------------------------------


def _raw_bulk_insert(rebuilt: Path, target: Path) -> tuple[int, float]:
    """Insert every row the projections produced into empty tables of the same schema,
    with executemany in key order, one transaction per table; (rows, seconds spent
    inserting)."""
    tables = [table for projector in PROJECTORS.values() for table in projector.tables]
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    engine = sa.create_engine(f"sqlite:///{target}")
    read_metadata.create_all(engine, tables=tables)
    engine.dispose()
    source = sqlite3.connect(rebuilt)
    sink = sqlite3.connect(target, isolation_level=None)
    sink.execute("PRAGMA journal_mode=WAL")
    sink.execute("PRAGMA synchronous=NORMAL")  # the projectors' setting
    rows_total, seconds = 0, 0.0
    try:
        for table in tables:
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            marks = ", ".join("?" for _ in table.columns)
            # In key order: the baseline's speed must not depend on the order in which
            # the rebuild happened to store its rows (random keys insert more slowly).
            key = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
            query = f'SELECT {columns} FROM "{table.name}" ORDER BY {key}'
            rows = source.execute(query).fetchall()
            started = time.perf_counter()
            sink.execute("BEGIN")
            sink.executemany(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})', rows)
            sink.execute("COMMIT")
            seconds += time.perf_counter() - started
            rows_total += len(rows)
    finally:
        source.close()
        sink.close()
    return rows_total, seconds


def phase_rebuild(run: Run) -> Result:
    folder = dataset.working_copy(run.source, run.work / "rebuild")
    out = run.work / "rebuild" / "result.json"
    out.unlink(missing_ok=True)
    worker = procs.start(
        [sys.executable, "-m", "bench.rebuild_worker", str(folder), str(out)],
        log=run.logs / "rebuild.log",
    )
    try:
        worker.wait(run.cfg.phase_timeout)
    finally:
        procs.stop(worker)
    if not out.exists():
        raise RuntimeError(f"rebuild worker failed, see {run.logs / 'rebuild.log'}")
    rebuilt: Result = json.loads(out.read_text())
    log(f"rebuild: {rebuilt['events']} events, {rebuilt['seconds']:.1f} s")
    rows, raw_seconds = _raw_bulk_insert(folder / "read.db", run.work / "rebuild" / "raw.db")
    log(f"rebuild baseline: {rows} rows inserted raw in {raw_seconds:.1f} s")
    events = int(rebuilt["events"])
    return {
        "events": events,
        "projectors": len(PROJECTORS),
        "rows": rows,
        "ours": {"seconds": rebuilt["seconds"], "events_per_s": events / rebuilt["seconds"]},
        "baseline": {"seconds": raw_seconds, "events_per_s": events / raw_seconds},
    }


def phase_cluster(run: Run) -> Result:
    from bench import cluster  # it builds on this module

    return cluster.phase_cluster(run)


PHASES = {
    "history": phase_history,
    "reads": phase_reads,
    "writes": phase_writes,
    "latency": phase_latency,
    "memory": phase_memory,
    "rebuild": phase_rebuild,
    "cluster": phase_cluster,
}
