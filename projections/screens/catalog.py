"""Catalog screen: products with price and the stock a customer can still order
(``products(search, inStock)``, ``product(sku)``, ``Product`` by id).

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
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as e
from domain.events import Event
from projections.base import Handlers, OneTableProjector, OrderChange, StoredEvent, fold
from projections.reads import P, Query, Row, fetch_all, fetch_one
from projections.tables import Timestamp, metadata

catalog_products = sa.Table(
    "catalog_products",
    metadata,
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("sku", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("stock_available", sa.Integer, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_catalog_products_name", "name", "product_id"),
)


# -- projector ---------------------------------------------------------------------------
@dataclasses.dataclass
class _Change:
    stock_delta: int = 0
    new_price: int | None = None
    changed_at: Any = None


@dataclasses.dataclass
class _Pending:
    """A batch folded: the products added, and the change of each product touched."""

    added: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    changes: dict[str, _Change] = dataclasses.field(default_factory=dict)

    def change(self, product_id: str) -> _Change:
        return self.changes.setdefault(product_id, _Change())


def _product_added(p: _Pending, ev: StoredEvent[e.ProductAdded]) -> None:
    data = ev.data
    p.added.append(
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


def _product_restocked(p: _Pending, ev: StoredEvent[e.ProductRestocked]) -> None:
    c = p.change(ev.data.product_id)
    c.stock_delta += ev.data.quantity
    c.changed_at = ev.occurred_at


def _product_price_changed(p: _Pending, ev: StoredEvent[e.ProductPriceChanged]) -> None:
    c = p.change(ev.data.product_id)
    c.new_price, c.changed_at = ev.data.price_cents, ev.occurred_at


def _order_placed(p: _Pending, ev: StoredEvent[e.OrderPlaced]) -> None:
    for line in ev.data.lines:
        p.change(line.product_id).stock_delta -= line.quantity


def _order_cancelled(p: _Pending, ev: StoredEvent[e.OrderCancelled]) -> None:
    for line in ev.data.lines:
        p.change(line.product_id).stock_delta += line.quantity


HANDLERS: Handlers[_Pending] = {
    e.ProductAdded: _product_added,
    e.ProductRestocked: _product_restocked,
    e.ProductPriceChanged: _product_price_changed,
    e.OrderPlaced: _order_placed,
    e.OrderCancelled: _order_cancelled,
}


@dataclasses.dataclass(frozen=True)
class CatalogProjector(OneTableProjector):
    name: str = "catalog"
    table: sa.Table = catalog_products

    @functools.cached_property
    def _update(self) -> sa.Update:
        t = self.table  # built once: construction costs more than running it
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

    def apply(
        self, conn: Connection, events: Sequence[StoredEvent[Event]]
    ) -> Sequence[OrderChange]:
        pending = fold(HANDLERS, _Pending(), events)
        if pending.added:
            conn.execute(self.table.insert(), pending.added)
        if pending.changes:
            conn.execute(
                self._update,
                [
                    {
                        "pid": pid,
                        "stock_delta": c.stock_delta,
                        "new_price": c.new_price,
                        "changed_at": c.changed_at,
                    }
                    for pid, c in pending.changes.items()
                ],
            )
        return ()


projector = CatalogProjector()


# -- reads -------------------------------------------------------------------------------
@functools.cache
def _products_page(after: bool, search: bool, in_stock: bool | None) -> Query:
    t = catalog_products
    query = sa.select(t).order_by(t.c.name, t.c.product_id).limit(P("limit"))
    if after:
        query = query.where(
            sa.tuple_(t.c.name, t.c.product_id) > sa.tuple_(P("after_name"), P("after_id"))
        )
    if search:
        query = query.where(
            sa.or_(
                t.c.name.ilike(P("pattern"), escape="\\"), t.c.sku.ilike(P("pattern"), escape="\\")
            )
        )
    if in_stock is True:
        query = query.where(t.c.stock_available > 0)
    elif in_stock is False:
        query = query.where(t.c.stock_available <= 0)
    return Query.of(query)


async def products_page(
    engine: AsyncEngine,
    first: int,
    after: tuple[str, str] | None,
    search: str | None,
    in_stock: bool | None,
) -> Sequence[Row]:
    """Catalog, by name then id; returns up to ``first + 1`` rows (the extra one tells
    whether there is a next page)."""
    params: dict[str, Any] = {"limit": first + 1}
    if after is not None:
        params["after_name"], params["after_id"] = after
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["pattern"] = f"%{escaped}%"
    return await fetch_all(
        engine, _products_page(after is not None, bool(search), in_stock), params
    )


_PRODUCT_BY_SKU = Query.of(sa.select(catalog_products).where(catalog_products.c.sku == P("sku")))
_PRODUCTS_BY_IDS = Query.of(
    sa.select(catalog_products).where(catalog_products.c.product_id.in_(P("ids", expanding=True)))
)


async def product_by_sku(engine: AsyncEngine, sku: str) -> Row | None:
    return await fetch_one(engine, _PRODUCT_BY_SKU, {"sku": sku})


async def products_by_ids(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Row]:
    rows = await fetch_all(engine, _PRODUCTS_BY_IDS, {"ids": list(ids)})
    return {row.product_id: row for row in rows}
