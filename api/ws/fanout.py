"""One committed change, many subscribers: do the work once, not once per subscriber.

Without this, a change published to N subscriptions would be turned into GraphQL objects,
executed against the subscription's selection set and encoded as JSON N times. Here:

* :func:`shared_event` builds the :class:`OrderEvent` of a change once (the broker hands
  the same change object to every subscription);
* :class:`FanOutExecutionContext` executes a subscription's selection set once per
  distinct (operation, variables, caller) for that event, and hands every other
  subscriber the same result;
* :class:`PayloadEncoder` encodes the payload of a ``next`` message once per result and
  splices it into each subscriber's message (only the operation id differs);
* :class:`Express` is a subscription's express lane (see :mod:`api.ws.pubsub`): the broker
  hands it a change while the subscriber waits, and it looks up the shared result, takes
  the shared JSON and writes the message to the subscriber's socket there and then, with
  no task to wake and no pass through graphql-core's and Strawberry's stream of results.

Every subscriber still gets exactly the bytes it would have got on its own: same selection
set, same variables, same caller means the same result.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Hashable
from typing import Any

import orjson
from graphql import ExecutionResult, OperationType
from graphql.pyutils import AwaitableOrValue
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from api.graphql.context import Info
from api.graphql.orders.types import Order, OrderEvent
from api.ws.frames import text_frame, write_frame
from api.ws.pubsub import Delivery
from projections.base import OrderChange

log = logging.getLogger("shopfront.fanout")

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
Run = tuple[Any, dict[str, Any], object, Execution]
_runs = _IdentityLru(RECENT)  # per event: the executions made for it so far

# The executor of the subscription operation being set up in this task (a WebSocket
# operation has a task of its own): what an express lane executes events with.
_subscription_executor: contextvars.ContextVar[FanOutExecutionContext | None] = (
    contextvars.ContextVar("shopfront_subscription_executor", default=None)
)


def _caller(context: object) -> object:
    actor = getattr(context, "actor", None)
    return None if actor is None else (actor.role, actor.id)


def _find(
    runs: list[Run], operation: object, variables: dict[str, Any], caller: object
) -> Run | None:
    for run in runs:
        if run[0] is operation and run[2] == caller and run[1] == variables:
            return run
    return None


class FanOutExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Runs each subscription event once per (operation, variables, caller)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.operation.operation is OperationType.SUBSCRIPTION:
            _subscription_executor.set(self)

    def execute_operation(self, serially: bool | None = None) -> Execution:
        event = self.root_value
        if not isinstance(event, OrderEvent):
            return super().execute_operation(serially)
        caller = _caller(self.context_value)
        variables = self.variable_values.coerced
        runs: list[Run] = _runs.get_or_make(event, list)
        found = _find(runs, self.operation, variables, caller)
        if found is not None:
            return _share(found[3])
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            result = asyncio.ensure_future(_awaited(result))
        runs.append((self.operation, dict(variables), caller, result))
        return _share(result)

    def shared_result(self, event: OrderEvent) -> ExecutionResult | None:
        """This operation's result for ``event`` if it is ready and has no errors (the
        result every subscriber with the same operation, variables and caller gets);
        None if it has to be awaited or reported with its errors."""
        runs: list[Run] = _runs.get_or_make(event, list)
        found = _find(
            runs, self.operation, self.variable_values.coerced, _caller(self.context_value)
        )
        result = (
            found[3]
            if found is not None
            else self.build_per_event_executor(event).execute_operation(False)
        )
        if isinstance(result, asyncio.Future):
            if not result.done() or result.cancelled() or result.exception() is not None:
                return None
            result = result.result()
        if not isinstance(result, ExecutionResult) or result.errors:
            return None
        return result


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
        # The messages made for the change being fanned out, by Express.key.
        self._change: object = None
        self._messages: dict[Hashable, str | None] = {}
        self._frame_text: str | None = None  # the last message made a frame, and its frame
        self._frame = b""

    def encode(self, message: object) -> str:
        if isinstance(message, dict) and message.get("type") in ("next", "data"):
            payload = message.get("payload")
            data = payload.get("data") if isinstance(payload, dict) else None
            if isinstance(payload, dict) and isinstance(data, dict) and len(payload) == 1:
                return self.data_message(_dumps(message.get("id")), message["type"], data)
        return _dumps(message)

    def data_message(self, id_json: str, message_type: str, data: dict[str, Any]) -> str:
        """``{"id": ..., "type": ..., "payload": {"data": data}}``, the payload's JSON
        made once per ``data`` object."""
        encoded: str = self._payloads.get_or_make(data, lambda: _dumps({"data": data}))
        return f'{{"id":{id_json},"type":"{message_type}","payload":{encoded}}}'

    def frame_of(self, text: str) -> bytes:
        """``text`` as a WebSocket frame (``api.ws.frames``), made once for the subscribers
        of a broadcast that share one message (the same ``str`` object)."""
        if text is not self._frame_text:
            self._frame_text, self._frame = text, text_frame(text)
        return self._frame

    def message_for(
        self, change: OrderChange, key: Hashable, make: Callable[[OrderChange], str | None]
    ) -> str | None:
        """``make(change)``, once per change and key: subscribers of a broadcast with the
        same key (same message to send) share one lookup of the result and one message."""
        if change is not self._change:
            self._change, self._messages = change, {}
        try:
            return self._messages[key]
        except KeyError:
            message = self._messages[key] = make(change)
            return message


def _dumps(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # beyond orjson (e.g. an int over 64 bits): the standard library
        return json.dumps(value, separators=(",", ":"))


@dataclasses.dataclass(frozen=True, slots=True)
class SocketOperation:
    """The WebSocket operation a subscription resolver runs in: set by the protocol
    handlers of :mod:`api.ws.view` in the operation's own task."""

    send: Callable[[Message], Awaitable[None]]  # the connection's ASGI send
    operation_id: str
    message_type: str  # "next" (graphql-transport-ws) or "data" (graphql-ws)
    encoder: PayloadEncoder
    is_live: Callable[[], bool]  # False once the client stopped it or it ended
    # The server's protocol object, if its frames can be written directly (api.ws.frames).
    protocol: WebSocketsSansIOProtocol | None = None


