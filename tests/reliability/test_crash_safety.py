"""Crash safety: SIGKILL the server in the middle of a burst of order mutations.

After a restart on the same database files:

* every acknowledged mutation is in the write model and in every read model;
* nothing that was refused (a userError, or a connection that never opened) left a trace;
* a mutation whose outcome the client never learnt (connection dropped) happened
  completely or not at all;
* every read table equals a from-scratch rebuild of the event log, row for row.

Mechanisms under test: a command's state change and its events commit in one write
transaction (outbox); a projector's rows and its checkpoint commit in one read
transaction; the runner resumes from the checkpoints after a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Literal, cast

import httpx
import orjson
import pytest

from api.database import create_sync_engine
from api.graphql.ids import raw_id_of, to_global_id
from tests.conftest import _env_for, fresh_settings
from tests.e2e.client import api_client
from tests.integration.integration_support import check_invariants
from tests.reliability.support import (
    READ_WAIT,
    Db,
    Json,
    Server,
    assert_same_tables,
    graphql,
    query_rows,
    read_snapshot,
    replay_snapshot,
    staff_token,
    wait_caught_up,
)

CUSTOMERS = 10
WORKERS = 8
# Burst, SIGKILL, restart on the same files: once by default (about 15 s); more for a
# soak run, e.g. RELIABILITY_CRASH_ROUNDS=10.
ROUNDS = int(os.environ.get("RELIABILITY_CRASH_ROUNDS", "1"))
BUDGET = 90.0 * ROUNDS  # seconds: a time-out for the whole test, not a speed check
KILL_AFTER = (1.5, 2.0)  # seconds into the burst
BURST_LIMIT = 8.0  # workers stop by then whatever happens
PLENTY = 100_000
SCARCE = 5  # runs out during the burst: OUT_OF_STOCK refusals, released by cancels

Outcome = Literal["pending", "ok", "failed", "refused", "unknown"]

PLACE = """mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id status version customerId lines { sku quantity } }
    userErrors { field message code }
  }
}"""
PAY = """mutation($input: PayOrderInput!) {
  payOrder(input: $input) { order { id status version } userErrors { field message code } }
}"""
CANCEL = """mutation($input: CancelOrderInput!) {
  cancelOrder(input: $input) { order { id status version } userErrors { field message code } }
}"""
FIELD = {"place": "placeOrder", "pay": "payOrder", "cancel": "cancelOrder"}
QUERY = {"place": PLACE, "pay": PAY, "cancel": CANCEL}
# The refusals the burst can legitimately meet; anything else is a bug.
EXPECTED_CODES = {"place": {"OUT_OF_STOCK"}, "pay": {"INVALID_STATE"}, "cancel": {"INVALID_STATE"}}


@dataclasses.dataclass(frozen=True)
class Customer:
    raw_id: str
    token: str


@dataclasses.dataclass
class Attempt:
    kind: Literal["place", "pay", "cancel"]
    token: str
    customer: Customer | None = None  # place: who orders
    key: str | None = None  # place: the idempotency key
    lines: dict[str, int] = dataclasses.field(default_factory=dict)  # place
    replay_of: Attempt | None = None  # place: same key and lines as an acknowledged one
    order_id: str | None = None  # raw order id: the target (pay, cancel) or the result
    outcome: Outcome = "pending"
    code: str | None = None
    order: Json | None = None  # the order the payload returned

    def variables(self) -> Json:
        if self.kind == "place":
            lines = [{"sku": sku, "quantity": q} for sku, q in self.lines.items()]
            return {"input": {"lines": lines, "idempotencyKey": self.key}}
        assert self.order_id is not None
        order_input: Json = {"orderId": to_global_id("Order", self.order_id)}
        if self.kind == "cancel":
            order_input["reason"] = "crash test"
        return {"input": order_input}


@dataclasses.dataclass
class Burst:
    """The clients' shared view: who may order what, and what has been acknowledged."""

    rng: random.Random
    customers: list[Customer]
    skus: list[str]
    scarce: str
    staff: str
    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    placed: list[Attempt] = dataclasses.field(default_factory=list)  # acknowledged places
    keys: int = 0

    def next_attempt(self) -> Attempt:
        rng, roll = self.rng, self.rng.random()
        if self.placed and roll < 0.05:
            first = rng.choice(self.placed)
            assert first.customer is not None
            attempt = Attempt(
                "place",
                first.customer.token,
                customer=first.customer,
                key=first.key,
                lines=dict(first.lines),
                replay_of=first,
            )
        elif not self.placed or roll < 0.55:
            customer = rng.choice(self.customers)
            lines = {sku: rng.randint(1, 3) for sku in rng.sample(self.skus, rng.randint(1, 2))}
            if rng.random() < 0.4:
                lines[self.scarce] = rng.randint(1, 3)
            self.keys += 1
            attempt = Attempt(
                "place", customer.token, customer=customer, key=f"crash-{self.keys}", lines=lines
            )
        else:
            target = rng.choice(self.placed)
            assert target.customer is not None
            if roll < 0.8:
                attempt = Attempt("pay", target.customer.token, order_id=target.order_id)
            else:
                token = self.staff if rng.random() < 0.5 else target.customer.token
                attempt = Attempt("cancel", token, order_id=target.order_id)
        self.attempts.append(attempt)
        return attempt

    def acknowledged(self, attempt: Attempt) -> None:
        if attempt.kind == "place" and attempt.replay_of is None:
            self.placed.append(attempt)


