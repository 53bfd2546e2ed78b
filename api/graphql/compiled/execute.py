"""Running plans: the compiled path of a query, after the limits, or None (Strawberry's).

Only a document the schema's own cache has parsed and validated without errors is run
here, so every rule that validation applies (depth, aliases, operation count,
introspection, and the spec's own rules) has passed; the cost, which depends on the
variables, is checked here with the same function as :class:`CostLimit`, and an operation
over the limit goes to Strawberry, which refuses it. Variables are coerced by graphql-core;
if they do not coerce, Strawberry answers (with the error). The root fields run one after
another, each raising the errors its resolver raises (its field is null, and null
propagates per the spec: a non-null root field takes ``data`` with it); more than one
error, or anything unexpected, and Strawberry answers instead.

A mutation (:mod:`.commands`) runs its root fields one after another too. Whatever goes
wrong (a value the writers would not serialise, an exception from the bus), Strawberry
answers, as for a query; but once a command has been sent, it gets a :class:`Handover`:
what each command sent so far answered, which its resolvers take instead of running the
command again (api/graphql/payloads.py). So the answer is Strawberry's, errors and null
propagation included, and no command runs twice.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLError
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.types.execution import ExecutionResult

if TYPE_CHECKING:
    from api.bootstrap import Services

from api.graphql.errors import ApiError
from api.graphql.limits.rules import operation_cost
from api.graphql.schema import ShopSchema
from domain.commands import Actor
from domain.model import DomainError

from .plan import Plan, Roots
from .run import Run

log = logging.getLogger("shopfront.compiled")


@dataclasses.dataclass(frozen=True, slots=True)
class Handover:
    """A mutation for Strawberry to answer after some of its commands ran here: what each
    answered (result, user errors or exception), by its root field's response key."""

    outcomes: dict[str, Any]


_FAILED = object()  # a root field whose resolver raised
MAX_COSTS_PER_PLAN = 256
NO_VARIABLES = VariableValues(sources={}, coerced={})


class CompiledReads:
    """The compiled read path of one schema, and how many operations took which path."""

    def __init__(self, schema: ShopSchema, *, enabled: bool, mutations: bool = True) -> None:
        self.enabled = enabled
        self.mutations = mutations  # SHOPFRONT_COMPILED_MUTATIONS
        self.documents = schema.documents
        self.schema = schema._schema
        self.max_cost = schema.limits.max_cost
        self.compiled = 0
        self.fallback = 0
        self.compiled_mutations = 0
        self.fallback_mutations = 0

    def plan(self, query: str, operation_name: str | None) -> Plan | None:
        found = self.documents.validated(query)
        if found is None:
            return None
        document, plans = found
        if operation_name not in plans:
            plans[operation_name] = Plan.of(self.schema, document, operation_name)
        plan: Plan | None = plans[operation_name]
        return plan

    async def execute(
        self,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        actor: Actor | None,
        engine: AsyncEngine,
        services: Services | None = None,
    ) -> ExecutionResult | Handover | None:
        """The result of the operation, or None: run it on Strawberry (a Handover: with
        what the commands that ran here answered). A mutation needs ``services`` (its
        commands go to their bus)."""
        plan = self.plan(query, operation_name)
        if plan is None or (plan.mutation and (services is None or not self.mutations)):
            return None
        run = Run(actor, engine, services)
        try:
            return await self._execute(plan, query, operation_name, variables or {}, run)
        except Exception:
            # Whatever it is, the Strawberry path answers (and reports it).
            log.debug("compiled operation fell back", exc_info=True)
            return Handover(run.outcomes) if run.sent else None

    async def _execute(
        self,
        plan: Plan,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any],
        run: Run,
    ) -> ExecutionResult | None:
        definitions = plan.operation.variable_definitions
        coerced = NO_VARIABLES
        if definitions:
            values = get_variable_values(self.schema, definitions, variables)
            if isinstance(values, list):
                return None
            coerced = values
        if self._cost(plan, query, operation_name, variables, coerced) > self.max_cost:
            return None
        roots = plan.roots(coerced)
        if roots is None:
            return None
        if plan.mutation:
            return await _run_mutation(roots, run, coerced)
        return await _run(roots, run, coerced)

    def _cost(
        self,
        plan: Plan,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any],
        coerced: VariableValues,
    ) -> int:
        """As CostLimit measures it; kept per plan by the values of the variables given as
        a ``first`` argument (the only ones the cost depends on: limits/shape.py DataCost),
        so an operation with none (a mutation's input, a ``product(sku:)``) is measured
        once."""
        used = {name: coerced.coerced.get(name) for name in plan.cost_variables}
        try:
            key: str | None = orjson.dumps(used, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # a value orjson does not write: measured every time
            key = None
        cost = None if key is None else plan.costs.get(key)
        if cost is None:
            document = self.documents.validated(query)
            assert document is not None
            cost = operation_cost(self.schema, document[0], operation_name, variables)
            if key is not None and len(plan.costs) < MAX_COSTS_PER_PLAN:
                plan.costs[key] = cost
        return cost


async def _run(roots: Roots, run: Run, variables: VariableValues) -> ExecutionResult | None:
    sources: list[Any] = []
    errors: list[GraphQLError] = []
    for root in roots:
        if root.resolve is None or root.field is None:
            sources.append(None)  # __typename
            continue
        args = get_argument_values(root.field, root.nodes[0], variables)
        try:
            sources.append(await root.resolve(run, args))
        except (ApiError, DomainError) as error:
            errors.append(
                GraphQLError(str(error), list(root.nodes), path=[root.key], original_error=error)
            )
            sources.append(_FAILED)
    if len(errors) > 1:
        return None  # several errors: their order is the executor's to give
    data = _write(roots, sources, run)
    if run.incomplete:  # objects reached by id: load them all at once, and write again
        await run.load_missing()
        data = _write(roots, sources, run)
    return ExecutionResult(data=data, errors=errors or None)


def _write(roots: Roots, sources: list[Any], run: Run) -> dict[str, Any] | None:
    data: dict[str, Any] = {}
    for root, source in zip(roots, sources, strict=True):
        write = root.write
        if source is _FAILED:
            if not root.nullable:
                return None
            data[root.key] = None
        elif root.resolve is None:
            data[root.key] = "Query"
        elif source is None:
            if not root.nullable:
                raise ValueError(f"{root.name} resolved to null")
            data[root.key] = None
        elif isinstance(write, dict):
            type_name, found = source
            data[root.key] = write[type_name](found, run)
        elif write is not None:
            data[root.key] = write(source, run)
    return data


async def _run_mutation(roots: Roots, run: Run, variables: VariableValues) -> ExecutionResult:
    """The root fields in order, each written before the next runs (as graphql-core's
    serial execution). Anything raised goes to Strawberry (see :class:`Handover`)."""
    data: dict[str, Any] = {}
    for root in roots:
        if root.resolve is None or root.field is None:
            data[root.key] = "Mutation"  # __typename
            continue
        run.key = root.key
        args = get_argument_values(root.field, root.nodes[0], variables)
        source = await root.resolve(run, args)
        value = _write((root,), [source], run)
        if run.incomplete:
            await run.load_missing()
            value = _write((root,), [source], run)
        assert value is not None  # a mutation's payload is never null here
        data[root.key] = value[root.key]
    return ExecutionResult(data=data, errors=None)
