"""Shared by the integration tests: a model-checked random shopper, read-model snapshots,
from-scratch rebuilds into a fresh read database, and invariants against the write model.

Not a conftest (``tests/conftest.py`` already owns that module name); imported directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from api.database import create_sync_engine
from domain import commands as c
from domain import write_tables as w
from domain.bus import CommandBus, CommandResult
from domain.model import EMAIL_PATTERN, DomainError, OrderStatus
from projections import read_tables as r
from projections.engine.event_source import head_position
from projections.engine.read_side import ReadSide as ProjectionRunner
from projections.rebuild import swap
from projections.registry import PROJECTORS
from tests.conftest import fresh_url

STAFF = c.Actor("staff-test", "staff")
# The screens' tables (bookkeeping of the runner itself is not a screen).
READ_TABLES: tuple[sa.Table, ...] = tuple(
    t
    for t in r.metadata.sorted_tables
    if t.name
    not in (r.projection_checkpoints.name, r.projection_dead_letters.name, r.projection_leader.name)
)
JSON_COLUMNS = frozenset({"doc"})

Snapshot = dict[str, list[dict[str, Any]]]


# -- read-model snapshots and rebuilds ------------------------------------------------------
def snapshot(engine: Engine, tables: Sequence[sa.Table] = READ_TABLES) -> Snapshot:
    """Every row of every read table, JSON documents parsed, sorted by primary key."""
    result: Snapshot = {}
    with engine.connect() as conn:
        for table in tables:
            key = [col.name for col in table.primary_key.columns]
            rows = [
                {
                    name: orjson.loads(value) if name in JSON_COLUMNS else value
                    for name, value in row.items()
                }
                for row in conn.execute(sa.select(table)).mappings()
            ]
            rows.sort(key=lambda row: tuple(str(row[k]) for k in key))
            result[table.name] = rows
    return result


def checkpoints(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(r.projection_checkpoints.c.name, r.projection_checkpoints.c.position)
        )
        return {str(name): int(position) for name, position in rows}


def fresh_read_db(template_dir: Path, target: Path) -> str:
    """A fresh migrated, empty read database (the run's backend); returns its URL."""
    return fresh_url(template_dir, target, "read")


async def replay_snapshot(
    template_dir: Path, target: Path, log_engine: Engine, *, batch_size: int = 500
) -> Snapshot:
    """Project the whole event log from scratch into a fresh read database with the live
    runner's own loop (``catch_up``), and snapshot it: the oracle a rebuild is held to."""
    engine = create_sync_engine(fresh_read_db(template_dir, target), "projector")
    runner = ProjectionRunner(log_engine, engine, PROJECTORS, batch_size=batch_size)
    try:
        await runner.catch_up(timeout=60)
        assert not runner.errors, runner.errors
        return await asyncio.to_thread(snapshot, engine)
    finally:
        runner.close()
        engine.dispose()


async def rebuild_snapshot(template_dir: Path, target: Path, log_engine: Engine) -> Snapshot:
    """Rebuild every projection from the whole event log into a fresh read database with
    ``projections/rebuild/swap.py`` (what ``shopfront projections rebuild`` runs: replay into
    shadow tables, swap them in), and snapshot it."""
    engine = create_sync_engine(fresh_read_db(template_dir, target), "projector")
    try:
        position = await asyncio.to_thread(swap.rebuild, log_engine, engine, PROJECTORS)
        with log_engine.connect() as conn:
            assert position == head_position(conn), "the rebuild stopped short of the head"
        return await asyncio.to_thread(snapshot, engine)
    finally:
        engine.dispose()


def assert_snapshots_equal(actual: Snapshot, expected: Snapshot) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        got, want = actual[name], expected[name]
        assert len(got) == len(want), f"{name}: {len(got)} rows, rebuild has {len(want)}"
        for got_row, want_row in zip(got, want, strict=True):
            assert got_row == want_row, f"{name} differs from the rebuild"


# -- invariants against the write model -----------------------------------------------------
def check_invariants(write_engine: Engine, read_engine: Engine) -> None:
    """The read models agree with the write model, and the event log is well formed."""
    with write_engine.connect() as wc, read_engine.connect() as rc:
        _check_stock(wc, rc)
        _check_orders(wc, rc)
        _check_event_log(wc)


def _check_stock(wc: sa.Connection, rc: sa.Connection) -> None:
    products = {row.id: row for row in wc.execute(sa.select(w.products))}
    for p in products.values():
        assert p.stock_on_hand >= p.stock_reserved >= 0, p
    catalog = {row.product_id: row for row in rc.execute(sa.select(r.catalog_products))}
    assert catalog.keys() == products.keys()
    for pid, p in products.items():
        row = catalog[pid]
        assert (row.sku, row.name, row.price_cents) == (p.sku, p.name, p.price_cents)
        assert row.stock_available == p.stock_on_hand - p.stock_reserved, p.sku
    # Reserved stock is exactly what PLACED and PAID orders hold.
    held: Counter[str] = Counter()
    open_lines = (
        sa.select(w.order_lines.c.product_id, w.order_lines.c.quantity)
        .join(w.orders, w.orders.c.id == w.order_lines.c.order_id)
        .where(w.orders.c.status.in_(["PLACED", "PAID"]))
    )
    for product_id, quantity in wc.execute(open_lines):
        held[product_id] += quantity
    assert {pid: p.stock_reserved for pid, p in products.items() if p.stock_reserved} == dict(held)


def _check_orders(wc: sa.Connection, rc: sa.Connection) -> None:
    orders = {row.id: row for row in wc.execute(sa.select(w.orders))}
    payments = {row.order_id: row for row in wc.execute(sa.select(w.payments))}
    paid = {oid: p for oid, p in payments.items() if p.status == "PAID"}
    t = r.sales_dashboard
    dash = {
        (kind, key): (tally, amount)
        for kind, key, tally, amount in rc.execute(
            sa.select(t.c.kind, t.c.key, t.c.tally, t.c.amount_cents)
        )
    }
    assert dash.get(("total", "all"), (0, 0)) == (
        len(orders),
        sum(p.amount_cents for p in paid.values()),
    )
    by_status = {key: count for (kind, key), (count, _) in dash.items() if kind == "status"}
    assert {k: v for k, v in by_status.items() if v} == dict(
        Counter(o.status for o in orders.values())
    )
    sold: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in wc.execute(sa.select(w.order_lines)):
        if line.order_id in paid:
            sold[line.sku][0] += line.quantity
            sold[line.sku][1] += line.quantity * line.unit_price_cents
    product_rows = {
        key: list(figures) for (kind, key), figures in dash.items() if kind == "product"
    }
    assert {k: v for k, v in product_rows.items() if v != [0, 0]} == dict(sold)

    customers = {row.id: row for row in wc.execute(sa.select(w.customers))}
    profiles = {row.customer_id: row for row in rc.execute(sa.select(r.customer_profiles))}
    assert profiles.keys() == customers.keys()
    count = Counter(o.customer_id for o in orders.values())
    spend: Counter[str] = Counter()
    for oid, p in paid.items():
        spend[orders[oid].customer_id] += p.amount_cents
    for cid, customer in customers.items():
        profile = profiles[cid]
        assert (profile.email, profile.name) == (customer.email, customer.name)
        assert profile.order_count == count[cid], cid
        assert profile.lifetime_spend_cents == spend[cid], cid

    queue = list(rc.execute(sa.select(r.fulfillment_queue)))
    assert {q.order_id for q in queue if q.paid_sort_key is not None} == {
        oid for oid, o in orders.items() if o.status == "PAID"
    }
    assert {q.order_id for q in queue if q.paid_sort_key is None} == {
        oid for oid, o in orders.items() if o.status == "PLACED"
    }
    details = {row.order_id: row for row in rc.execute(sa.select(r.order_detail))}
    history = {row.order_id: row for row in rc.execute(sa.select(r.order_history))}
    assert details.keys() == orders.keys() == history.keys()
    for oid, o in orders.items():
        doc = orjson.loads(details[oid].doc)
        assert (details[oid].version, doc["status"], doc["total_cents"]) == (
            o.version,
            o.status,
            o.total_cents,
        )
        assert (history[oid].status, history[oid].customer_id) == (o.status, o.customer_id)
        payment = payments.get(oid)
        assert (doc["payment"] or {}).get("status") == (payment.status if payment else None)


def _check_event_log(wc: sa.Connection) -> None:
    rows = list(
        wc.execute(
            sa.select(
                w.events.c.position, w.events.c.stream_id, w.events.c.stream_version
            ).order_by(w.events.c.position)
        )
    )
    assert [row.position for row in rows] == list(range(1, len(rows) + 1))
    head = wc.scalar(sa.select(w.event_log_head.c.position).where(w.event_log_head.c.id == 1))
    assert head == len(rows)
    streams: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        streams[row.stream_id].append(row.stream_version)
    for stream, versions in streams.items():
        assert versions == list(range(1, len(versions) + 1)), stream
    for o in wc.execute(sa.select(w.orders.c.id, w.orders.c.version)):
        assert len(streams[f"order-{o.id}"]) == o.version
    for p in wc.execute(sa.select(w.products.c.id, w.products.c.version)):
        assert len(streams[f"product-{p.id}"]) == p.version
    for cust in wc.execute(sa.select(w.customers.c.id)):
        assert len(streams[f"customer-{cust.id}"]) == 1


# -- a random shopper whose every outcome is predicted by a plain model ----------------------
@dataclasses.dataclass
class ProductModel:
    on_hand: int
    reserved: int
    price: int


@dataclasses.dataclass
class OrderModel:
    id: str
    owner: c.Actor
    status: OrderStatus
    lines: dict[str, int]


@dataclasses.dataclass
class ShopModel:
    """What the shop should look like; predicts each command's outcome before it runs."""

    customers: list[c.Actor] = dataclasses.field(default_factory=list)
    emails: set[str] = dataclasses.field(default_factory=set)
    products: dict[str, ProductModel] = dataclasses.field(default_factory=dict)
    orders: list[OrderModel] = dataclasses.field(default_factory=list)
    keys: dict[tuple[str, str], tuple[str, tuple[c.LineRequest, ...]]] = dataclasses.field(
        default_factory=dict
    )
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)

    def predict(self, cmd: c.Command) -> str | None:
        """The error code the command must be refused with, or None if it must succeed."""
        if isinstance(cmd, c.RegisterCustomer):
            email = cmd.email.strip().lower()
            if not EMAIL_PATTERN.fullmatch(email):
                return "INVALID_INPUT"
            return "EMAIL_TAKEN" if email in self.emails else None
        if isinstance(cmd, c.AddProduct | c.RestockProduct | c.ChangeProductPrice):
            if cmd.actor is None:
                return "UNAUTHENTICATED"
            if not cmd.actor.is_staff:
                return "FORBIDDEN"
            if isinstance(cmd, c.AddProduct):
                return "SKU_TAKEN" if cmd.sku in self.products else None
            if isinstance(cmd, c.RestockProduct) and cmd.quantity < 1:
                return "INVALID_INPUT"
            return None if cmd.sku in self.products else "UNKNOWN_SKU"
        if isinstance(cmd, c.PlaceOrder):
            return self._predict_place(cmd)
        order_id = getattr(cmd, "order_id", None)
        order = next((o for o in self.orders if o.id == order_id), None)
        if order is None:
            return "NOT_FOUND"
        action = _ACTIONS[type(cmd)]
        actor = cmd.actor
        if actor is None:
            return "UNAUTHENTICATED"
        if action in ("ship", "deliver"):
            if not actor.is_staff:
                return "FORBIDDEN"
        elif not (actor.id == order.owner.id or (action == "cancel" and actor.is_staff)):
            return "FORBIDDEN" if actor.is_staff else "NOT_FOUND"
        allowed = {
            "pay": {OrderStatus.PLACED},
            "cancel": {OrderStatus.PLACED, OrderStatus.PAID},
            "ship": {OrderStatus.PAID},
            "deliver": {OrderStatus.SHIPPED},
        }[action]
        return None if order.status in allowed else "INVALID_STATE"

    def _predict_place(self, cmd: c.PlaceOrder) -> str | None:
        if cmd.actor is None:
            return "UNAUTHENTICATED"
        if cmd.actor.is_staff:
            return "FORBIDDEN"
        if cmd.idempotency_key is not None:
            earlier = self.keys.get((cmd.actor.id, cmd.idempotency_key))
            if earlier is not None:
                same = _canonical(earlier[1]) == _canonical(cmd.lines)
                return None if same else "IDEMPOTENCY_KEY_REUSED"
        for line in cmd.lines:
            product = self.products.get(line.sku)
            if product is None:
                return "UNKNOWN_SKU"
            if product.on_hand - product.reserved < line.quantity:
                return "OUT_OF_STOCK"
        return None

    def apply(self, cmd: c.Command, result: CommandResult) -> None:
        """Follow a command that succeeded."""
        if isinstance(cmd, c.RegisterCustomer):
            self.emails.add(cmd.email.strip().lower())
            self.customers.append(c.Actor(result.entity_id, "customer"))
        elif isinstance(cmd, c.AddProduct):
            self.products[cmd.sku] = ProductModel(cmd.stock, 0, cmd.price_cents)
        elif isinstance(cmd, c.RestockProduct):
            self.products[cmd.sku].on_hand += cmd.quantity
        elif isinstance(cmd, c.ChangeProductPrice):
            self.products[cmd.sku].price = cmd.price_cents
        elif isinstance(cmd, c.PlaceOrder):
            self._apply_place(cmd, result)
        else:
            self._apply_transition(cmd, result)

    def _apply_place(self, cmd: c.PlaceOrder, result: CommandResult) -> None:
        assert cmd.actor is not None
        if cmd.idempotency_key is not None:
            earlier = self.keys.get((cmd.actor.id, cmd.idempotency_key))
            if earlier is not None:
                assert result.entity_id == earlier[0], "an idempotent replay made a new order"
                assert result.events == (), "an idempotent replay recorded events"
                return
            self.keys[(cmd.actor.id, cmd.idempotency_key)] = (result.entity_id, cmd.lines)
        for line in cmd.lines:
            self.products[line.sku].reserved += line.quantity
        lines = {line.sku: line.quantity for line in cmd.lines}
        self.orders.append(OrderModel(result.entity_id, cmd.actor, OrderStatus.PLACED, lines))

    def _apply_transition(self, cmd: c.Command, result: CommandResult) -> None:
        order = next(o for o in self.orders if o.id == result.entity_id)
        action = _ACTIONS[type(cmd)]
        if action in ("cancel", "ship"):
            for sku, quantity in order.lines.items():
                self.products[sku].reserved -= quantity
                if action == "ship":
                    self.products[sku].on_hand -= quantity
        order.status = {
            "pay": OrderStatus.PAID,
            "cancel": OrderStatus.CANCELLED,
            "ship": OrderStatus.SHIPPED,
            "deliver": OrderStatus.DELIVERED,
        }[action]

    def check_write_model(self, engine: Engine) -> None:
        with engine.connect() as conn:
            stock = {
                row.sku: (row.stock_on_hand, row.stock_reserved, row.price_cents)
                for row in conn.execute(sa.select(w.products))
            }
            status = {row.id: row.status for row in conn.execute(sa.select(w.orders))}
        assert stock == {sku: (p.on_hand, p.reserved, p.price) for sku, p in self.products.items()}
        assert status == {o.id: o.status.value for o in self.orders}