async def send(http: httpx.AsyncClient, attempt: Attempt) -> None:
    """Run one mutation and record what the client learnt of it."""
    try:
        response = await http.post(
            "/graphql",
            json={"query": QUERY[attempt.kind], "variables": attempt.variables()},
            headers={"Authorization": f"Bearer {attempt.token}"},
        )
    except httpx.ConnectError:
        attempt.outcome = "refused"  # no connection: the request never reached a server
        return
    except httpx.TransportError:
        attempt.outcome = "unknown"  # sent, but the answer was lost
        return
    assert response.status_code == 200, (response.status_code, response.text[:2000])
    body = cast(Json, response.json())
    assert not body.get("errors"), body["errors"]
    payload = body["data"][FIELD[attempt.kind]]
    if payload["userErrors"]:
        attempt.outcome = "failed"
        attempt.code = payload["userErrors"][0]["code"]
        return
    attempt.outcome = "ok"
    attempt.order = payload["order"]
    assert attempt.order is not None, f"acknowledged without the order: {body}"
    order_id = raw_id_of("Order", attempt.order["id"])
    assert order_id is not None, attempt.order
    if attempt.kind == "place":
        attempt.order_id = order_id
    else:
        assert order_id == attempt.order_id, (attempt, body)


async def worker(base_url: str, burst: Burst, deadline: float) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10, trust_env=False) as http:
        while time.monotonic() < deadline:
            attempt = burst.next_attempt()
            await send(http, attempt)
            if attempt.outcome == "ok":
                burst.acknowledged(attempt)
            elif attempt.outcome in ("refused", "unknown"):
                return  # the server is gone


async def seed(server: Server, staff: str, rng: random.Random) -> Burst:
    async with api_client(server.base_url) as api:
        registered = await asyncio.gather(
            *(api.register_customer(f"Crash customer {n}") for n in range(CUSTOMERS))
        )
        customers = []
        for token, global_id in registered:
            raw = raw_id_of("Customer", global_id)
            assert raw is not None
            customers.append(Customer(raw, token))
        skus = [f"CRASH-{n}" for n in range(3)]
        for n, sku in enumerate(skus):
            await api.add_product(staff, sku=sku, stock=PLENTY, price_cents=500 + 100 * n)
        await api.add_product(staff, sku="CRASH-SCARCE", stock=SCARCE, price_cents=4200)
    return Burst(rng, customers, skus, "CRASH-SCARCE", staff)


