"""Sales dashboard screen (staff): orders, net revenue, orders by status, top products.

Revenue and units sold count when an order is paid and are taken back when a paid order
is cancelled. A batch is folded into per-figure deltas, then written once per figure.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain import events as e
from domain.events import Event
from projections.base import OneTableProjector, OrderChange, StoredEvent
from projections.read_tables import sales_dashboard as t

Key = tuple[str, str]
NEXT_STATUS = {
    "OrderPaid": ("PLACED", "PAID"),
    "OrderShipped": ("PAID", "SHIPPED"),
    "OrderDelivered": ("SHIPPED", "DELIVERED"),
}


class _Deltas:
    def __init__(self) -> None:
        self.values: dict[Key, list[int]] = {}
        self.labels: dict[Key, str] = {}

    def add(
        self, kind: str, key: str, count: int, amount: int = 0, label: str | None = None
    ) -> None:
        delta = self.values.setdefault((kind, key), [0, 0])
        delta[0] += count
        delta[1] += amount
        if label is not None:
            self.labels[(kind, key)] = label

    def lines(self, lines: tuple[e.OrderLineData, ...], sign: int) -> None:
        for line in lines:
            self.add(
                "product",
                line.sku,
                sign * line.quantity,
                sign * line.quantity * line.unit_price_cents,
                line.product_name,
            )


@dataclasses.dataclass(frozen=True)
class SalesDashboardProjector(OneTableProjector):
    name: str = "sales_dashboard"
    table: sa.Table = t

    @functools.cached_property
    def _update(self) -> sa.Update:
        t = self.table  # built once: construction costs more than running it
        return (
            t.update()
            .where(t.c.kind == sa.bindparam("k_kind"), t.c.key == sa.bindparam("k_key"))
            .values(
                tally=t.c.tally + sa.bindparam("d_count"),
                amount_cents=t.c.amount_cents + sa.bindparam("d_amount"),
            )
        )

    def apply(
        self, conn: Connection, events: Sequence[StoredEvent[Event]]
    ) -> Sequence[OrderChange]:
        d = _Deltas()
        for ev in events:
            data = ev.data
            if isinstance(data, e.OrderPlaced):
                d.add("total", "all", 1)
                d.add("status", "PLACED", 1)
            elif isinstance(data, e.OrderCancelled):
                d.add("status", data.previous_status, -1)
                d.add("status", "CANCELLED", 1)
                if data.previous_status == "PAID":
                    d.add("total", "all", 0, -data.refunded_cents)
                    d.lines(data.lines, -1)
            elif ev.type in NEXT_STATUS:
                old, new = NEXT_STATUS[ev.type]
                d.add("status", old, -1)
                d.add("status", new, 1)
                if isinstance(data, e.OrderPaid):
                    d.add("total", "all", 0, data.amount_cents)
                    d.lines(data.lines, 1)
        if d.values:
            _write(conn, self.table, self._update, d)
        return ()


def _write(conn: Connection, t: sa.Table, update: sa.Update, d: _Deltas) -> None:
    existing = {
        (row.kind, row.key)
        for row in conn.execute(
            sa.select(t.c.kind, t.c.key).where(sa.tuple_(t.c.kind, t.c.key).in_(list(d.values)))
        )
    }
    new: list[dict[str, Any]] = []
    old: list[dict[str, Any]] = []
    for (kind, key), (count, amount) in d.values.items():
        if (kind, key) in existing:
            old.append({"k_kind": kind, "k_key": key, "d_count": count, "d_amount": amount})
        else:
            new.append(
                {
                    "kind": kind,
                    "key": key,
                    "label": d.labels.get((kind, key)),
                    "tally": count,
                    "amount_cents": amount,
                }
            )
    if old:
        conn.execute(update, old)
    if new:
        conn.execute(t.insert(), new)


projector = SalesDashboardProjector()
