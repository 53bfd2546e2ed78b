"""The order history screen two ways, in-process with sqlite3: from its read table (one
indexed read of ready documents) and computed by joins on the write model (orders, lines,
payments, shipments, and the order's events for the timeline)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.screens import Json, global_id, order_node

READ_PAGE = "SELECT doc FROM order_history WHERE customer_id = ? ORDER BY sort_key DESC LIMIT ?"
JOIN_PAGE = """
WITH page AS (
    SELECT id, status, currency, total_cents, item_count, placed_at, updated_at
    FROM orders WHERE customer_id = ? ORDER BY placed_at DESC, id DESC LIMIT ?
)
SELECT p.id, p.status, p.currency, p.total_cents, p.item_count, p.placed_at, p.updated_at,
       l.sku, l.product_name, l.quantity, l.unit_price_cents,
       pay.status, pay.amount_cents, s.carrier, s.tracking_number, s.status
FROM page p
JOIN order_lines l ON l.order_id = p.id
LEFT JOIN payments pay ON pay.order_id = p.id
LEFT JOIN shipments s ON s.order_id = p.id
ORDER BY p.placed_at DESC, p.id DESC, l.line_no
"""
TIMELINE = (
    "SELECT stream_id, type, occurred_at FROM events WHERE stream_id IN ({}) "
    "ORDER BY stream_id, stream_version"
)
STATUS_OF = {
    "OrderPlaced": "PLACED",
    "OrderPaid": "PAID",
    "OrderShipped": "SHIPPED",
    "OrderDelivered": "DELIVERED",
    "OrderCancelled": "CANCELLED",
}
Page = tuple[list[Json], bool]


def _time(value: str | None) -> str | None:
    """A write-model time (naive UTC, as SQLAlchemy stores it) as GraphQL writes it."""
    if value is None:
        return None
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC).isoformat()


def read_page(conn: sqlite3.Connection, customer_id: str, first: int) -> Page:
    rows = conn.execute(READ_PAGE, (customer_id, first + 1)).fetchall()
    return [order_node(orjson.loads(doc)) for (doc,) in rows[:first]], len(rows) > first


def join_page(conn: sqlite3.Connection, customer_id: str, first: int) -> Page:
    nodes: dict[str, Json] = {}
    for row in conn.execute(JOIN_PAGE, (customer_id, first + 1)):
        (oid, status, currency, total, items, placed, updated) = row[:7]
        (sku, name, qty, price, pay_status, paid, carrier, tracking, ship_status) = row[7:]
        node = nodes.get(oid)
        if node is None:
            node = nodes[oid] = {
                "id": global_id("Order", oid),
                "status": status,
                "placedAt": _time(placed),
                "updatedAt": _time(updated),
                "totalCents": total,
                "currency": currency,
                "itemCount": items,
                "lines": [],
                "payment": None
                if pay_status is None
                else {"status": pay_status, "amountCents": paid},
                "shipment": None
                if carrier is None
                else {"carrier": carrier, "trackingNumber": tracking, "status": ship_status},
                "timeline": [],
            }
        node["lines"].append(
            {
                "sku": sku,
                "productName": name,
                "quantity": qty,
                "unitPriceCents": price,
                "lineTotalCents": qty * price,
            }
        )
    ids = list(nodes)
    page = ids[:first]
    if page:
        streams = {f"order-{oid}": nodes[oid] for oid in page}
        query = TIMELINE.format(",".join("?" * len(streams)))
        for stream_id, kind, at in conn.execute(query, list(streams)):
            streams[stream_id]["timeline"].append({"status": STATUS_OF[kind], "at": _time(at)})
    return [nodes[oid] for oid in page], len(ids) > first


def read_rows(conn: sqlite3.Connection, customer_id: str, first: int) -> list[Any]:
    """The read-table page's SQL alone: its rows, not yet decoded."""
    return conn.execute(READ_PAGE, (customer_id, first + 1)).fetchall()


def join_rows(conn: sqlite3.Connection, customer_id: str, first: int) -> list[Any]:
    """The joins' SQL alone: the joined rows and the timeline rows, not yet shaped."""
    rows = conn.execute(JOIN_PAGE, (customer_id, first + 1)).fetchall()
    streams = list(dict.fromkeys(f"order-{row[0]}" for row in rows))[:first]
    if streams:
        query = TIMELINE.format(",".join("?" * len(streams)))
        rows += conn.execute(query, streams).fetchall()
    return rows


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def compare(folder: Path, customers: Sequence[str], first: int) -> tuple[int, int, float]:
    """(pages that differ, pages compared, mean orders per page)."""
    read, write = _connect(folder / "read.db"), _connect(folder / "write.db")
    try:
        differ, orders = 0, 0
        for customer_id in customers:
            a, b = read_page(read, customer_id, first), join_page(write, customer_id, first)
            orders += len(a[0])
            if a != b:
                differ += 1
        return differ, len(customers), orders / max(len(customers), 1)
    finally:
        read.close()
        write.close()


def measure(
    folder: Path, customers: Sequence[str], first: int, seconds: float, rounds: int
) -> dict[str, Any]:
    """Pages per second each way, alternating rounds of ``seconds`` each: the whole page
    (rows fetched and shaped as the API answers), and the SQL alone."""
    read, write = _connect(folder / "read.db"), _connect(folder / "write.db")
    ways: dict[str, tuple[sqlite3.Connection, Callable[[sqlite3.Connection, str, int], object]]]
    ways = {
        "read_table": (read, read_page),
        "joins": (write, join_page),
        "read_table_sql": (read, read_rows),
        "joins_sql": (write, join_rows),
    }
    totals = {name: [0, 0.0] for name in ways}
    try:
        for conn, page in ways.values():  # warm the page caches
            for customer_id in customers:
                page(conn, customer_id, first)
        for r in range(rounds):
            order = list(ways) if r % 2 == 0 else list(reversed(ways))
            for name in order:
                conn, page = ways[name]
                done, started = 0, time.perf_counter()
                while time.perf_counter() - started < seconds:
                    for customer_id in customers:
                        page(conn, customer_id, first)
                    done += len(customers)
                totals[name][0] += done
                totals[name][1] += time.perf_counter() - started
    finally:
        read.close()
        write.close()
    per_second = {name: pages / secs for name, (pages, secs) in totals.items()}
    figures: dict[str, Any] = {}
    for name, rate in per_second.items():
        figures[f"{name}_pages_per_s"] = rate
        figures[f"{name}_us_per_page"] = 1e6 / rate
    return figures
