"""The strawberry.Schema, assembled from the query, mutation and subscription modules."""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
    DisableIntrospection,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.tools import merge_types

from api.mutations.catalog import CatalogMutations
from api.mutations.customer import CustomerMutations
from api.mutations.orders import OrderMutations
from api.queries import Query
from api.subscriptions import Subscription
from api.types.customer import Customer
from api.types.order import Order
from api.types.product import Product

Mutation = merge_types("Mutation", (CustomerMutations, CatalogMutations, OrderMutations))


def build_schema(*, introspection: bool = True) -> strawberry.Schema:
    extensions: list[SchemaExtension | type[SchemaExtension]] = [
        ParserCache(maxsize=1024),
        ValidationCache(maxsize=1024),
    ]
    if not introspection:
        extensions.append(DisableIntrospection())
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Product, Customer, Order],
        extensions=extensions,
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
