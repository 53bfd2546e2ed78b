"""Plans: a parsed and validated query operation, turned into Python functions that write
its answer from the read rows.

A plan is built once per (document, operation name). The fields it selects depend on the
values of the variables that ``@skip``/``@include`` use, so for each combination of those
values (only those met) the selections are collected as graphql-core's executor collects
them (aliases, named and inline fragments with their type conditions, merged in order of
first appearance), and each object selection becomes a function generated from the
expressions of :mod:`api.graphql.compiled.sources`: no resolver, no per-field await, no
awaitable check. A document with anything else (a field or type not in the sources, a
directive other than skip/include, a mutation or subscription) has no plan.

The generated code is made only of those expressions and of ``repr()`` of response keys,
which validation has already held to GraphQL names.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_non_null_type,
)
from graphql.execution.values import VariableValues, get_directive_values

from .roots import NODE_TYPES, ROOTS, Resolve
from .run import Run
from .sources import HELPERS, TYPES

Writer = Callable[[Any, Run], Any]
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# Combinations of @skip/@include variable values kept per plan.
MAX_VARIANTS = 64


class Unsupported(Exception):
    """The document asks for something the plans do not cover."""


class Unexpected(Exception):
    """A value the Strawberry path would report as an error (a null in a non-null field,
    an Int out of range): that path answers instead."""


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
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments
        self.condition_variables = condition_variables
        self._variants: dict[tuple[Any, ...], Roots | None] = {}
        self.costs: dict[str, int] = {}  # by the request's variables (JSON)

    @classmethod
    def of(
        cls, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
    ) -> Plan | None:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is not None:
            operations = [o for o in operations if o.name and o.name.value == operation_name]
        if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
            return None
        operation = operations[0]
        if operation.directives:
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        names: set[str] = set()
        for node in _walk([operation, *fragments.values()]):
            for directive in getattr(node, "directives", None) or ():
                if directive.name.value not in ("skip", "include"):
                    return None
                for argument in directive.arguments:
                    variable = getattr(argument.value, "name", None)
                    if variable is not None:
                        names.add(variable.value)
        return cls(schema, operation, fragments, tuple(sorted(names)))

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


def _walk(nodes: list[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            yield from _walk(list(selection_set.selections))


class _Compiler:
    """Collects the fields of one combination of condition values and generates the
    writers."""

    def __init__(self, plan: Plan, variables: VariableValues) -> None:
        self.plan = plan
        self.schema = plan.schema
        self.variables = variables
        self.namespace: dict[str, Any] = {**HELPERS, "Unexpected": Unexpected}
        self.names = itertools.count()

    def roots(self) -> Roots:
        query = self.schema.query_type
        assert query is not None
        fields = self.collect(query.name, [self.plan.operation.selection_set])
        roots = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                roots.append(RootField(key, name, tuple(nodes), None, False, None, None))
                continue
            if name not in ROOTS:
                raise Unsupported(name)
            resolve, type_name = ROOTS[name]
            field = query.fields[name]
            sets = [n.selection_set for n in nodes if n.selection_set is not None]
            write: Writer | dict[str, Writer] = (
                {t: self.writer(t, sets) for t in NODE_TYPES}
                if type_name is None
                else self.writer(type_name, sets)
            )
            nullable = not is_non_null_type(field.type)
            roots.append(RootField(key, name, tuple(nodes), field, nullable, resolve, write))
        return tuple(roots)

    def collect(self, type_name: str, sets: list[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        fields: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for selection_set in sets:
            self._collect(type_name, selection_set, fields, visited)
        return fields

    def _collect(
        self,
        type_name: str,
        selection_set: SelectionSetNode,
        fields: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self._applies(condition.name.value, type_name):
                    self._collect(type_name, selection.selection_set, fields, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = self.plan.fragments.get(name)
                if fragment is None:
                    raise Unsupported(name)
                if self._applies(fragment.type_condition.name.value, type_name):
                    self._collect(type_name, fragment.selection_set, fields, visited)

    def _included(self, node: Node) -> bool:
        if not getattr(node, "directives", None):
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)  # type: ignore[arg-type]
        if skip and skip["if"]:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)  # type: ignore[arg-type]
        return not (include and not include["if"])

    def _applies(self, condition: str, type_name: str) -> bool:
        if condition == type_name:
            return True
        conditional = self.schema.get_type(condition)
        runtime = self.schema.get_type(type_name)
        return (
            is_abstract_type(conditional)
            and isinstance(runtime, GraphQLObjectType)
            and self.schema.is_sub_type(conditional, runtime)
        )

    def writer(self, type_name: str, sets: list[SelectionSetNode]) -> Writer:
        """A function (source, run) -> the object's JSON value."""
        sources = TYPES.get(type_name)
        graphql_type = self.schema.get_type(type_name)
        if sources is None or not isinstance(graphql_type, GraphQLObjectType):
            raise Unsupported(type_name)
        lines, checks, keys = [], [], []
        for index, (key, nodes) in enumerate(self.collect(type_name, sets).items()):
            local = f"a{index}"
            keys.append(f"{key!r}: {local}")
            name = nodes[0].name.value
            if name == "__typename":
                lines.append(f"{local} = {type_name!r}")
                continue
            source = sources.get(name)
            if source is None:
                raise Unsupported(f"{type_name}.{name}")
            field_type = graphql_type.fields[name].type
            if source.child is None:
                lines.append(f"{local} = {source.expr}")
                checks.extend(_leaf_checks(local, field_type))
                continue
            child_sets = [n.selection_set for n in nodes if n.selection_set is not None]
            child = self._define(self.writer(source.child, child_sets))
            if source.many:
                lines.append(f"{local} = [{child}(x, R) for x in {source.expr}]")
            elif is_non_null_type(field_type):
                lines.append(f"{local} = {child}({source.expr}, R)")
            else:
                lines.append(f"{local} = {source.expr}")
                lines.append(f"if {local} is not None: {local} = {child}({local}, R)")
        body = [*lines]
        if checks:
            body.append(f"if {' or '.join(checks)}: raise Unexpected({type_name!r})")
        body.append("return {" + ", ".join(keys) + "}")
        name = f"_write_{type_name}_{next(self.names)}"
        source_text = f"def {name}(S, R):\n" + "".join(f"    {line}\n" for line in body)
        exec(source_text, self.namespace)  # only the sources' expressions: see the docstring
        writer: Writer = self.namespace[name]
        return writer

    def _define(self, writer: Writer) -> str:
        name = writer.__name__
        self.namespace[name] = writer
        return name


def _leaf_checks(local: str, field_type: Any) -> list[str]:
    """Conditions under which graphql-core would refuse to serialise the value."""
    named: GraphQLNamedType = get_named_type(field_type)
    non_null = is_non_null_type(field_type)
    if named.name == "Int":
        in_range = f"not ({INT_MIN} <= {local} <= {INT_MAX})"
        return [in_range if non_null else f"({local} is not None and {in_range})"]
    return [f"{local} is None"] if non_null else []
