"""Mutations: one per module, each running one command; merged here into the schema's
Mutation type (the order of the fields is the order of the exported schema)."""

from __future__ import annotations

from strawberry.tools import merge_types

from api.mutations.add_product import AddProductMutation
from api.mutations.cancel_order import CancelOrderMutation
from api.mutations.change_product_price import ChangeProductPriceMutation
from api.mutations.deliver_order import DeliverOrderMutation
from api.mutations.pay_order import PayOrderMutation
from api.mutations.place_order import PlaceOrderMutation
from api.mutations.register_customer import RegisterCustomerMutation
from api.mutations.restock_product import RestockProductMutation
from api.mutations.ship_order import ShipOrderMutation

Mutation = merge_types(
    "Mutation",
    (
        RegisterCustomerMutation,
        AddProductMutation,
        RestockProductMutation,
        ChangeProductPriceMutation,
        PlaceOrderMutation,
        PayOrderMutation,
        CancelOrderMutation,
        ShipOrderMutation,
        DeliverOrderMutation,
    ),
)
