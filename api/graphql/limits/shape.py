"""How big a document is, fragments looked through: its depth, its introspection and its
cost.

Each fragment is measured once per document, after the fragments it spreads, and a
spread then adds the fragment's measure without walking it again: a fragment spread
twice in each of 40 chained fragments costs 40 measures, not 2**40 walks. A spread that
closes a cycle counts as empty (graphql-core's ``NoFragmentCyclesRule`` reports the
cycle), and no walk goes deeper than one level past the limits, so nothing here recurses
without bound.

Introspection (the subtree of a ``__schema`` or ``__type`` field) is measured on its
own: its depth, how many such fields there are and what it costs, so that the standard
introspection queries of tools (depth 13 to 15) do not count against the data depth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    SelectionSetNode,
    VariableNode,
)

from api.graphql.types import MAX_PAGE

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
# Introspection lists: how many items to expect, a little above this schema's own sizes.
INTROSPECTION_LISTS = {
    "types": 60,
    "directives": 10,
    "fields": 15,
    "inputFields": 10,
    "args": 5,
    "enumValues": 10,
    "interfaces": 3,
    "possibleTypes": 5,
    "locations": 5,
}
# `first` given by a variable that is not an int (execution refuses it): assume a page.
DEFAULT_FIRST = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    """The measure of a selection set. Depths are relative to it and stop growing at
    the cap the measure was taken with."""

    depth: int = 0  # data depth: an introspection field counts as one level, not its subtree
    full_depth: int = 0  # every field counted (what a subtree adds inside introspection)
    introspection_depth: int = 0  # the deepest introspection subtree, its root included
    introspection_fields: int = 0  # `__schema` / `__type` fields, once per spread
    introspection_cost: int = 0
    inner_cost: int = 0  # the introspection cost of this selection set inside introspection

    def __add__(self, other: Shape) -> Shape:
        """Two parts of the same selection set."""
        return Shape(
            max(self.depth, other.depth),
            max(self.full_depth, other.full_depth),
            max(self.introspection_depth, other.introspection_depth),
            self.introspection_fields + other.introspection_fields,
            self.introspection_cost + other.introspection_cost,
            self.inner_cost + other.inner_cost,
        )


EMPTY = Shape()


def fragment_definitions(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _spreads(selection_set: SelectionSetNode | None) -> Iterator[str]:
    """The names of the fragments spread anywhere in a selection set (not through them)."""
    pending = [selection_set]
    while pending:
        current = pending.pop()
        if current is None:
            continue
        for selection in current.selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif isinstance(selection, FieldNode | InlineFragmentNode):
                pending.append(selection.selection_set)


def dependency_order(fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Fragment names, each after every fragment it spreads; a cycle is cut where the
    walk meets it again. Iterative: a chain of hundreds of fragments is no deeper."""
    order: list[str] = []
    seen: set[str] = set()
    for root in fragments:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, _spreads(fragments[root].selection_set))]
        while stack:
            name, spreads = stack[-1]
            for child in spreads:
                if child in fragments and child not in seen:
                    seen.add(child)
                    stack.append((child, _spreads(fragments[child].selection_set)))
                    break
            else:
                stack.pop()
                order.append(name)
    return order


class DocumentShape:
    """The shapes of one document's fragments, and of any selection set in it."""

    def __init__(self, document: DocumentNode, cap: int) -> None:
        self.cap = cap
        self.fragments = fragment_definitions(document)
        self._shapes: dict[str, Shape] = {}
        for name in dependency_order(self.fragments):
            self._shapes[name] = self.measure(self.fragments[name].selection_set)

    def measure(self, selection_set: SelectionSetNode | None, level: int = 0) -> Shape:
        if selection_set is None:
            return EMPTY
        if level >= self.cap:  # past every limit: how much further does not matter
            return Shape(depth=self.cap, full_depth=self.cap)
        total = EMPTY
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, level)
            elif isinstance(selection, InlineFragmentNode):
                total += self.measure(selection.selection_set, level)
            elif isinstance(selection, FragmentSpreadNode):
                # Unknown, or in a cycle (not measured yet): validation reports it.
                total += self._shapes.get(selection.name.value, EMPTY)
        return total

    def _field(self, field: FieldNode, level: int) -> Shape:
        below = self.measure(field.selection_set, level + 1)
        full_depth = min(self.cap, 1 + below.full_depth)
        inner_cost = 1 + INTROSPECTION_LISTS.get(field.name.value, 1) * below.inner_cost
        if field.name.value in INTROSPECTION_ROOTS:
            return Shape(
                depth=1,
                full_depth=full_depth,
                introspection_depth=full_depth,
                introspection_fields=1,
                introspection_cost=inner_cost,
                inner_cost=inner_cost,
            )
        return Shape(
            depth=min(self.cap, 1 + below.depth),
            full_depth=full_depth,
            introspection_depth=below.introspection_depth,
            introspection_fields=below.introspection_fields,
            introspection_cost=below.introspection_cost,
            inner_cost=inner_cost,
        )


class DataCost:
    """The cost of the data a request asks for: every field costs 1, a connection
    multiplies what is under it by its ``first`` (from the coerced variables, defaults
    included), a plain list by a fixed estimate. Introspection is costed by its own rule
    (:class:`DocumentShape`) and counts 1 here. Each fragment is costed once."""

    def __init__(
        self, document: DocumentNode, variables: Mapping[str, Any], items: Mapping[str, int]
    ) -> None:
        self.variables = variables
        self.items = items  # a list field's expected length, by name (limits.estimates)
        fragments = fragment_definitions(document)
        self._costs: dict[str, int] = {}
        for name in dependency_order(fragments):
            self._costs[name] = self.cost(fragments[name].selection_set)

    def cost(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += 1
                if selection.name.value not in INTROSPECTION_ROOTS:
                    total += self._multiplier(selection) * self.cost(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self.cost(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._costs.get(selection.name.value, 0)
        return total

    def _multiplier(self, field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value == "first":
                value: Any = argument.value
                if isinstance(value, VariableNode):
                    value = self.variables.get(value.name.value)
                elif isinstance(value, IntValueNode):
                    value = int(value.value)
                if isinstance(value, int):
                    return max(0, min(value, MAX_PAGE))
                return DEFAULT_FIRST
        name = field.name.value
        return self.items.get(name, 1)
