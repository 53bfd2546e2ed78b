"""Reads of the read-model tables. Nothing here touches a write table.

Statements are built once, with bind parameters, and know the tables they read: building
a SQLAlchemy statement per call, and asking it for its tables (``get_final_froms``
compiles it), cost more than running it (measured: a quarter of a ``placeOrder``'s CPU).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from api.response_cache import record_tables
from projections.base import OrderChange, as_utc
from projections.read_tables import (
    catalog_products,
    customer_profiles,
    fulfillment_queue,
    order_detail,
    order_history,
    projection_dead_letters,
    sales_dashboard,
)
from projections.read_tables import order_changes as order_changes_table

Row = sa.Row[Any]
Doc = dict[str, Any]
P = sa.bindparam


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """A statement built once, and the names of the read tables it reads."""

    statement: sa.Select[Any]
    tables: tuple[str, ...]

    @classmethod
    def of(cls, statement: sa.Select[Any]) -> Query:
        return cls(statement, tuple(t.name for t in statement.get_final_froms()))  # type: ignore[attr-defined]


async def fetch_all(
    engine: AsyncEngine, query: Query, params: Mapping[str, Any] | None = None
) -> Sequence[Row]:
    record_tables(query.tables)
    async with engine.connect() as conn:
        rows: Sequence[Row] = (await conn.execute(query.statement, params)).all()
        return rows


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


async def product_by_sku(engine: AsyncEngine, sku: str) -> Row | None:
    rows = await fetch_all(engine, _PRODUCT_BY_SKU, {"sku": sku})
    return rows[0] if rows else None


_PRODUCTS_BY_IDS = Query.of(
    sa.select(catalog_products).where(catalog_products.c.product_id.in_(P("ids", expanding=True)))
)


async def products_by_ids(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Row]:
    rows = await fetch_all(engine, _PRODUCTS_BY_IDS, {"ids": list(ids)})
    return {row.product_id: row for row in rows}


_CUSTOMERS_BY_IDS = Query.of(
    sa.select(customer_profiles).where(
        customer_profiles.c.customer_id.in_(P("ids", expanding=True))
    )
)


async def customers_by_ids(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Row]:
    rows = await fetch_all(engine, _CUSTOMERS_BY_IDS, {"ids": list(ids)})
    return {row.customer_id: row for row in rows}


_ORDERS_BY_IDS = Query.of(
    sa.select(order_detail.c.order_id, order_detail.c.doc).where(
        order_detail.c.order_id.in_(P("ids", expanding=True))
    )
)


async def orders_by_ids(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Doc]:
    rows = await fetch_all(engine, _ORDERS_BY_IDS, {"ids": list(ids)})
    return {row.order_id: orjson.loads(row.doc) for row in rows}


@functools.cache
def _history_page(status: bool, after: bool) -> Query:
    t = order_history
    query = (
        sa.select(t.c.doc)
        .where(t.c.customer_id == P("customer_id"))
        .order_by(t.c.sort_key.desc())
        .limit(P("limit"))
    )
    if status:
        query = query.where(t.c.status == P("status"))
    if after:
        query = query.where(t.c.sort_key < P("after"))
    return Query.of(query)


async def history_page(
    engine: AsyncEngine, customer_id: str, first: int, after: int | None, status: str | None
) -> list[Doc]:
    """A customer's orders, newest first."""
    query = _history_page(status is not None, after is not None)
    params = {"customer_id": customer_id, "limit": first + 1, "status": status, "after": after}
    return [orjson.loads(row.doc) for row in await fetch_all(engine, query, params)]


@functools.cache
def _fulfillment_page(after: bool) -> Query:
    t = fulfillment_queue
    query = (
        sa.select(t.c.doc)
        .where(t.c.paid_sort_key.is_not(None))
        .order_by(t.c.paid_sort_key)
        .limit(P("limit"))
    )
    if after:
        query = query.where(t.c.paid_sort_key > P("after"))
    return Query.of(query)


async def fulfillment_page(engine: AsyncEngine, first: int, after: int | None) -> list[Doc]:
    """Paid orders waiting to ship, oldest payment first."""
    rows = await fetch_all(
        engine, _fulfillment_page(after is not None), {"limit": first + 1, "after": after}
    )
    return [orjson.loads(row.doc) for row in rows]


_DASHBOARD_FIGURES = Query.of(
    sa.select(sales_dashboard).where(sales_dashboard.c.kind.in_(("total", "status")))
)
_DASHBOARD_TOP = Query.of(
    sa.select(sales_dashboard)
    .where(sales_dashboard.c.kind == "product", sales_dashboard.c.tally > 0)
    .order_by(
        sales_dashboard.c.tally.desc(), sales_dashboard.c.amount_cents.desc(), sales_dashboard.c.key
    )
    .limit(P("limit"))
)


async def dashboard_rows(engine: AsyncEngine, top: int) -> tuple[Sequence[Row], Sequence[Row]]:
    """(total and per-status rows, the ``top`` best-selling product rows)."""
    figures = await fetch_all(engine, _DASHBOARD_FIGURES)
    products = await fetch_all(engine, _DASHBOARD_TOP, {"limit": top})
    return figures, products


_ORDER_CHANGES = Query.of(
    sa.select(order_changes_table)
    .where(
        order_changes_table.c.order_id == P("order_id"), order_changes_table.c.version > P("after")
    )
    .order_by(order_changes_table.c.version)
)


async def order_changes(engine: AsyncEngine, order_id: str, after: int) -> list[OrderChange]:
    """The order after each of its events with a version above ``after``, in order."""
    changes = []
    for row in await fetch_all(engine, _ORDER_CHANGES, {"order_id": order_id, "after": after}):
        doc = orjson.loads(row.doc)
        changes.append(
            OrderChange(
                row.order_id,
                doc["customer_id"],
                row.version,
                row.event,
                as_utc(row.occurred_at),
                doc,
            )
        )
    return changes


_DEAD_LETTERS = Query.of(
    sa.select(projection_dead_letters)
    .where(projection_dead_letters.c.name == P("name"))
    .order_by(projection_dead_letters.c.position)
    .limit(P("limit"))
)


async def dead_letters(engine: AsyncEngine, name: str, first: int) -> Sequence[Row]:
    return await fetch_all(engine, _DEAD_LETTERS, {"name": name, "limit": first})


_CUSTOMER_BY_EMAIL = Query.of(
    sa.select(customer_profiles).where(customer_profiles.c.email == P("email"))
)


async def customer_by_email(engine: AsyncEngine, email: str) -> Row | None:
    rows = await fetch_all(engine, _CUSTOMER_BY_EMAIL, {"email": email})
    return rows[0] if rows else None
