"""Writers: one Python function per object selection, generated from the expressions of
:mod:`api.graphql.compiled.sources`, that turns a source (read row, order document) into
the object's JSON value, checking what graphql-core would refuse to serialise.

The generated code is made only of those expressions, of the schema's type names and of
``repr()`` of response keys, which validation has already held to GraphQL names.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLNamedType,
    GraphQLObjectType,
    SelectionSetNode,
    get_named_type,
    is_non_null_type,
)

from .collect import FieldCollector, Unsupported
from .run import Run
from .sources import HELPERS, TYPES

Writer = Callable[[Any, Run], Any]
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class Unexpected(Exception):
    """A value the Strawberry path would report as an error (a null in a non-null field,
    an Int out of range): that path answers instead."""


class WriterGenerator:
    def __init__(self, collector: FieldCollector) -> None:
        self.collector = collector
        self.schema = collector.schema
        self.namespace: dict[str, Any] = {**HELPERS, "Unexpected": Unexpected}
        self.names = itertools.count()

    def writer(self, type_name: str, sets: list[SelectionSetNode]) -> Writer:
        """A function (source, run) -> the object's JSON value."""
        sources = TYPES.get(type_name)
        graphql_type = self.schema.get_type(type_name)
        if sources is None or not isinstance(graphql_type, GraphQLObjectType):
            raise Unsupported(type_name)
        lines, checks, keys = [], [], []
        for index, (key, nodes) in enumerate(self.collector.collect(type_name, sets).items()):
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
        if checks:
            lines.append(f"if {' or '.join(checks)}: raise Unexpected({type_name!r})")
        lines.append("return {" + ", ".join(keys) + "}")
        name = f"_write_{type_name}_{next(self.names)}"
        source_text = f"def {name}(S, R):\n" + "".join(f"    {line}\n" for line in lines)
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
