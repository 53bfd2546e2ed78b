"""Sales dashboard screen (staff): orders, net revenue, orders by status, top products
(``salesDashboard``).

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
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as e
from domain.events import Event
from domain.model import OrderStatus
from projections.base import Handlers, OneTableProjector, OrderChange, StoredEvent, fold
from projections.reads import P, Query, Row, fetch_all
from projections.tables import metadata

# One row per figure. kind = 'total' (key 'all'), 'status' (key = order status) or
# 'product' (key = sku, label = product name).
sales_dashboard = sa.Table(
    "sales_dashboard",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("tally", sa.Integer, nullable=False),  # orders, or units sold
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Index("ix_sales_dashboard_rank", "kind", "tally"),
)

Key = tuple[str, str]


# -- projector ---------------------------------------------------------------------------
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

    def moved(self, old: str, new: OrderStatus) -> None:
        self.add("status", old, -1)
        self.add("status", new, 1)

    def lines(self, lines: tuple[e.OrderLineData, ...], sign: int) -> None:
        for line in lines:
            self.add(
                "product",
                line.sku,
                sign * line.quantity,
                sign * line.quantity * line.unit_price_cents,
                line.product_name,
            )


def _order_placed(d: _Deltas, ev: StoredEvent[e.OrderPlaced]) -> None:
    d.add("total", "all", 1)
    d.add("status", OrderStatus.PLACED, 1)


def _order_paid(d: _Deltas, ev: StoredEvent[e.OrderPaid]) -> None:
    d.moved(OrderStatus.PLACED, OrderStatus.PAID)
    d.add("total", "all", 0, ev.data.amount_cents)
    d.lines(ev.data.lines, 1)


def _order_shipped(d: _Deltas, ev: StoredEvent[e.OrderShipped]) -> None:
    d.moved(OrderStatus.PAID, OrderStatus.SHIPPED)


def _order_delivered(d: _Deltas, ev: StoredEvent[e.OrderDelivered]) -> None:
    d.moved(OrderStatus.SHIPPED, OrderStatus.DELIVERED)


def _order_cancelled(d: _Deltas, ev: StoredEvent[e.OrderCancelled]) -> None:
    data = ev.data
    d.moved(data.previous_status, OrderStatus.CANCELLED)
    if data.previous_status == OrderStatus.PAID:
        d.add("total", "all", 0, -data.refunded_cents)
        d.lines(data.lines, -1)


HANDLERS: Handlers[_Deltas] = {
    e.OrderPlaced: _order_placed,
    e.OrderPaid: _order_paid,
    e.OrderShipped: _order_shipped,
    e.OrderDelivered: _order_delivered,
    e.OrderCancelled: _order_cancelled,
}


@dataclasses.dataclass(frozen=True)
class SalesDashboardProjector(OneTableProjector):
    name: str = "sales_dashboard"
    table: sa.Table = sales_dashboard

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
        d = fold(HANDLERS, _Deltas(), events)
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


# -- reads -------------------------------------------------------------------------------
_FIGURES = Query.of(
    sa.select(sales_dashboard).where(sales_dashboard.c.kind.in_(("total", "status")))
)
_TOP = Query.of(
    sa.select(sales_dashboard)
    .where(sales_dashboard.c.kind == "product", sales_dashboard.c.tally > 0)
    .order_by(
        sales_dashboard.c.tally.desc(), sales_dashboard.c.amount_cents.desc(), sales_dashboard.c.key
    )
    .limit(P("limit"))
)


async def dashboard_rows(engine: AsyncEngine, top: int) -> tuple[Sequence[Row], Sequence[Row]]:
    """(total and per-status rows, the ``top`` best-selling product rows)."""
    figures = await fetch_all(engine, _FIGURES)
    products = await fetch_all(engine, _TOP, {"limit": top})
    return figures, products
