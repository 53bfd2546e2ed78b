"""The limits a document must pass before it runs: as validation rules (a property of the
document alone, cached with its validation) and, for the cost, which depends on the
variables, as a check per request."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_variable_values,
)
from strawberry.extensions import SchemaExtension

from api.graphql.limits.estimates import item_estimates
from api.graphql.limits.shape import DataCost, DocumentShape


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 12
    max_aliases: int = 30
    max_operations: int = 10
    max_tokens: int = 5000
    # The order history and staff screens at a full page (first: 100) cost ~10_400.
    max_cost: int = 25_000
    # Introspection, by its own rule: the full introspection queries of graphql-js and
    # graphql-core (every option) are 15 deep and cost under 230_000 by the estimates in
    # api/graphql/limits/shape.py; a few `__type` lookups fit beside one.
    max_introspection_depth: int = 20
    max_introspection_fields: int = 10
    max_introspection_cost: int = 1_000_000
    # Bytes of query text, checked before anything parses or caches it.
    max_query_bytes: int = 64 * 1024


def limit_error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def document_errors(document: DocumentNode, limits: Limits) -> Iterator[GraphQLError]:
    """What makes a document too big, whatever its variables."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) > limits.max_operations:
        yield limit_error(
            "TOO_MANY_OPERATIONS", f"A document may hold at most {limits.max_operations} operations"
        )
    shapes = DocumentShape(document, cap=max(limits.max_depth, limits.max_introspection_depth) + 1)
    for operation in operations:
        shape = shapes.measure(operation.selection_set)
        if shape.depth > limits.max_depth:
            yield limit_error(
                "QUERY_TOO_DEEP",
                f"Query depth {shape.depth} exceeds the limit of {limits.max_depth}",
            )
        if shape.introspection_depth > limits.max_introspection_depth:
            yield limit_error(
                "QUERY_TOO_DEEP",
                f"Introspection depth {shape.introspection_depth} exceeds the limit of "
                f"{limits.max_introspection_depth}",
            )
        if shape.introspection_fields > limits.max_introspection_fields:
            yield limit_error(
                "QUERY_TOO_COSTLY",
                f"{shape.introspection_fields} __schema/__type fields exceed the limit of "
                f"{limits.max_introspection_fields}",
            )
        elif shape.introspection_cost > limits.max_introspection_cost:
            yield limit_error(
                "QUERY_TOO_COSTLY",
                f"Introspection cost {shape.introspection_cost} exceeds the limit of "
                f"{limits.max_introspection_cost}",
            )
    aliases = sum(
        _count_aliases(d.selection_set)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    )
    if aliases > limits.max_aliases:
        yield limit_error(
            "TOO_MANY_ALIASES", f"{aliases} aliases exceed the limit of {limits.max_aliases}"
        )


def validation_rules(limits: Limits) -> list[type[ASTValidationRule]]:
    class DocumentLimits(ValidationRule):
        """Depth, introspection, aliases and operation count."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            for error in document_errors(context.document, limits):
                self.report_error(error)

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
            found = operation_cost(
                ctx.schema._schema, document, ctx.operation_name, ctx.variables or {}
            )
            if found > self.max_cost:
                ctx.result = ExecutionResult(data=None, errors=[cost_error(found, self.max_cost)])
        yield


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any],
) -> int:
    """The cost of the operation to run (the largest if no name picks one), with these
    variables; 0 if they do not coerce (execution reports them)."""
    found = 0
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode) or (
            operation_name is not None
            and (operation.name is None or operation.name.value != operation_name)
        ):
            continue
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            continue
        costs = DataCost(document, coerced.coerced, item_estimates(schema))
        found = max(found, costs.cost(operation.selection_set))
    return found


def cost_error(cost: int, max_cost: int) -> GraphQLError:
    return limit_error(
        "QUERY_TOO_COSTLY",
        f"Query cost {cost} exceeds the limit of {max_cost}; ask for fewer items or fields",
    )
