"""Rebuilding every projection while the shop is open: ``shopfront projections rebuild``
runs against a seeded shop (30 customers, 40 products, 1500 orders, as ``shopfront seed``
makes them) while readers keep asking for the catalog, a customer's order history and the
sales dashboard, and writers keep placing and paying orders.

Every answer during the rebuild is a full screen: all products, an order history that
never shrinks and holds every order already acknowledged, a dashboard whose order count
never goes down and whose status counts add up. No errors. Afterwards the read tables
equal a from-scratch replay of the event log, and the dashboard is exact against the
write model.

Mechanism under test: the rebuild replays into shadow tables while the live ones keep
serving (here with its helper process building the order detail screen's), catches up
under the write lock, and swaps the rows in one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.bootstrap import Services
from api.cli.seeding import seed
from api.graphql.ids import raw_id_of
from api.settings import Settings
from projections.rebuild.replay import HOLD_BEFORE_SWAP_ENV
from projections.registry import PROJECTORS
from tests.conftest import _env_for, fresh_settings
from tests.reliability.support import (
    DASHBOARD,
    PAY,
    Json,
    Server,
    assert_dashboard_exact,
    assert_same_tables,
    cli_output,
    customer_token,
    execute,
    expected_dashboard,
    graphql,
    mutate,
    place,
    query_rows,
    read_snapshot,
    replay_snapshot,
    run_cli,
    staff_token,
    wait_caught_up,
)

PRODUCTS = 40
WRITER_LIMIT = 35  # orders the writer may add: the history stays within one page of 100
READERS = 2
BUSY_WRITERS = 2
# Reads of all three screens, and orders acknowledged, while the rebuild is held before
# its swap.
MIN_READS_DURING = 4 * READERS
MIN_WRITES_DURING = 3
CATALOG = "{ products(first: 100) { edges { node { sku name priceCents currency } } } }"
HISTORY = "{ myOrders(first: 100) { edges { node { id status version totalCents } } } }"


@dataclasses.dataclass
class Observed:
    at: float
    catalog: int = 0
    history: int = 0
    orders: int = 0


@dataclasses.dataclass
class Shared:
    skus: set[str]
    customer_token: str
    staff: str
    acknowledged: list[str] = dataclasses.field(default_factory=list)  # writer's order ids
    acknowledged_at: list[float] = dataclasses.field(default_factory=list)
    # when each order of the busy writers was acknowledged
    busy_at: list[float] = dataclasses.field(default_factory=list)
    observed: list[Observed] = dataclasses.field(default_factory=list)
    stop: bool = False


async def reader(base_url: str, shared: Shared) -> None:
    """Ask for the three screens again and again; every answer must be complete."""
    last_history, last_orders = 0, 0
    async with httpx.AsyncClient(base_url=base_url, timeout=10, trust_env=False) as http:
        while not shared.stop:
            known = set(shared.acknowledged)
            at = time.monotonic()
            catalog, history, dashboard = await asyncio.gather(
                execute(http, CATALOG),
                execute(http, HISTORY, token=shared.customer_token),
                execute(http, DASHBOARD, token=shared.staff),
            )
            for body in (catalog, history, dashboard):
                assert not body.get("errors"), body["errors"]
            products = [e["node"] for e in catalog["data"]["products"]["edges"]]
            assert {p["sku"] for p in products} == shared.skus, f"catalog: {len(products)}"
            assert all(p["priceCents"] > 0 and p["currency"] == "EUR" for p in products)
            orders = [e["node"] for e in history["data"]["myOrders"]["edges"]]
            ids = {o["id"] for o in orders}
            assert len(ids) >= last_history, f"myOrders shrank: {len(ids)} < {last_history}"
            assert known <= ids, f"acknowledged orders missing: {len(known - ids)}"
            board = dashboard["data"]["salesDashboard"]
            count = board["orderCount"]
            assert count >= last_orders, f"dashboard orderCount went down: {count}"
            assert sum(s["count"] for s in board["ordersByStatus"]) == count, board
            assert board["topProducts"], board
            last_history, last_orders = len(ids), count
            shared.observed.append(Observed(at, len(products), len(ids), count))


async def until(
    condition: Callable[[], bool],
    failure: str,
    clients: Sequence[asyncio.Task[Any]] = (),
    timeout: float = 30.0,
) -> None:
    """Wait (bounded) for ``condition``; a client that failed fails the wait at once. (A
    client may also end normally: the writer stops at ``WRITER_LIMIT`` orders, which on a
    busy machine can come before the rebuild holds.)"""
    deadline = time.monotonic() + timeout
    while not condition():
        for task in clients:
            if task.done() and (task.cancelled() or task.exception() is not None):
                task.result()  # raises the client's own error
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.02)


async def writer(base_url: str, shared: Shared, rng: random.Random) -> int:
    """Place orders (and pay every other one) until told to stop."""
    skus = sorted(shared.skus)
    token = shared.customer_token
    async with httpx.AsyncClient(base_url=base_url, timeout=10, trust_env=False) as http:
        while not shared.stop and len(shared.acknowledged) < WRITER_LIMIT:
            order = await place(http, token, {rng.choice(skus): rng.randint(1, 2)})
            assert order["status"] == "PLACED", order
            if len(shared.acknowledged) % 2:
                paid = await mutate(http, PAY, "payOrder", {"orderId": order["id"]}, token)
                assert paid["status"] == "PAID", paid
            shared.acknowledged.append(order["id"])
            shared.acknowledged_at.append(time.monotonic())
            await asyncio.sleep(0.05)
    return len(shared.acknowledged)


async def seed_shop(settings: Settings) -> None:
    """What ``shopfront seed --customers 30 --products 40 --orders 1500`` does, in this
    process: orders through the real command handlers, then the projections caught up."""
    services = Services.create(settings)
    try:
        await services.runner.load_checkpoints()
        await seed(
            services.bus,
            customers=30,
            products=PRODUCTS,
            orders=1500,
            report=lambda _: None,
            seed_value=7,
        )
        await services.runner.catch_up(timeout=30)
    finally:
        await services.close()


async def busy_writer(base_url: str, shared: Shared, token: str, rng: random.Random) -> int:
    """Another customer placing orders back to back: the log grows all through the rebuild."""
    skus = sorted(shared.skus)
    placed = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=10, trust_env=False) as http:
        while not shared.stop:
            order = await place(http, token, {rng.choice(skus): 1})
            assert order["status"] == "PLACED", order
            shared.busy_at.append(time.monotonic())
            placed += 1
    return placed


@pytest.mark.timeout(90)
async def test_rebuild_all_projections_while_serving(template_dir: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    settings = fresh_settings(template_dir, tmp_path / "db")
    env = _env_for(settings)
    # The CLI's rebuild shares the work with its helper process, as on a large log.
    env["SHOPFRONT_REBUILD_HELPER_MIN_EVENTS"] = "0"
    await seed_shop(settings)
    server = Server(env, tmp_path / "server.log")
    skus = {r["sku"] for r in query_rows(server.write_db, "SELECT sku FROM products")}
    assert len(skus) == PRODUCTS
    # The customer with the fewest orders: the writer's orders fit in one page with theirs.
    fewest, *others = query_rows(
        server.write_db,
        "SELECT customer_id, count(*) AS n FROM orders "
        "GROUP BY customer_id ORDER BY n, customer_id",
    )
    assert fewest["n"] + WRITER_LIMIT <= 100, fewest
    shared = Shared(skus, customer_token(fewest["customer_id"]), staff_token("staff-rebuild"))
    head_before = int(
        query_rows(server.write_db, "SELECT position FROM event_log_head")[0]["position"]
    )

    await server.start()
    try:
        readers = [asyncio.create_task(reader(server.base_url, shared)) for _ in range(READERS)]
        write = asyncio.create_task(writer(server.base_url, shared, random.Random(7)))
        busy = [
            asyncio.create_task(
                busy_writer(
                    server.base_url, shared, customer_token(other["customer_id"]), random.Random(n)
                )
            )
            for n, other in enumerate(others[:BUSY_WRITERS])
        ]
        try:
            deadline = time.monotonic() + 10
            while len(shared.observed) < 2 * READERS or not shared.acknowledged:
                assert time.monotonic() < deadline, "readers or writer got nothing in 10 s"
                assert not any(t.done() for t in [*readers, write, *busy]), "a client stopped"
                await asyncio.sleep(0.05)
            rebuild_from = time.monotonic()
            # The rebuild holds before its swap (shadows built, the old rows still live)
            # until full-screen reads and acknowledged writes have gone on meanwhile.
            release = tmp_path / "release-rebuild"
            rebuilding = asyncio.create_task(
                run_cli({**env, HOLD_BEFORE_SWAP_ENV: str(release)}, "projections", "rebuild")
            )
            held = Path(f"{release}.held")
            await until(lambda: held.exists() or rebuilding.done(), "the rebuild never held")
            assert not rebuilding.done(), cli_output(rebuilding.result())
            held_at = time.monotonic()
            await until(
                lambda: (
                    sum(o.at > held_at for o in shared.observed) >= MIN_READS_DURING
                    and sum(at > held_at for at in shared.busy_at) >= MIN_WRITES_DURING
                ),
                "no reads or writes while the rebuild held",
                [*readers, write, *busy],
            )
            release.touch()
            rebuild = await rebuilding
            rebuild_until = time.monotonic()
            assert rebuild.returncode == 0, cli_output(rebuild)
            assert rebuild.stdout.startswith("Rebuilt "), cli_output(rebuild)
            assert all(name in rebuild.stdout for name in PROJECTORS), cli_output(rebuild)
            # and some reads after the swap
            await until(
                lambda: sum(o.at > rebuild_until for o in shared.observed) >= READERS,
                "no reads after the swap",
                [*readers, write, *busy],
            )
        finally:
            shared.stop = True
            outcomes: list[Any] = await asyncio.wait_for(
                asyncio.gather(*readers, *busy, write, return_exceptions=True), 20
            )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        written = outcomes[-1]
        during = [o for o in shared.observed if rebuild_from <= o.at <= rebuild_until]
        assert len(during) >= MIN_READS_DURING, f"{len(during)} reads overlapped the rebuild"
        writes_during = sum(
            1
            for at in [*shared.acknowledged_at, *shared.busy_at]
            if rebuild_from <= at <= rebuild_until
        )
        assert writes_during >= MIN_WRITES_DURING, f"{writes_during} orders placed during it"

        async with server.client() as http:
            states = await wait_caught_up(http, shared.staff)
            head = states[0]["headPosition"]
            assert head > head_before, (head, head_before)
            dashboard = (await graphql(http, DASHBOARD, token=shared.staff))["salesDashboard"]
            assert_dashboard_exact(
                dashboard, await asyncio.to_thread(expected_dashboard, server.write_db)
            )
            history = await graphql(http, HISTORY, token=shared.customer_token)
            shown: dict[str, Json] = {
                str(raw_id_of("Order", e["node"]["id"])): e["node"]
                for e in history["myOrders"]["edges"]
            }
            mine = query_rows(
                server.write_db,
                "SELECT id, status, version FROM orders WHERE customer_id = ?",
                (fewest["customer_id"],),
            )
            assert {r["id"]: (r["status"], r["version"]) for r in mine} == {
                i: (o["status"], o["version"]) for i, o in shown.items()
            }
    finally:
        await server.stop()

    live = await asyncio.to_thread(read_snapshot, server.read_db)
    replayed = await replay_snapshot(
        template_dir, tmp_path / "replay", env["SHOPFRONT_WRITE_DATABASE_URL"]
    )
    rows = assert_same_tables(live, replayed)
    assert query_rows(server.read_db, "SELECT * FROM projection_dead_letters") == []
    checkpoints = query_rows(server.read_db, "SELECT position FROM projection_checkpoints")
    assert {c["position"] for c in checkpoints} == {head}, checkpoints
    print(
        f"\nrebuild without downtime: log head {head_before} -> {head}, rebuild took "
        f"{rebuild_until - rebuild_from:.1f} s with {len(during)} of "
        f"{len(shared.observed)} full-screen reads during it, writer placed "
        f"{written} orders ({writes_during} during it) and the busy writers "
        f"{sum(outcomes[READERS:-1])} more; {rows} read rows equal to a replay; "
        f"{time.monotonic() - started:.1f} s"
    )
