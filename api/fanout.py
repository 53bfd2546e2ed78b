"""One committed change, many subscribers: do the work once, not once per subscriber.

A change published to N subscriptions used to be turned into GraphQL objects, executed
against the subscription's selection set and encoded as JSON N times. Here:

* :func:`shared_event` builds the :class:`OrderEvent` of a change once (the broker hands
  the same change object to every subscription);
* :class:`FanOutExecutionContext` executes a subscription's selection set once per
  distinct (operation, variables, caller) for that event, and hands every other
  subscriber the same result;
* :class:`PayloadEncoder` encodes the payload of a ``next`` message once per result and
  splices it into each subscriber's message (only the operation id differs).

Every subscriber still gets exactly the bytes it would have got on its own: same selection
set, same variables, same caller means the same result.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from graphql.pyutils import AwaitableOrValue
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.types.order import Order, OrderEvent
from projections.base import OrderChange

RECENT = 256  # changes (and payloads) remembered: a burst of commits fans out in parallel


class _IdentityLru:
    """A small LRU keyed by object identity, holding the key object itself (so its id
    cannot be reused by another object while the entry lives)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict[int, tuple[object, Any]] = collections.OrderedDict()

    def get_or_make(self, key: object, make: Callable[[], Any]) -> Any:
        found = self._items.get(id(key))
        if found is not None and found[0] is key:
            self._items.move_to_end(id(key))
            return found[1]
        value = make()
        self._items[id(key)] = (key, value)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


_events = _IdentityLru(RECENT)


def shared_event(change: OrderChange) -> OrderEvent:
    """The subscription payload of ``change``, built once for all its subscribers."""

    def make() -> OrderEvent:
        return OrderEvent(
            event=change.event,
            version=change.version,
            occurred_at=change.occurred_at,
            order=Order.from_doc(dict(change.doc)),
        )

    event: OrderEvent = _events.get_or_make(change, make)
    return event


Execution = AwaitableOrValue[Any]
_runs = _IdentityLru(RECENT)  # per event: the executions made for it so far


class FanOutExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Runs each subscription event once per (operation, variables, caller)."""

    def execute_operation(self, serially: bool | None = None) -> Execution:
        event = self.root_value
        if not isinstance(event, OrderEvent):
            return super().execute_operation(serially)
        actor = getattr(self.context_value, "actor", None)
        caller = None if actor is None else (actor.role, actor.id)
        variables = self.variable_values.coerced
        runs: list[tuple[Any, dict[str, Any], object, Execution]] = _runs.get_or_make(event, list)
        for operation, seen_variables, seen_caller, result in runs:
            if (
                operation is self.operation
                and seen_caller == caller
                and seen_variables == variables
            ):
                return _share(result)
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            result = asyncio.ensure_future(_awaited(result))
        runs.append((self.operation, dict(variables), caller, result))
        return _share(result)


async def _awaited(result: Awaitable[Any]) -> Any:
    return await result


def _share(result: Execution) -> Execution:
    # Each subscriber awaits its own shield: one of them going away (and its await being
    # cancelled) must not cancel the execution the others wait for.
    return asyncio.shield(result) if isinstance(result, asyncio.Future) else result


class PayloadEncoder:
    """JSON of WebSocket messages; a ``next``/``data`` message whose payload is only
    ``data`` has that payload encoded once per result object."""

    def __init__(self) -> None:
        self._payloads = _IdentityLru(RECENT)

    def encode(self, message: object) -> str:
        if isinstance(message, dict) and message.get("type") in ("next", "data"):
            payload = message.get("payload")
            data = payload.get("data") if isinstance(payload, dict) else None
            if isinstance(payload, dict) and isinstance(data, dict) and len(payload) == 1:
                encoded: str = self._payloads.get_or_make(data, lambda: _dumps({"data": data}))
                return (
                    f'{{"id":{_dumps(message.get("id"))},"type":{_dumps(message["type"])},'
                    f'"payload":{encoded}}}'
                )
        return _dumps(message)


def _dumps(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # beyond orjson (e.g. an int over 64 bits): the standard library
        return json.dumps(value, separators=(",", ":"))
