"""Plans: a parsed and validated query operation, turned into Python functions that write
its answer from the read rows.

A plan is built once per (document, operation name). The fields it selects depend on the
values of the variables that ``@skip``/``@include`` use, so for each combination of those
values (only those met) the selections are collected as graphql-core's executor collects
them (:mod:`.collect`), and each object selection becomes a generated function
(:mod:`.generate`): no resolver, no per-field await, no awaitable check. A mutation has a
plan if every root field is one of :mod:`.commands` (the order mutations). A document with
anything else (a field or type not in the sources, a directive other than skip/include, a
subscription) has no plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    is_non_null_type,
)
from graphql.execution.values import VariableValues

from .collect import FieldCollector, Unsupported
from .commands import COMMAND_ROOTS
from .generate import Writer, WriterGenerator
from .roots import NODE_TYPES, ROOTS, Resolve

# Combinations of @skip/@include variable values kept per plan.
MAX_VARIANTS = 64


@dataclasses.dataclass(frozen=True, slots=True)
class RootField:
    key: str
    name: str
    nodes: tuple[FieldNode, ...]
    field: GraphQLField | None  # None for __typename
    nullable: bool
    resolve: Resolve | None
    # The object writer of a concrete type, or one per type a Node can be.
    write: Writer | dict[str, Writer] | None


Roots = tuple[RootField, ...]


class Plan:
    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        condition_variables: tuple[str, ...],
        cost_variables: tuple[str, ...] = (),
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments
        self.condition_variables = condition_variables
        self.cost_variables = cost_variables  # given as a ``first`` argument somewhere
        self.mutation = operation.operation == OperationType.MUTATION
        self._variants: dict[tuple[Any, ...], Roots | None] = {}
        self.costs: dict[str, int] = {}  # by the request's variables (JSON)

    @classmethod
    def of(
        cls, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
    ) -> Plan | None:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is not None:
            operations = [o for o in operations if o.name and o.name.value == operation_name]
        if len(operations) != 1 or operations[0].operation not in _KINDS:
            return None
        operation = operations[0]
        if operation.directives:
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        names: set[str] = set()
        firsts: set[str] = set()
        for node in _walk([operation, *fragments.values()]):
            for argument in getattr(node, "arguments", None) or ():
                if argument.name.value == "first" and isinstance(argument.value, VariableNode):
                    firsts.add(argument.value.name.value)
            for directive in getattr(node, "directives", None) or ():
                if directive.name.value not in ("skip", "include"):
                    return None
                for argument in directive.arguments:
                    variable = getattr(argument.value, "name", None)
                    if variable is not None:
                        names.add(variable.value)
        return cls(schema, operation, fragments, tuple(sorted(names)), tuple(sorted(firsts)))

    def roots(self, variables: VariableValues) -> Roots | None:
        """The root fields for these (coerced) variables; None: not covered."""
        key = tuple(variables.coerced.get(name) for name in self.condition_variables)
        try:
            return self._variants[key]
        except KeyError:
            pass
        try:
            roots: Roots | None = _Compiler(self, variables).roots()
        except (Unsupported, GraphQLError):
            roots = None
        if len(self._variants) < MAX_VARIANTS:
            self._variants[key] = roots
        return roots


_KINDS = (OperationType.QUERY, OperationType.MUTATION)


def _walk(nodes: list[Any]) -> Iterator[Any]:
    """Every node with selections, and every selection, under ``nodes``."""
    for node in nodes:
        yield node
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            yield from _walk(list(selection_set.selections))


class _Compiler:
    """The root fields of one combination of condition values, with their writers."""

    def __init__(self, plan: Plan, variables: VariableValues) -> None:
        self.collector = FieldCollector(plan.schema, plan.fragments, variables)
        self.generator = WriterGenerator(self.collector)
        self.plan = plan

    def roots(self) -> Roots:
        plan = self.plan
        root_type = plan.schema.mutation_type if plan.mutation else plan.schema.query_type
        assert root_type is not None
        known = COMMAND_ROOTS if plan.mutation else ROOTS
        fields = self.collector.collect(root_type.name, [plan.operation.selection_set])
        writer = self.generator.writer
        roots = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                roots.append(RootField(key, name, tuple(nodes), None, False, None, None))
                continue
            if name not in known:
                raise Unsupported(name)
            resolve, type_name = known[name]
            field = root_type.fields[name]
            sets = [n.selection_set for n in nodes if n.selection_set is not None]
            write: Writer | dict[str, Writer] = (
                {t: writer(t, sets) for t in NODE_TYPES}
                if type_name is None
                else writer(type_name, sets)
            )
            nullable = not is_non_null_type(field.type)
            roots.append(RootField(key, name, tuple(nodes), field, nullable, resolve, write))
        return tuple(roots)