socket_operation: contextvars.ContextVar[SocketOperation | None] = contextvars.ContextVar(
    "shopfront_socket_operation", default=None
)


class Express:
    """A subscription's express lane: a change becomes this subscriber's ``next``
    message and is written to its socket at once, from the broker's publish.

    The message is what the stream would have sent: the same shared result (executed
    once per operation, variables and caller), the same encoder. A change is left to the
    stream (returns False) when its result has to be awaited or carries errors, which
    the stream reports with their codes. Schema extensions' per-result hooks
    (``on_stream_result``) do not run for express messages: the one we have
    (``api.graphql.errors.ErrorCodes``) only acts on errors. An extension added later that must
    see every result has to be checked here too.
    """

    __slots__ = ("executor", "id_json", "key", "operation")

    def __init__(self, operation: SocketOperation, executor: FanOutExecutionContext) -> None:
        self.operation = operation
        self.executor = executor
        self.id_json = _dumps(operation.operation_id)
        # What decides the message: the operation (held by the executor, so its id is
        # not reused while this lives), variables, caller, protocol and operation id.
        # (The standard library's JSON here: a small bytes object from orjson, kept for
        # the subscription's life, holds on to far more memory than its length.)
        try:
            variables = json.dumps(executor.variable_values.coerced, sort_keys=True)
        except (TypeError, ValueError):
            self.key: Hashable | None = None  # variables beyond JSON: not shared
        else:
            self.key = (
                id(executor.operation),
                variables,
                _caller(executor.context_value),
                operation.message_type,
                self.id_json,
            )

    def __call__(self, change: OrderChange) -> Delivery:
        operation = self.operation
        if not operation.is_live():
            return True  # stopped: nothing more is sent for it
        key = self.key
        if key is None:
            text = self._message(change)
        else:
            text = operation.encoder.message_for(change, key, self._message)
        if text is None:
            return False
        protocol = operation.protocol
        if protocol is not None and write_frame(protocol, operation.encoder.frame_of(text)):
            return True
        return send_now(operation.send({"type": "websocket.send", "text": text}))

    def _message(self, change: OrderChange) -> str | None:
        result = self.executor.shared_result(shared_event(change))
        if result is None or not isinstance(result.data, dict):
            return None
        operation = self.operation
        return operation.encoder.data_message(self.id_json, operation.message_type, result.data)


def express_lane(info: Info) -> Express | None:
    """The express lane of the subscription ``info`` resolves, when it runs as an
    operation of one of our WebSocket handlers (else None: the stream delivers)."""
    operation = socket_operation.get()
    executor = _subscription_executor.get()
    if (
        operation is None
        or executor is None
        or executor.operation is not info.operation
        or executor.context_value is not info.context
    ):
        return None
    return Express(operation, executor)


_GONE = (WebSocketDisconnect, RuntimeError, OSError)  # the socket closed under the send


def send_now(send: Awaitable[None]) -> Delivery:
    """Run ``send`` as far as it goes without waiting; if it has to wait (the socket's
    buffer is full), the rest of it runs in a task, which is returned."""
    if not isinstance(send, Coroutine):  # an ASGI send may return any awaitable
        return asyncio.ensure_future(send)
    try:
        waiting_on = send.send(None)
    except StopIteration:
        return True
    except _GONE:
        return True
    return asyncio.ensure_future(_Rest(send, waiting_on))


class _Rest:
    """The rest of a coroutine that has already run up to its first wait (on
    ``waiting_on``), as an awaitable: what ``await`` would have done with it."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self.coroutine = coroutine
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, step = self.coroutine, self.waiting_on
        while True:
            try:
                sent = yield step
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # passed on, as await would
                try:
                    step = coroutine.throw(error)
                except StopIteration:
                    return
                except _GONE:
                    return
            else:
                try:
                    step = coroutine.send(sent)
                except StopIteration:
                    return
                except _GONE:
                    return
