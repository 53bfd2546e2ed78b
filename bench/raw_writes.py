"""The baseline of placeOrder: the same statements the placeOrder command runs on the
write model and the event log, through the stdlib sqlite3 module, one transaction and one
commit per order, with the write engine's pragmas (WAL, synchronous=FULL, foreign keys).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

FIND_IDEMPOTENT = (
    "SELECT id, request_hash FROM orders WHERE customer_id = ? AND idempotency_key = ?"
)
RESERVE = (
    "UPDATE products SET stock_reserved = stock_reserved + ? "
    "WHERE id = ? AND stock_on_hand - stock_reserved >= ?"
)
INSERT_ORDER = (
    "INSERT INTO orders (id, customer_id, status, currency, total_cents, item_count, version, "
    "idempotency_key, request_hash, placed_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_LINE = (
    "INSERT INTO order_lines (order_id, line_no, product_id, sku, product_name, quantity, "
    "unit_price_cents) VALUES (?,?,?,?,?,?,?)"
)
ADVANCE_HEAD = "UPDATE event_log_head SET position = position + ? WHERE id = 1"
READ_HEAD = "SELECT position FROM event_log_head WHERE id = 1"
INSERT_EVENT = (
    "INSERT INTO events (position, stream_id, stream_version, type, schema_version, payload, "
    "occurred_at, command_id) VALUES (?,?,?,?,?,?,?,?)"
)


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _stamp(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLAlchemy stores DateTime on SQLite


Priced = tuple[str, str, str, int, int]  # sku, product id, name, quantity, unit price


def request_hash(lines: Sequence[tuple[str, int]]) -> str:
    canonical = ";".join(f"{sku}={qty}" for sku, qty in sorted(lines))
    return hashlib.sha256(canonical.encode()).hexdigest()


def price(lines: Sequence[tuple[str, int]], found: Mapping[str, Sequence[Any]]) -> list[Priced]:
    """Each line priced from its product row (id, sku, name, price, on hand, reserved);
    refused when the stock left is short."""
    priced = []
    for sku, qty in lines:
        pid, _, name, unit, on_hand, reserved = found[sku]
        if on_hand - reserved < qty:
            raise RuntimeError(f"out of stock: {sku}")
        priced.append((sku, pid, name, qty, unit))
    return priced


def placed_payload(
    order_id: str, customer_id: str, priced: Sequence[Priced], total: int, items: int
) -> str:
    """OrderPlaced's payload, as the command stores it."""
    payload = {
        "order_id": order_id,
        "customer_id": customer_id,
        "lines": [
            {
                "sku": sku,
                "product_id": pid,
                "product_name": name,
                "quantity": qty,
                "unit_price_cents": unit,
            }
            for sku, pid, name, qty, unit in priced
        ],
        "total_cents": total,
        "item_count": items,
        "currency": "EUR",
    }
    return orjson.dumps(payload).decode()


def place_order(
    conn: sqlite3.Connection, customer_id: str, lines: Sequence[tuple[str, int]], key: str
) -> str:
    """One placeOrder: idempotency check, price and reserve stock, insert the order and its
    lines, append OrderPlaced to the event log; one commit."""
    now = dt.datetime.now(dt.UTC)
    digest = request_hash(lines)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute(FIND_IDEMPOTENT, (customer_id, key)).fetchone() is not None:
            raise RuntimeError("idempotency key reused")
        skus = [sku for sku, _ in lines]
        marks = ",".join("?" * len(skus))
        found = {
            row[1]: row
            for row in conn.execute(
                "SELECT id, sku, name, price_cents, stock_on_hand, stock_reserved "
                f"FROM products WHERE sku IN ({marks})",
                skus,
            )
        }
        priced = price(lines, found)
        for _, pid, _, qty, _ in priced:
            if conn.execute(RESERVE, (qty, pid, qty)).rowcount != 1:
                raise RuntimeError("out of stock")
        total = sum(qty * price for *_, qty, price in priced)
        items = sum(qty for *_, qty, _ in priced)
        order_id = str(uuid.uuid4())
        stamp = _stamp(now)
        conn.execute(
            INSERT_ORDER,
            (
                order_id,
                customer_id,
                "PLACED",
                "EUR",
                total,
                items,
                1,
                key,
                digest,
                stamp,
                stamp,
            ),
        )
        conn.executemany(
            INSERT_LINE,
            [
                (order_id, n, pid, sku, name, qty, price)
                for n, (sku, pid, name, qty, price) in enumerate(priced, start=1)
            ],
        )
        conn.execute(ADVANCE_HEAD, (1,))
        (position,) = conn.execute(READ_HEAD).fetchone()
        conn.execute(
            INSERT_EVENT,
            (
                position,
                f"order-{order_id}",
                1,
                "OrderPlaced",
                1,
                placed_payload(order_id, customer_id, priced, total, items),
                stamp,
                str(uuid.uuid4()),
            ),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return order_id


def run(
    path: Path,
    customers: Sequence[str],
    orders: Sequence[Sequence[tuple[str, int]]],
    duration: float,
    rng: random.Random,
) -> tuple[int, float]:
    """Place orders for ``duration`` seconds; return (orders committed, seconds)."""
    conn = connect(path)
    try:
        return timed(functools.partial(place_order, conn), customers, orders, duration, rng)
    finally:
        conn.close()


def timed(
    place: Callable[[str, Sequence[tuple[str, int]], str], object],
    customers: Sequence[str],
    orders: Sequence[Sequence[tuple[str, int]]],
    duration: float,
    rng: random.Random,
) -> tuple[int, float]:
    """``place(customer, lines, idempotency key)`` for ``duration`` seconds, a random
    customer and order each time; (orders placed, seconds)."""
    run_id = uuid.uuid4().hex[:10]
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < duration:
        place(rng.choice(customers), rng.choice(orders), f"raw-{run_id}-{done}")
        done += 1
    return done, time.perf_counter() - started
