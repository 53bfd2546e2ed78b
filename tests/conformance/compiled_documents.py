"""Random query documents from the schema (hypothesis): root fields with literal or
variable arguments (good and bad ids, cursors, page sizes), random selections of each
type's fields, aliases, inline fragments (with and without type conditions, on Node's
types), named fragments, ``@include``/``@skip`` with literals and variables (some with
defaults left out of the request)."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from graphql import GraphQLInterfaceType, GraphQLObjectType, get_named_type
from hypothesis import strategies as st

from api.graphql.schema import build_schema

SCHEMA = build_schema()._schema
NODE_TYPES = ("Order", "Product", "Customer")
MAX_DEPTH = 5
MAX_SPREADS = 2  # fragments within fragments on one level


def _query_type() -> GraphQLObjectType:
    query = SCHEMA.query_type
    assert query is not None
    return query


QUERY = _query_type()
# Every root field; projections has no plan (its documents all fall back).
ROOT_FIELDS = list(QUERY.fields)


def _cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


@dataclasses.dataclass
class Pools:
    """Argument values worth trying, from the seeded shop."""

    order_ids: list[str]
    product_ids: list[str]
    customer_ids: list[str]
    skus: list[str]

    def ids(self) -> list[str]:
        return [*self.order_ids, *self.product_ids, *self.customer_ids, "bad id!", "VXNlcjox"]


class _Builder:
    def __init__(self, draw: Any, pools: Pools) -> None:
        self.draw = draw
        self.pools = pools
        self.definitions: list[str] = []
        self.variables: dict[str, Any] = {}
        self.fragments: list[str] = []
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def value(self, graphql_type: str, choices: list[Any]) -> str:
        """A literal, or a variable of ``graphql_type`` (sometimes with a default)."""
        value = self.draw(st.sampled_from(choices))
        literal = "null" if value is None else json.dumps(value)
        if graphql_type == "OrderStatus" and value is not None:
            literal = value
        how = self.draw(st.sampled_from(["literal", "variable", "default"]))
        if how == "literal":
            return literal
        name = self.fresh("v")
        if how == "default" and not graphql_type.endswith("!"):
            self.definitions.append(f"${name}: {graphql_type} = {literal}")
        else:
            self.definitions.append(f"${name}: {graphql_type}")
            self.variables[name] = value
        return f"${name}"

    def directive(self) -> str:
        kind = self.draw(st.sampled_from(["", "", "", "", "include", "skip"]))
        if not kind:
            return ""
        if self.draw(st.booleans()):
            return f" @{kind}(if: {json.dumps(self.draw(st.booleans()))})"
        name = self.fresh("c")
        if self.draw(st.booleans()):
            self.definitions.append(f"${name}: Boolean = {json.dumps(self.draw(st.booleans()))}")
        else:
            self.definitions.append(f"${name}: Boolean!")
            self.variables[name] = self.draw(st.booleans())
        return f" @{kind}(if: ${name})"

    def selection(self, type_name: str, depth: int, spreads: int = 0) -> str:
        items = [
            self.item(type_name, depth, spreads)
            for _ in range(self.draw(st.integers(min_value=1, max_value=4)))
        ]
        return "{ " + " ".join(items) + " }"

    def item(self, type_name: str, depth: int, spreads: int = 0) -> str:
        """A field, or (at most MAX_SPREADS deep on one level) an inline or named
        fragment: a fragment stays on its level, and without a bound each level's
        fragments beget as many fragments again on average (huge documents, most of the
        generation time)."""
        graphql_type = SCHEMA.get_type(type_name)
        assert isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType)
        kinds = ["field", "field", "field", "inline", "named"]
        kind = self.draw(st.sampled_from(kinds if spreads < MAX_SPREADS else kinds[:3]))
        conditions = [type_name]
        if type_name == "Node":
            conditions = list(NODE_TYPES)
        elif type_name in NODE_TYPES:
            conditions.append("Node")
        if kind == "inline" and depth < MAX_DEPTH:
            condition = self.draw(st.sampled_from([*conditions, None]))
            on = "" if condition is None else f" on {condition}"
            inner = self.selection(condition or type_name, depth, spreads + 1)
            return f"...{on}{self.directive()} {inner}"
        if kind == "named" and depth < MAX_DEPTH:
            condition = self.draw(st.sampled_from(conditions))
            name = self.fresh("F")
            self.fragments.append(
                f"fragment {name} on {condition} {self.selection(condition, depth, spreads + 1)}"
            )
            return f"...{name}{self.directive()}"
        fields = [
            (name, field)
            for name, field in graphql_type.fields.items()
            if not field.args
            and (depth < MAX_DEPTH or not isinstance(get_named_type(field.type), GraphQLObjectType))
        ]
        names = [name for name, _ in fields] + ["__typename"]
        name = self.draw(st.sampled_from(names))
        alias = f"{self.fresh('k')}: " if self.draw(st.integers(0, 3)) == 0 else ""
        named = None if name == "__typename" else get_named_type(graphql_type.fields[name].type)
        sub = (
            " " + self.selection(named.name, depth + 1)
            if isinstance(named, GraphQLObjectType | GraphQLInterfaceType)
            else ""
        )
        return f"{alias}{name}{self.directive()}{sub}"

    def root(self) -> str:
        p = self.pools
        firsts = [None, 0, 1, 2, 5, -1, 101]
        cursors = [None, _cursor("3"), _cursor("x"), "%%%", _cursor("Product 2\x00z")]
        field = self.draw(st.sampled_from([*ROOT_FIELDS, "__typename"]))
        args: dict[str, str] = {}
        if field == "products":
            args = {
                "first": self.value("Int", firsts),
                "after": self.value("String", cursors),
                "search": self.value("String", [None, "Product 1", "zz", "%"]),
                "inStock": self.value("Boolean", [None, True, False]),
            }
        elif field == "product":
            args = {"sku": self.value("String!", [*p.skus, "NOPE"])}
        elif field == "myOrders":
            args = {
                "first": self.value("Int", firsts),
                "after": self.value("String", cursors),
                "status": self.value("OrderStatus", [None, "PLACED", "PAID", "DELIVERED"]),
            }
        elif field in ("order", "node"):
            args = {"id": self.value("ID!", p.ids())}
        elif field == "fulfillmentQueue":
            args = {"first": self.value("Int", firsts), "after": self.value("String", cursors)}
        kept = {k: v for k, v in args.items() if self.draw(st.integers(0, 3)) > 0}
        call = f"({', '.join(f'{k}: {v}' for k, v in kept.items())})" if kept else ""
        named = None if field == "__typename" else get_named_type(QUERY.fields[field].type)
        sub = "" if named is None else " " + self.selection(named.name, 1)
        return f"{self.fresh('r')}: {field}{call}{self.directive()}{sub}"


@st.composite
def documents(draw: Any, pools: Pools) -> dict[str, Any]:
    """A request body: a query document and its variables."""
    builder = _Builder(draw, pools)
    roots = [builder.root() for _ in range(draw(st.integers(min_value=1, max_value=3)))]
    header = f"({', '.join(builder.definitions)})" if builder.definitions else ""
    query = f"query Q{header} {{ {' '.join(roots)} }}"
    return {"query": "\n".join([query, *builder.fragments]), "variables": builder.variables}
