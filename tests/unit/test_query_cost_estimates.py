"""Query cost reads each list field's expected length from the schema (a connection's
default ``first``, or ``list_field(n)``), so a new screen declares it where it defines
the field. Every list in the schema must say how long it is expected to be."""

from __future__ import annotations

from graphql import GraphQLObjectType, parse

from api.graphql.limits.estimates import declared_items, is_list, item_estimates
from api.graphql.limits.shape import DataCost
from api.graphql.schema import build_schema


def test_every_list_field_declares_its_expected_length() -> None:
    schema = build_schema()._schema
    undeclared = [
        f"{type_.name}.{name}"
        for type_ in schema.type_map.values()
        if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__")
        for name, field in type_.fields.items()
        if is_list(field.type)
        and declared_items(field) is None
        # A connection's edges are costed by the connection's `first`.
        and name != "edges"
    ]
    assert undeclared == [], f"declare with list_field(n) or a `first` argument: {undeclared}"


def test_estimates_come_from_the_schema() -> None:
    items = item_estimates(build_schema()._schema)
    assert items == {
        "products": 20,
        "myOrders": 20,
        "fulfillmentQueue": 50,
        "parkedEvents": 20,
        "lines": 5,
        "timeline": 5,
        "ordersByStatus": 5,
        "topProducts": 10,
        "projections": 6,
        "userErrors": 1,
    }


def test_cost_multiplies_by_the_declared_lengths() -> None:
    items = item_estimates(build_schema()._schema)
    document = parse("{ myOrders { edges { node { id lines { sku } } } } }")
    # myOrders 1 + 20 x (edges 1 + node 1 + id 1 + lines 1 + 5 x sku 1)
    assert DataCost(document, {}, items).cost(document.definitions[0].selection_set) == (  # type: ignore[attr-defined]
        1 + 20 * (1 + 1 + 1 + 1 + 5)
    )
    given = parse("{ myOrders(first: 3) { edges { node { id } } } }")
    assert DataCost(given, {}, items).cost(given.definitions[0].selection_set) == 1 + 3 * 3  # type: ignore[attr-defined]