def _canonical(lines: Sequence[c.LineRequest]) -> list[tuple[str, int]]:
    return sorted((line.sku, line.quantity) for line in lines)


_ACTIONS: dict[type[c.Command], str] = {
    c.PayOrder: "pay",
    c.CancelOrder: "cancel",
    c.ShipOrder: "ship",
    c.DeliverOrder: "deliver",
}


class Shopper:
    """Draws commands of every kind, valid and not, from ``rng``, against ``model``."""

    def __init__(self, rng: random.Random, model: ShopModel) -> None:
        self.rng = rng
        self.model = model
        self.tag = f"{rng.randrange(16**6):06x}"

    def command(self) -> c.Command:
        rng, m = self.rng, self.model
        if len(m.customers) < 3 or rng.random() < 0.04:
            return self._register()
        if len(m.products) < 3 or rng.random() < 0.04:
            return self._add_product()
        kind = rng.choices(
            ["restock", "price", "place", "pay", "cancel", "ship", "deliver", "stranger"],
            weights=[6, 5, 30, 18, 10, 14, 10, 2],
        )[0]
        if kind == "restock":
            sku = self._sku(unknown=0.15)
            quantity = 0 if rng.random() < 0.1 else rng.choice([3, 10, 30])
            return c.RestockProduct(self._staff(), sku, quantity)
        if kind == "price":
            sku = self._sku(unknown=0.15)
            known = m.products.get(sku)
            same = known is not None and rng.random() < 0.2
            price = known.price if same and known else rng.randrange(100, 5000)
            return c.ChangeProductPrice(self._staff(), sku, price)
        if kind == "place":
            return self._place()
        if kind == "stranger":
            return c.PayOrder(rng.choice(m.customers), str(uuid.UUID(int=rng.getrandbits(128))))
        if not m.orders:
            return self._place()
        if kind == "pay":
            order = self._order(OrderStatus.PLACED)
            return c.PayOrder(self._owner_or_other(order, staff=0.03), order.id)
        if kind == "cancel":
            order = self._order(rng.choice([OrderStatus.PLACED, OrderStatus.PAID]))
            actor = STAFF if rng.random() < 0.3 else self._owner_or_other(order, staff=0.0)
            return c.CancelOrder(actor, order.id, rng.choice([None, "", "changed my mind"]))
        if kind == "ship":
            order = self._order(OrderStatus.PAID)
            actor = STAFF if rng.random() < 0.95 else order.owner
            carrier = rng.choice(["DHL", "UPS"])
            return c.ShipOrder(actor, order.id, carrier, f"T{rng.randrange(10**6)}")
        order = self._order(OrderStatus.SHIPPED)
        return c.DeliverOrder(STAFF if rng.random() < 0.95 else None, order.id)

    def _order(self, wanted: OrderStatus) -> OrderModel:
        """Mostly an order the command suits; sometimes any order (an invalid transition)."""
        suited = [o for o in self.model.orders if o.status == wanted]
        if suited and self.rng.random() < 0.75:
            return self.rng.choice(suited)
        return self.rng.choice(self.model.orders)

    def _register(self) -> c.RegisterCustomer:
        rng, m = self.rng, self.model
        if m.emails and rng.random() < 0.25:
            email = rng.choice(sorted(m.emails)).upper()  # taken, whatever its case
        elif rng.random() < 0.03:
            email = "not-an-email"
        else:
            email = f"c{len(m.customers)}-{self.tag}-{rng.randrange(10**6)}@example.com"
        return c.RegisterCustomer(None, email, f"Customer {len(m.customers)}")

    def _add_product(self) -> c.AddProduct:
        rng, m = self.rng, self.model
        if m.products and rng.random() < 0.1:
            sku = rng.choice(sorted(m.products))
        else:
            sku = f"SKU-{self.tag}-{len(m.products)}-{rng.randrange(1000)}"
        actor = STAFF if rng.random() < 0.95 else (rng.choice(m.customers) if m.customers else None)
        return c.AddProduct(
            actor,
            sku,
            f"Product {sku}",
            rng.randrange(100, 5000),
            rng.choice([0, 5, 10, 20, 40]),
            rng.choice([None, "A thing"]),
        )

    def _place(self) -> c.PlaceOrder:
        rng, m = self.rng, self.model
        skus = rng.sample(sorted(m.products), k=min(len(m.products), rng.randint(1, 3)))
        if rng.random() < 0.08:
            skus.insert(rng.randrange(len(skus) + 1), f"NOPE-{rng.randrange(1000)}")
        lines = tuple(c.LineRequest(sku, rng.randint(1, 4)) for sku in skus)
        actor = STAFF if rng.random() < 0.03 else rng.choice(m.customers)
        key = None
        if rng.random() < 0.15:
            key = f"key-{rng.randrange(6)}"
            earlier = m.keys.get((actor.id, key))
            if earlier is not None and rng.random() < 0.7:
                lines = earlier[1]  # a genuine retry
        return c.PlaceOrder(actor, lines, key)

    def _sku(self, unknown: float) -> str:
        if self.rng.random() < unknown:
            return f"NOPE-{self.rng.randrange(1000)}"
        return self.rng.choice(sorted(self.model.products))

    def _staff(self) -> c.Actor | None:
        roll = self.rng.random()
        if roll < 0.03:
            return None
        if roll < 0.06:
            return self.rng.choice(self.model.customers)
        return STAFF

    def _owner_or_other(self, order: OrderModel, *, staff: float) -> c.Actor:
        roll = self.rng.random()
        if roll < staff:
            return STAFF
        if roll < staff + 0.05:
            return self.rng.choice(self.model.customers)
        return order.owner


