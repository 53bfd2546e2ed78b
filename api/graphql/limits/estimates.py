"""How many items a list field is expected to hold, for query cost, read from the schema:
a connection's default ``first`` argument, or the ``expected_items`` a plain list field
declares with :func:`list_field`. A new screen declares its lists where it defines them,
not in the limits package."""

from __future__ import annotations

import weakref
from typing import Any

import strawberry
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLType

EXPECTED_ITEMS = "expected_items"
_CACHE: weakref.WeakKeyDictionary[GraphQLSchema, dict[str, int]] = weakref.WeakKeyDictionary()


def list_field(expected_items: int, **kwargs: Any) -> Any:
    """``strawberry.field`` for a list without paging: its expected length for query cost."""
    return strawberry.field(metadata={EXPECTED_ITEMS: expected_items}, **kwargs)


def is_list(type_: GraphQLType) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def declared_items(field: Any) -> int | None:
    """A field's ``first`` default, or the ``expected_items`` it declares; None if neither."""
    first = field.args.get("first")
    if first is not None and isinstance(first.default_value, int):
        return int(first.default_value)
    definition = (field.extensions or {}).get("strawberry-definition")
    expected = (getattr(definition, "metadata", None) or {}).get(EXPECTED_ITEMS)
    return expected if isinstance(expected, int) else None


def item_estimates(schema: GraphQLSchema) -> dict[str, int]:
    """Field name -> expected items, over the schema's object types (the largest where two
    types share a field name). Computed once per schema."""
    found = _CACHE.get(schema)
    if found is None:
        found = {}
        for type_ in schema.type_map.values():
            if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
                continue
            for name, field in type_.fields.items():
                items = declared_items(field)
                if items is not None:
                    found[name] = max(found.get(name, 0), items)
        _CACHE[schema] = found
    return found