@dataclasses.dataclass
class WriteModel:
    orders: dict[str, Json]
    lines: dict[str, dict[str, int]]
    events: dict[str, list[Json]]  # order id -> its events, in version order
    payments: dict[str, Json]
    products: dict[str, Json]  # by sku

    @classmethod
    def read(cls, path: Db) -> WriteModel:
        lines: dict[str, dict[str, int]] = defaultdict(dict)
        for row in query_rows(
            path, "SELECT order_id, sku, quantity FROM order_lines", timeout=READ_WAIT
        ):
            assert row["sku"] not in lines[row["order_id"]], row
            lines[row["order_id"]][row["sku"]] = row["quantity"]
        events: dict[str, list[Json]] = defaultdict(list)
        for row in query_rows(
            path,
            "SELECT stream_id, stream_version, type, payload FROM events "
            "WHERE stream_id LIKE 'order-%' ORDER BY stream_id, stream_version",
            timeout=READ_WAIT,
        ):
            events[row["stream_id"].removeprefix("order-")].append(row)
        return cls(
            orders={
                r["id"]: r for r in query_rows(path, "SELECT * FROM orders", timeout=READ_WAIT)
            },
            lines=dict(lines),
            events=dict(events),
            payments={
                r["order_id"]: r
                for r in query_rows(path, "SELECT * FROM payments", timeout=READ_WAIT)
            },
            products={
                r["sku"]: r for r in query_rows(path, "SELECT * FROM products", timeout=READ_WAIT)
            },
        )

    def order_for_key(self, customer: Customer, key: str | None) -> Json | None:
        found = [
            o
            for o in self.orders.values()
            if o["customer_id"] == customer.raw_id and o["idempotency_key"] == key
        ]
        assert len(found) <= 1, found
        return found[0] if found else None


def check_write_model(burst: Burst, initial: dict[str, int], wm: WriteModel) -> None:
    prices = {sku: p["price_cents"] for sku, p in wm.products.items()}
    # The checks below loop over attempts and orders: over nothing they would prove nothing.
    assert any(a.kind == "place" and a.outcome == "ok" for a in burst.attempts), burst.attempts
    assert wm.orders and wm.products, "the write model has no orders or products"
    explained: set[str] = set()
    for a in burst.attempts:
        if a.kind != "place":
            continue
        assert a.customer is not None
        row = wm.order_for_key(a.customer, a.key)
        if a.outcome == "ok":
            assert row is not None, f"acknowledged order lost: {a}"
            assert row["id"] == a.order_id, (row, a)
            if a.replay_of is not None:
                assert a.order_id == a.replay_of.order_id, "a replay made another order"
            assert a.order is not None
            assert {ln["sku"]: ln["quantity"] for ln in a.order["lines"]} == a.lines
        elif a.outcome in ("failed", "refused") and a.replay_of is None:
            assert row is None, f"a refused placeOrder left an order behind: {a} {row}"
        if row is None:
            continue
        explained.add(row["id"])
        # All or nothing: the order has every line, at the price of the product, and
        # exactly one OrderPlaced carrying the same lines.
        oid = row["id"]
        assert wm.lines.get(oid) == a.lines, (a, wm.lines.get(oid))
        assert row["item_count"] == sum(a.lines.values())
        assert row["total_cents"] == sum(q * prices[sku] for sku, q in a.lines.items())
        assert wm.events.get(oid), f"order {oid} committed without its events"
        placed = wm.events[oid][0]
        assert (placed["type"], placed["stream_version"]) == ("OrderPlaced", 1), placed
        payload = orjson.loads(placed["payload"])
        assert {ln["sku"]: ln["quantity"] for ln in payload["lines"]} == a.lines
    assert set(wm.orders) == explained, "orders no placeOrder request can explain"

    by_order: dict[str, list[Attempt]] = defaultdict(list)
    for a in burst.attempts:
        if a.kind != "place" and a.order_id is not None:
            by_order[a.order_id].append(a)
            if a.outcome == "failed":
                assert a.code in EXPECTED_CODES[a.kind], a
        elif a.kind == "place" and a.outcome == "failed":
            assert a.code in EXPECTED_CODES["place"], a
    for oid, row in wm.orders.items():
        assert wm.events.get(oid), f"order {oid} committed without its events"
        types = [e["type"] for e in wm.events[oid]]
        assert [e["stream_version"] for e in wm.events[oid]] == list(range(1, len(types) + 1))
        assert row["version"] == len(types), (row, types)
        assert types in (
            ["OrderPlaced"],
            ["OrderPlaced", "OrderPaid"],
            ["OrderPlaced", "OrderCancelled"],
            ["OrderPlaced", "OrderPaid", "OrderCancelled"],
        ), types
        for kind, event in (("pay", "OrderPaid"), ("cancel", "OrderCancelled")):
            tried = [a for a in by_order[oid] if a.kind == kind]
            if any(a.outcome == "ok" for a in tried):
                assert event in types, f"acknowledged {kind} lost on {oid}: {types}"
            elif event in types:
                assert any(a.outcome == "unknown" for a in tried), (
                    f"{event} on {oid} that no request can explain: {tried}"
                )
        status = (
            "CANCELLED"
            if "OrderCancelled" in types
            else "PAID"
            if "OrderPaid" in types
            else "PLACED"
        )
        assert row["status"] == status, (row, types)
        payment = wm.payments.get(oid)
        if "OrderPaid" in types:
            assert payment is not None
            assert payment["amount_cents"] == row["total_cents"]
            assert payment["status"] == ("REFUNDED" if status == "CANCELLED" else "PAID")
        else:
            assert payment is None, payment
    # Nothing ships in the burst: stock on hand never moves; reserved is what open
    # orders hold.
    held: Counter[str] = Counter()
    for oid, row in wm.orders.items():
        if row["status"] in ("PLACED", "PAID"):
            held.update(wm.lines[oid])
    for sku, product in wm.products.items():
        assert product["stock_on_hand"] == initial[sku], product
        assert product["stock_reserved"] == held[sku], (product, held[sku])


