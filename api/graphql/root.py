"""The schema's root types, merged from the features' pieces: each feature folder holds its
queries, subscriptions and mutations (one per module). The order of the pieces here is the
order of the fields in the exported schema."""

from __future__ import annotations

from strawberry.tools import merge_types

from api.graphql.catalog.mutations.add_product import AddProductMutation
from api.graphql.catalog.mutations.change_product_price import ChangeProductPriceMutation
from api.graphql.catalog.mutations.restock_product import RestockProductMutation
from api.graphql.catalog.queries import CatalogQuery
from api.graphql.customers.mutations.register_customer import RegisterCustomerMutation
from api.graphql.customers.queries import CustomerQuery
from api.graphql.node import NodeQuery
from api.graphql.orders.mutations.cancel_order import CancelOrderMutation
from api.graphql.orders.mutations.deliver_order import DeliverOrderMutation
from api.graphql.orders.mutations.pay_order import PayOrderMutation
from api.graphql.orders.mutations.place_order import PlaceOrderMutation
from api.graphql.orders.mutations.ship_order import ShipOrderMutation
from api.graphql.orders.queries import OrderQuery
from api.graphql.orders.subscriptions import OrderSubscription
from api.graphql.staff.queries import StaffQuery

Query = merge_types("Query", (NodeQuery, CustomerQuery, CatalogQuery, OrderQuery, StaffQuery))

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

Subscription = merge_types("Subscription", (OrderSubscription,))
