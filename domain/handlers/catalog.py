"""Handlers of the catalog commands (staff only): add, restock, change the price."""

from __future__ import annotations

import uuid

from domain import commands as c
from domain import events as e
from domain import model
from domain.unit_of_work import Product, UnitOfWork


def add_product(uow: UnitOfWork, cmd: c.AddProduct) -> str:
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
    if uow.sku_taken(sku):
        raise model.DomainError("SKU_TAKEN", f"A product with SKU {sku} exists already", "sku")
    product_id = str(uuid.uuid4())
    uow.add_product(
        Product(product_id, sku, name, price, version=1, stock_on_hand=stock, stock_reserved=0),
        description,
        model.CURRENCY,
    )
    uow.events.record(
        f"product-{product_id}",
        1,
        e.ProductAdded(product_id, sku, name, description, price, model.CURRENCY, stock),
    )
    return product_id


def _existing_product(uow: UnitOfWork, sku: str) -> Product:
    product = uow.get_product(model.check_sku(sku))
    if product is None:
        raise model.DomainError("UNKNOWN_SKU", f"No product with SKU {sku}", "sku")
    return product


def restock_product(uow: UnitOfWork, cmd: c.RestockProduct) -> str:
    model.require_staff(cmd.actor)
    quantity = model.check_stock(cmd.quantity, "quantity", minimum=1)
    product = _existing_product(uow, cmd.sku)
    uow.add_stock(product.id, quantity)
    uow.events.record(
        f"product-{product.id}",
        product.version + 1,
        e.ProductRestocked(product.id, cmd.sku, quantity),
    )
    return product.id


def change_product_price(uow: UnitOfWork, cmd: c.ChangeProductPrice) -> str:
    model.require_staff(cmd.actor)
    price = model.check_price(cmd.price_cents)
    product = _existing_product(uow, cmd.sku)
    if product.price_cents == price:
        return product.id  # nothing changed, nothing to record
    uow.set_price(product.id, price)
    uow.events.record(
        f"product-{product.id}",
        product.version + 1,
        e.ProductPriceChanged(product.id, cmd.sku, product.price_cents, price),
    )
    return product.id