async def run_shopper(
    bus: CommandBus,
    model: ShopModel,
    rng: random.Random,
    count: int,
    *,
    group_chance: float = 0.1,
) -> int:
    """Run ``count`` random commands through the bus, one by one or in group commits, and
    check each outcome against the model. Returns the last event position written."""
    shopper = Shopper(rng, model)
    positions = [0]
    done = 0
    while done < count:
        if rng.random() < group_chance:
            group = [shopper.command() for _ in range(min(rng.randint(2, 8), count - done))]
            # A group runs its commands in order, each in its own savepoint, so predict
            # them in order too.
            outcomes = await bus.execute_many(group)
        else:
            group = [shopper.command()]
            try:
                outcomes = [await bus.execute(group[0])]
            except DomainError as error:
                outcomes = [error]
        for cmd, outcome in zip(group, outcomes, strict=True):
            _follow(model, cmd, model.predict(cmd), outcome)
            if isinstance(outcome, CommandResult) and outcome.position:
                positions.append(outcome.position)
        done += len(group)
    return max(positions)


def _follow(
    model: ShopModel, cmd: c.Command, want: str | None, outcome: CommandResult | DomainError
) -> None:
    got = outcome.code if isinstance(outcome, DomainError) else None
    assert got == want, f"{cmd}: expected {want or 'success'}, got {got or 'success'}"
    model.outcomes[f"{type(cmd).__name__}:{got or 'ok'}"] += 1
    if isinstance(outcome, CommandResult):
        model.apply(cmd, outcome)
