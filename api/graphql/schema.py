"""The strawberry.Schema, assembled from the root types (api/graphql/root.py)."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, DisableIntrospection, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.types import ExecutionContext
from strawberry.types.field import StrawberryField

from api.graphql.catalog.types import Product
from api.graphql.customers.types import Customer
from api.graphql.errors import ErrorCodes
from api.graphql.limits import CostLimit, DocumentCache, Documents, Limits, validation_rules
from api.graphql.orders.types import Order
from api.graphql.root import Mutation, Query, Subscription
from api.ws.fanout import FanOutExecutionContext

# Parsed and validated documents kept per schema (estimated bytes of text and syntax trees).
DOCUMENT_CACHE_BYTES = 64 * 1024 * 1024


class RememberedNames(NameConverter):
    """Strawberry works out the GraphQL name of every input field again on every request
    (``to_camel_case`` per field of every input object, a visible share of a mutation's
    CPU: docs/performance.md); a field's name never changes, so each is worked out once."""

    MAX_FIELDS = 10_000

    def __init__(self) -> None:
        super().__init__()
        # id(field) -> (field, name); the field is held so that its id is not reused.
        self._names: dict[int, tuple[StrawberryField, str]] = {}

    def from_field(self, field: StrawberryField) -> str:
        found = self._names.get(id(field))
        if found is not None and found[0] is field:
            return found[1]
        name = super().from_field(field)
        if len(self._names) < self.MAX_FIELDS:
            self._names[id(field)] = (field, name)
        return name


class ShopSchema(strawberry.Schema):
    # Set by build_schema: its cache of parsed and validated documents, and its limits
    # (the compiled read path runs only documents this cache has validated).
    documents: Documents
    limits: Limits

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Expected errors are answers, not incidents: ErrorCodes logs the unexpected."""


def build_schema(
    *, introspection: bool = True, expose_internal: bool = True, limits: Limits | None = None
) -> ShopSchema:
    limits = limits or Limits()
    # Built once: the document cache keeps validation results for this schema's rules.
    rules = validation_rules(limits)
    documents = Documents(max_bytes=DOCUMENT_CACHE_BYTES)
    # Factories, not instances: each operation gets its own extension objects (sharing
    # this schema's document cache).
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        lambda: ErrorCodes(expose_internal=expose_internal),
        lambda: DocumentCache(
            documents,
            max_tokens=limits.max_tokens,
            max_query_bytes=limits.max_query_bytes,
            hide_suggestions=not introspection,
        ),
        lambda: AddValidationRules(rules),
        lambda: CostLimit(max_cost=limits.max_cost),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    schema = ShopSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Product, Customer, Order],
        extensions=extensions,
        execution_context_class=FanOutExecutionContext,
        config=StrawberryConfig(name_converter=RememberedNames()),
    )
    schema.documents = documents
    schema.limits = limits
    return schema


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
