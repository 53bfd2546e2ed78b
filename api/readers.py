"""Reads of the read-model tables. Nothing here touches a write table."""

from __future__ import annotations

from collections.abc import Sequence
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


async def fetch_all(engine: AsyncEngine, query: sa.Select[Any]) -> Sequence[Row]:
    record_tables(getattr(table, "name", "?") for table in query.get_final_froms())
    async with engine.connect() as conn:
        rows: Sequence[Row] = (await conn.execute(query)).all()
        return rows


async def products_page(
    engine: AsyncEngine,
    first: int,
    after: tuple[str, str] | None,
    search: str | None,
    in_stock: bool | None,
) -> Sequence[Row]:
    """Catalog, by name then id; returns up to ``first + 1`` rows (the extra one tells
    whether there is a next page)."""
    t = catalog_products
    query = sa.select(t).order_by(t.c.name, t.c.product_id).limit(first + 1)
    if after is not None:
        query = query.where(sa.tuple_(t.c.name, t.c.product_id) > sa.tuple_(*after))
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(t.c.name.ilike(pattern, escape="\\"), t.c.sku.ilike(pattern, escape="\\"))
        )
    if in_stock is True:
        query = query.where(t.c.stock_available > 0)
    elif in_stock is False:
        query = query.where(t.c.stock_available <= 0)
    return await fetch_all(engine, query)


async def product_by_sku(engine: AsyncEngine, sku: str) -> Row | None:
    rows = await fetch_all(engine, sa.select(catalog_products).where(catalog_products.c.sku == sku))
    return rows[0] if rows else None


async def products_by_ids(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Row]:
    t = catalog_products
    rows = await fetch_all(engine, sa.select(t).where(t.c.product_id.in_(ids)))
    return {row.product_id: row for row in rows}


async def customers_by_ids(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Row]:
    t = customer_profiles
    rows = await fetch_all(engine, sa.select(t).where(t.c.customer_id.in_(ids)))
    return {row.customer_id: row for row in rows}


async def orders_by_ids(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Doc]:
    t = order_detail
    rows = await fetch_all(engine, sa.select(t.c.order_id, t.c.doc).where(t.c.order_id.in_(ids)))
    return {row.order_id: orjson.loads(row.doc) for row in rows}


async def history_page(
    engine: AsyncEngine, customer_id: str, first: int, after: int | None, status: str | None
) -> list[Doc]:
    """A customer's orders, newest first."""
    t = order_history
    query = (
        sa.select(t.c.doc)
        .where(t.c.customer_id == customer_id)
        .order_by(t.c.sort_key.desc())
        .limit(first + 1)
    )
    if status is not None:
        query = query.where(t.c.status == status)
    if after is not None:
        query = query.where(t.c.sort_key < after)
    return [orjson.loads(row.doc) for row in await fetch_all(engine, query)]


async def fulfillment_page(engine: AsyncEngine, first: int, after: int | None) -> list[Doc]:
    """Paid orders waiting to ship, oldest payment first."""
    t = fulfillment_queue
    query = (
        sa.select(t.c.doc)
        .where(t.c.paid_sort_key.is_not(None))
        .order_by(t.c.paid_sort_key)
        .limit(first + 1)
    )
    if after is not None:
        query = query.where(t.c.paid_sort_key > after)
    return [orjson.loads(row.doc) for row in await fetch_all(engine, query)]


async def dashboard_rows(engine: AsyncEngine, top: int) -> tuple[Sequence[Row], Sequence[Row]]:
    """(total and per-status rows, the ``top`` best-selling product rows)."""
    t = sales_dashboard
    figures = await fetch_all(engine, sa.select(t).where(t.c.kind.in_(("total", "status"))))
    products = await fetch_all(
        engine,
        sa.select(t)
        .where(t.c.kind == "product", t.c.tally > 0)
        .order_by(t.c.tally.desc(), t.c.amount_cents.desc(), t.c.key)
        .limit(top),
    )
    return figures, products


async def order_changes(engine: AsyncEngine, order_id: str, after: int) -> list[OrderChange]:
    """The order after each of its events with a version above ``after``, in order."""
    t = order_changes_table
    rows = await fetch_all(
        engine,
        sa.select(t).where(t.c.order_id == order_id, t.c.version > after).order_by(t.c.version),
    )
    changes = []
    for row in rows:
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


async def dead_letters(engine: AsyncEngine, name: str, first: int) -> Sequence[Row]:
    t = projection_dead_letters
    return await fetch_all(
        engine, sa.select(t).where(t.c.name == name).order_by(t.c.position).limit(first)
    )


async def customer_by_email(engine: AsyncEngine, email: str) -> Row | None:
    t = customer_profiles
    rows = await fetch_all(engine, sa.select(t).where(t.c.email == email))
    return rows[0] if rows else None
