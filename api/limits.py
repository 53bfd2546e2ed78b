"""Query limits with clear errors: depth, aliases, operations per document, size in tokens
(checked once per document and cached), and cost (checked per request, with variables).

Cost: every field costs 1; a connection multiplies what is under it by its ``first`` and
a plain list by a fixed estimate. The defaults let every screen query pass with room.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ASTValidationRule,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

from api.types.common import MAX_PAGE

# A list field without `first`: how many items to expect.
LIST_ESTIMATES = {
    "lines": 5,
    "timeline": 5,
    "ordersByStatus": 5,
    "topProducts": 10,
    "projections": 6,
}
DEFAULT_FIRST = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 12
    max_aliases: int = 30
    max_operations: int = 10
    max_tokens: int = 5000
    # The order history and staff screens at a full page (first: 100) cost ~10_400.
    max_cost: int = 25_000


def limit_error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _fragments(document: Any) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _fields(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> Iterator[tuple[FieldNode, frozenset[str]]]:
    """Fields of a selection set, looking through fragments (each fragment once per path)."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection, seen
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                yield from _fields(fragment.selection_set, fragments, seen | {name})


def depth(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    deepest = 0
    for field, _ in _fields(selection_set, fragments):
        deepest = max(deepest, 1 + depth(field.selection_set, fragments))
    return deepest


def cost(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    total = 0
    for field, _ in _fields(selection_set, fragments):
        total += 1 + _multiplier(field, variables) * cost(field.selection_set, fragments, variables)
    return total


def _multiplier(field: FieldNode, variables: Mapping[str, Any]) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            value: Any = argument.value
            if isinstance(value, VariableNode):
                value = variables.get(value.name.value)
            elif isinstance(value, IntValueNode):
                value = int(value.value)
            if isinstance(value, int):
                return max(0, min(value, MAX_PAGE))
            return DEFAULT_FIRST
    if field.name.value in ("products", "myOrders", "fulfillmentQueue", "parkedEvents"):
        return DEFAULT_FIRST if field.name.value != "fulfillmentQueue" else 50
    return LIST_ESTIMATES.get(field.name.value, 1)


def validation_rules(limits: Limits) -> list[type[ASTValidationRule]]:
    class DocumentLimits(ValidationRule):
        """Depth, aliases and operation count: properties of the document alone."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = _fragments(document)
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > limits.max_operations:
                self.report_error(
                    limit_error(
                        "TOO_MANY_OPERATIONS",
                        f"A document may hold at most {limits.max_operations} operations",
                    )
                )
            aliases = 0
            for operation in operations:
                found = depth(operation.selection_set, fragments)
                if found > limits.max_depth:
                    self.report_error(
                        limit_error(
                            "QUERY_TOO_DEEP",
                            f"Query depth {found} exceeds the limit of {limits.max_depth}",
                        )
                    )
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
                    aliases += _count_aliases(definition.selection_set)
            if aliases > limits.max_aliases:
                self.report_error(
                    limit_error(
                        "TOO_MANY_ALIASES",
                        f"{aliases} aliases exceed the limit of {limits.max_aliases}",
                    )
                )

    return [DocumentLimits]


def _count_aliases(selection_set: SelectionSetNode | None) -> int:
    if selection_set is None:
        return 0
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode) and selection.alias is not None:
            count += 1
        if isinstance(selection, FieldNode | InlineFragmentNode):
            count += _count_aliases(selection.selection_set)
    return count


class CostLimit(SchemaExtension):
    """Refuses, before execution, an operation whose cost exceeds the limit."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None:
            fragments = _fragments(document)
            operations = [
                d
                for d in document.definitions
                if isinstance(d, OperationDefinitionNode)
                and (
                    ctx.operation_name is None
                    or (d.name is not None and d.name.value == ctx.operation_name)
                )
            ]
            variables = ctx.variables or {}
            found = max(
                (cost(op.selection_set, fragments, variables) for op in operations), default=0
            )
            if found > self.max_cost:
                ctx.result = ExecutionResult(
                    data=None,
                    errors=[
                        limit_error(
                            "QUERY_TOO_COSTLY",
                            f"Query cost {found} exceeds the limit of {self.max_cost}; ask for "
                            "fewer items or fields",
                        )
                    ],
                )
        yield
