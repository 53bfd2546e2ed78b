"""Command handlers: one module per aggregate, one function per command, found through
the plain dict below.

A handler loads what it needs from the unit of work, applies the rules of
``domain/model.py``, writes through the unit of work, records events and returns the id
of the entity it changed. It never commits: the command bus owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain import commands as c
from domain.handlers import catalog, customers, orders
from domain.unit_of_work import UnitOfWork

Handler = Callable[[UnitOfWork, Any], str]

HANDLERS: dict[type[c.Command], Handler] = {
    c.RegisterCustomer: customers.register_customer,
    c.AddProduct: catalog.add_product,
    c.RestockProduct: catalog.restock_product,
    c.ChangeProductPrice: catalog.change_product_price,
    c.PlaceOrder: orders.place_order,
    c.PayOrder: orders.pay_order,
    c.CancelOrder: orders.cancel_order,
    c.ShipOrder: orders.ship_order,
    c.DeliverOrder: orders.deliver_order,
}
