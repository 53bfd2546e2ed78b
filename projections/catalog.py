"""Catalog screen: products with price and the stock a customer can still order.

A batch is folded in memory first (new products, last price, net stock change per
product), then written with one statement per kind of change.
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
from projections.read_tables import catalog_products as t


def _update(t: sa.Table) -> sa.Update:
    return (
        t.update()
        .where(t.c.product_id == sa.bindparam("pid"))
        .values(
            stock_available=t.c.stock_available + sa.bindparam("stock_delta"),
            price_cents=sa.func.coalesce(
                sa.bindparam("new_price", type_=sa.Integer), t.c.price_cents
            ),
            updated_at=sa.func.coalesce(
                sa.bindparam("changed_at", type_=t.c.updated_at.type), t.c.updated_at
            ),
        )
    )


@dataclasses.dataclass
class _Change:
    stock_delta: int = 0
    new_price: int | None = None
    changed_at: Any = None


@dataclasses.dataclass(frozen=True)
class CatalogProjector(OneTableProjector):
    name: str = "catalog"
    table: sa.Table = t

    @functools.cached_property
    def _update(self) -> sa.Update:
        return _update(self.table)  # built once: construction costs more than running it

    def apply(
        self, conn: Connection, events: Sequence[StoredEvent[Event]]
    ) -> Sequence[OrderChange]:
        added: list[dict[str, Any]] = []
        changes: dict[str, _Change] = {}

        def change(product_id: str) -> _Change:
            return changes.setdefault(product_id, _Change())

        for ev in events:
            data = ev.data
            if isinstance(data, e.ProductAdded):
                added.append(
                    {
                        "product_id": data.product_id,
                        "sku": data.sku,
                        "name": data.name,
                        "description": data.description,
                        "price_cents": data.price_cents,
                        "currency": data.currency,
                        "stock_available": data.stock,
                        "updated_at": ev.occurred_at,
                    }
                )
            elif isinstance(data, e.ProductRestocked):
                c = change(data.product_id)
                c.stock_delta += data.quantity
                c.changed_at = ev.occurred_at
            elif isinstance(data, e.ProductPriceChanged):
                c = change(data.product_id)
                c.new_price, c.changed_at = data.price_cents, ev.occurred_at
            elif isinstance(data, e.OrderPlaced | e.OrderCancelled):
                sign = -1 if isinstance(data, e.OrderPlaced) else 1
                for line in data.lines:
                    change(line.product_id).stock_delta += sign * line.quantity
        if added:
            conn.execute(self.table.insert(), added)
        if changes:
            conn.execute(
                self._update,
                [
                    {
                        "pid": pid,
                        "stock_delta": c.stock_delta,
                        "new_price": c.new_price,
                        "changed_at": c.changed_at,
                    }
                    for pid, c in changes.items()
                ],
            )
        return ()


projector = CatalogProjector()