async def check_over_graphql(
    http: httpx.AsyncClient, burst: Burst, staff: str, wm: WriteModel
) -> None:
    """What the screens show after the restart: the same as the write model."""
    for customer in burst.customers:
        seen: dict[str, Json] = {}
        after: str | None = None
        while True:
            data = await graphql(
                http,
                """query($after: String) { myOrders(first: 100, after: $after) {
                     edges { node { id status version itemCount totalCents
                                    lines { sku quantity } } }
                     pageInfo { hasNextPage endCursor } } }""",
                {"after": after},
                customer.token,
            )
            page = data["myOrders"]
            for edge in page["edges"]:
                oid = raw_id_of("Order", edge["node"]["id"])
                assert oid is not None and oid not in seen
                seen[oid] = edge["node"]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        mine = {oid for oid, o in wm.orders.items() if o["customer_id"] == customer.raw_id}
        assert set(seen) == mine, "myOrders differs from the write model"
        for oid, node in seen.items():
            row = wm.orders[oid]
            assert (node["status"], node["version"]) == (row["status"], row["version"]), oid
            assert (node["itemCount"], node["totalCents"]) == (
                row["item_count"],
                row["total_cents"],
            )
            assert {ln["sku"]: ln["quantity"] for ln in node["lines"]} == wm.lines[oid]
    for a in burst.attempts:
        if a.outcome != "ok":
            continue
        assert a.order_id is not None
        data = await graphql(
            http,
            "query($id: ID!) { order(id: $id) { status version } }",
            {"id": to_global_id("Order", a.order_id)},
            a.token,
        )
        row = wm.orders[a.order_id]
        assert data["order"] == {"status": row["status"], "version": row["version"]}, a
    dashboard = (
        await graphql(
            http,
            "{ salesDashboard { orderCount revenueCents ordersByStatus { status count } } }",
            token=staff,
        )
    )["salesDashboard"]
    assert dashboard["orderCount"] == len(wm.orders)
    statuses = Counter(o["status"] for o in wm.orders.values())
    assert {s["status"]: s["count"] for s in dashboard["ordersByStatus"] if s["count"]} == dict(
        statuses
    )
    revenue = sum(p["amount_cents"] for p in wm.payments.values() if p["status"] == "PAID")
    assert dashboard["revenueCents"] == revenue
    for sku, product in wm.products.items():
        data = await graphql(
            http, "query($sku: String!) { product(sku: $sku) { stockAvailable } }", {"sku": sku}
        )
        available = product["stock_on_hand"] - product["stock_reserved"]
        assert data["product"]["stockAvailable"] == available, sku


def figures(burst: Burst) -> dict[str, Any]:
    outcomes = Counter(a.outcome for a in burst.attempts)
    by_kind = Counter(f"{a.kind}:{a.outcome}" for a in burst.attempts)
    codes = Counter(f"{a.kind}:{a.code}" for a in burst.attempts if a.code)
    return {
        "sent": len(burst.attempts) - outcomes["refused"],
        "successes": outcomes["ok"],
        "failures": outcomes["failed"],
        "unknown": outcomes["unknown"],
        "refused_after_kill": outcomes["refused"],
        "by_kind": dict(sorted(by_kind.items())),
        "failure_codes": dict(sorted(codes.items())),
    }


