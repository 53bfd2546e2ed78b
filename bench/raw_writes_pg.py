"""The baseline of placeOrder on PostgreSQL: the statements of bench/raw_writes.py (the
ones the placeOrder command runs) through psycopg on one connection, one transaction and
one commit per order. As the command does on PostgreSQL, the products are read FOR UPDATE;
positions come from the same counter row (its row lock orders appenders)."""

from __future__ import annotations

import datetime as dt
import functools
import random
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from bench.raw_writes import placed_payload, price, request_hash, timed

FIND_IDEMPOTENT = (
    "SELECT id, request_hash FROM orders WHERE customer_id = %s AND idempotency_key = %s"
)
PRODUCTS = (
    "SELECT id, sku, name, price_cents, stock_on_hand, stock_reserved "
    "FROM products WHERE sku = ANY(%s) FOR UPDATE"
)
RESERVE = (
    "UPDATE products SET stock_reserved = stock_reserved + %s "
    "WHERE id = %s AND stock_on_hand - stock_reserved >= %s"
)
INSERT_ORDER = (
    "INSERT INTO orders (id, customer_id, status, currency, total_cents, item_count, version, "
    "idempotency_key, request_hash, placed_at, updated_at) "
    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)
INSERT_LINE = (
    "INSERT INTO order_lines (order_id, line_no, product_id, sku, product_name, quantity, "
    "unit_price_cents) VALUES (%s,%s,%s,%s,%s,%s,%s)"
)
ADVANCE_HEAD = "UPDATE event_log_head SET position = position + %s WHERE id = 1"
READ_HEAD = "SELECT position FROM event_log_head WHERE id = 1"
INSERT_EVENT = (
    "INSERT INTO events (position, stream_id, stream_version, type, schema_version, payload, "
    "occurred_at, command_id) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
)
RESTOCK = "UPDATE products SET stock_on_hand = stock_on_hand + %s WHERE sku = %s"


def conninfo(url: str) -> str:
    """psycopg's connection string for a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(conninfo(url))


def place_order(
    conn: psycopg.Connection[tuple[Any, ...]],
    customer_id: str,
    lines: Sequence[tuple[str, int]],
    key: str,
) -> str:
    """One placeOrder: idempotency check, price and reserve stock, insert the order and its
    lines, append OrderPlaced to the event log; one commit."""
    now = dt.datetime.now(dt.UTC)
    digest = request_hash(lines)
    with conn.transaction(), conn.cursor() as cur:
        if cur.execute(FIND_IDEMPOTENT, (customer_id, key)).fetchone() is not None:
            raise RuntimeError("idempotency key reused")
        found = {row[1]: row for row in cur.execute(PRODUCTS, ([s for s, _ in lines],))}
        priced = price(lines, found)
        for _, pid, _, qty, _ in priced:
            if cur.execute(RESERVE, (qty, pid, qty)).rowcount != 1:
                raise RuntimeError("out of stock")
        total = sum(qty * price for *_, qty, price in priced)
        items = sum(qty for *_, qty, _ in priced)
        order_id = str(uuid.uuid4())
        cur.execute(
            INSERT_ORDER,
            (order_id, customer_id, "PLACED", "EUR", total, items, 1, key, digest, now, now),
        )
        cur.executemany(
            INSERT_LINE,
            [
                (order_id, n, pid, sku, name, qty, price)
                for n, (sku, pid, name, qty, price) in enumerate(priced, start=1)
            ],
        )
        cur.execute(ADVANCE_HEAD, (1,))
        head = cur.execute(READ_HEAD).fetchone()
        assert head is not None
        cur.execute(
            INSERT_EVENT,
            (
                head[0],
                f"order-{order_id}",
                1,
                "OrderPlaced",
                1,
                placed_payload(order_id, customer_id, priced, total, items),
                now,
                str(uuid.uuid4()),
            ),
        )
    return order_id


def run(
    url: str,
    customers: Sequence[str],
    orders: Sequence[Sequence[tuple[str, int]]],
    duration: float,
    rng: random.Random,
) -> tuple[int, float]:
    """Place orders for ``duration`` seconds; return (orders committed, seconds)."""
    with connect(url) as conn:
        conn.autocommit = True  # each order's transaction() is its own BEGIN ... COMMIT
        return timed(functools.partial(place_order, conn), customers, orders, duration, rng)


def restock(url: str, skus: Sequence[str], quantity: int) -> None:
    with connect(url) as conn, conn.cursor() as cur:
        cur.executemany(RESTOCK, [(quantity, sku) for sku in skus])


def count_orders(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
        return 0 if row is None else int(row[0])
