"""One handler per command: load rows, apply the rules, write rows, record events.

Handlers run inside a transaction owned by the command bus (``domain/bus.py``) and
return the id of the entity they changed. They never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain import commands as c
from domain import events as e
from domain import model
from domain.event_log import Recorder
from domain.order_handlers import (
    cancel_order,
    deliver_order,
    pay_order,
    place_order,
    ship_order,
)
from domain.write_tables import customers, products

Handler = Callable[[Connection, Any, Recorder], str]


def new_id() -> str:
    return str(uuid.uuid4())


def register_customer(conn: Connection, cmd: c.RegisterCustomer, rec: Recorder) -> str:
    email = model.normalize_email(cmd.email)
    name = model.clean_text("name", cmd.name)
    taken = conn.scalar(sa.select(customers.c.id).where(customers.c.email == email))
    if taken is not None:
        raise model.DomainError("EMAIL_TAKEN", "That email is already registered", "email")
    customer_id = new_id()
    conn.execute(
        customers.insert().values(id=customer_id, email=email, name=name, created_at=rec.now)
    )
    rec.record(f"customer-{customer_id}", 1, e.CustomerRegistered(customer_id, email, name))
    return customer_id


def add_product(conn: Connection, cmd: c.AddProduct, rec: Recorder) -> str:
    model.require_staff(cmd.actor)
    sku = model.check_sku(cmd.sku)
    name = model.clean_text("name", cmd.name)
    description = (
        model.clean_text("description", cmd.description, max_length=model.MAX_DESCRIPTION)
        if cmd.description and cmd.description.strip()
        else None
    )
    price = model.check_price(cmd.price_cents)
    stock = model.check_stock(cmd.stock, "stock")
    if conn.scalar(sa.select(products.c.id).where(products.c.sku == sku)) is not None:
        raise model.DomainError("SKU_TAKEN", f"A product with SKU {sku} exists already", "sku")
    product_id = new_id()
    conn.execute(
        products.insert().values(
            id=product_id,
            sku=sku,
            name=name,
            description=description,
            price_cents=price,
            currency=model.CURRENCY,
            stock_on_hand=stock,
            stock_reserved=0,
            version=1,
            created_at=rec.now,
            updated_at=rec.now,
        )
    )
    rec.record(
        f"product-{product_id}",
        1,
        e.ProductAdded(product_id, sku, name, description, price, model.CURRENCY, stock),
    )
    return product_id


def _product_for_update(conn: Connection, sku: str) -> Any:
    row = (
        conn.execute(
            sa.select(products.c.id, products.c.version, products.c.price_cents)
            .where(products.c.sku == sku)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise model.DomainError("UNKNOWN_SKU", f"No product with SKU {sku}", "sku")
    return row


def restock_product(conn: Connection, cmd: c.RestockProduct, rec: Recorder) -> str:
    model.require_staff(cmd.actor)
    quantity = model.check_stock(cmd.quantity, "quantity", minimum=1)
    product = _product_for_update(conn, model.check_sku(cmd.sku))
    conn.execute(
        products.update()
        .where(products.c.id == product.id)
        .values(
            stock_on_hand=products.c.stock_on_hand + quantity,
            version=products.c.version + 1,
            updated_at=rec.now,
        )
    )
    rec.record(
        f"product-{product.id}",
        product.version + 1,
        e.ProductRestocked(product.id, cmd.sku, quantity),
    )
    return str(product.id)


def change_product_price(conn: Connection, cmd: c.ChangeProductPrice, rec: Recorder) -> str:
    model.require_staff(cmd.actor)
    price = model.check_price(cmd.price_cents)
    product = _product_for_update(conn, model.check_sku(cmd.sku))
    if product.price_cents == price:
        return str(product.id)  # nothing changed, nothing to record
    conn.execute(
        products.update()
        .where(products.c.id == product.id)
        .values(price_cents=price, version=products.c.version + 1, updated_at=rec.now)
    )
    rec.record(
        f"product-{product.id}",
        product.version + 1,
        e.ProductPriceChanged(product.id, cmd.sku, product.price_cents, price),
    )
    return str(product.id)


HANDLERS: dict[type[c.Command], Handler] = {
    c.RegisterCustomer: register_customer,
    c.AddProduct: add_product,
    c.RestockProduct: restock_product,
    c.ChangeProductPrice: change_product_price,
    c.PlaceOrder: place_order,
    c.PayOrder: pay_order,
    c.CancelOrder: cancel_order,
    c.ShipOrder: ship_order,
    c.DeliverOrder: deliver_order,
}