async def burst_and_kill(server: Server, burst: Burst, rng: random.Random) -> str:
    """Clients hammer the server; a SIGKILL lands in the middle. Returns a summary."""
    before = len(burst.attempts)
    deadline = time.monotonic() + BURST_LIMIT
    workers = [
        asyncio.create_task(worker(server.base_url, burst, deadline)) for _ in range(WORKERS)
    ]
    kill_at = rng.uniform(*KILL_AFTER)
    await asyncio.sleep(kill_at)
    in_flight = sum(1 for a in burst.attempts if a.outcome == "pending")
    server.kill()
    await asyncio.wait_for(asyncio.gather(*workers), 15)
    assert all(a.outcome != "pending" for a in burst.attempts)
    this_round = burst.attempts[before:]
    acknowledged = sum(1 for a in this_round if a.outcome == "ok")
    assert acknowledged > 0, "the burst acknowledged nothing before the kill"
    return (
        f"{len(this_round)} requests, {acknowledged} acknowledged, "
        f"killed at {kill_at:.2f} s with {in_flight} in flight"
    )


@pytest.mark.timeout(BUDGET + 20)
async def test_sigkill_mid_burst_loses_nothing_and_half_applies_nothing(
    template_dir: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    seed_value = int(os.environ.get("RELIABILITY_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed_value)
    settings = fresh_settings(template_dir, tmp_path / "db")
    env = _env_for(settings)
    server = Server(env, tmp_path / "server.log")
    staff = staff_token("staff-crash")
    rounds: list[str] = []
    marks = [("start", time.monotonic())]
    await server.start()
    try:
        burst = await seed(server, staff, rng)
        marks.append(("seeded", time.monotonic()))
        initial = {
            p["sku"]: p["stock_on_hand"]
            for p in query_rows(
                server.write_db, "SELECT sku, stock_on_hand FROM products", timeout=READ_WAIT
            )
        }
        for _ in range(ROUNDS):
            rounds.append(await burst_and_kill(server, burst, rng))
            # Restart on the same files (new port); wait until the projections caught up.
            await server.start()
            async with httpx.AsyncClient(
                base_url=server.base_url, timeout=10, trust_env=False
            ) as http:
                states = await wait_caught_up(http, staff, never_in_error=True)
            marks.append(("round", time.monotonic()))

        async with httpx.AsyncClient(base_url=server.base_url, timeout=10, trust_env=False) as http:
            wm = await asyncio.to_thread(WriteModel.read, server.write_db)
            check_write_model(burst, initial, wm)
            await check_over_graphql(http, burst, staff, wm)
        write_engine = create_sync_engine(env["SHOPFRONT_WRITE_DATABASE_URL"], "log")
        read_engine = create_sync_engine(env["SHOPFRONT_READ_DATABASE_URL"], "log")
        try:
            await asyncio.to_thread(check_invariants, write_engine, read_engine)
        finally:
            write_engine.dispose()
            read_engine.dispose()
        marks.append(("checked", time.monotonic()))
    finally:
        await server.stop()

    # Every read table equals a from-scratch rebuild of the event log, row for row.
    live = await asyncio.to_thread(
        read_snapshot, server.read_db, with_dead_letters=True, timeout=READ_WAIT
    )
    rebuilt = await replay_snapshot(
        template_dir,
        tmp_path / "rebuild",
        env["SHOPFRONT_WRITE_DATABASE_URL"],
        batch_size=None,
        with_dead_letters=True,
        timeout=READ_WAIT,
    )
    marks.append(("rebuilt", time.monotonic()))
    assert not live.get("projection_dead_letters"), "events were parked after the crash"
    assert_same_tables(live, rebuilt)
    head = states[0]["headPosition"]
    checkpoints = query_rows(
        server.read_db, "SELECT name, position FROM projection_checkpoints", timeout=READ_WAIT
    )
    assert {c["position"] for c in checkpoints} == {head}, checkpoints

    elapsed = time.monotonic() - started
    print(
        f"\ncrash safety (seed {seed_value}): "
        + "; ".join(f"round {n + 1}: {summary}" for n, summary in enumerate(rounds))
        + f"\n  all rounds: {figures(burst)}"
        + f"\n  after the last restart: {len(wm.orders)} orders, event log head {head}, "
        f"{sum(len(rows) for rows in live.values())} read rows equal to a rebuild; "
        f"{elapsed:.1f} s in all ("
        + ", ".join(f"{m[0]} {m[1] - p[1]:.1f}" for p, m in itertools.pairwise(marks))
        + ")"
    )
