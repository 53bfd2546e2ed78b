"""Subscriptions over WebSocket (graphql-transport-ws and legacy graphql-ws), via
Strawberry's protocol handlers; the token comes in the connection_init payload
(:mod:`api.ws.auth`). A refused connection_init closes with the reason: 4401 for a bad
token, 4400 for a payload in an unknown shape (both final for graphql-ws's client), 4403
for too many connections; the legacy protocol sends ``connection_error`` first. A second
connection_init closes with 4429 on both protocols.

Every operation (query, mutation or subscription) takes a token from the caller's rate
limit buckets, shared with HTTP; a refused one gets an ``error`` message with
``RATE_LIMITED`` for its id, and the socket stays open.

Per identity: a cap on open connections and on live subscriptions; per address, a cap on
sockets that have not sent connection_init yet. A socket that does not send
connection_init in time, or has had nothing live for the idle timeout, is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable

from graphql import GraphQLFormattedError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.schema import Schema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage as TransportError,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage as LegacyError
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage
from strawberry.types.unset import UnsetType

from api.auth import InvalidToken
from api.bootstrap import Services
from api.graphql.context import Context
from api.graphql.limits import limit_error
from api.http.request import QueryTooLarge, utf8_length
from api.middleware.origins import is_loopback, loopback_allowed
from api.middleware.security import client_address, rate_limited_error
from api.ws.auth import Refused, authorization
from api.ws.fanout import PayloadEncoder, SocketOperation, socket_operation
from api.ws.frames import RAW_SEND_KEY, server_protocol
from api.ws.limits import identity_key

CONTEXT_KEY = "shopfront.context"
SEND_KEY = "shopfront.send"  # the connection's ASGI send, for the express lane
PENDING_KEY = "shopfront.pending"  # the address whose pending-socket count this one holds
IDLE_CLOSE_CODE = 4408
TOO_MANY_INITS = (4429, "Too many initialisation requests")


def _too_large(
    handler: BaseGraphQLTransportWSHandler[Context, None] | BaseGraphQLWSHandler[Context, None],
    payload: object,
) -> GraphQLFormattedError | None:
    """The error for an operation whose query is over the size limit (refused before
    it is parsed), else None."""
    view = handler.view
    query = payload.get("query") if isinstance(payload, dict) else None
    if not isinstance(view, WebSocketGraphQL) or not isinstance(query, str):
        return None
    max_bytes = view.services.settings.max_query_bytes
    if utf8_length(query) <= max_bytes:
        return None
    return limit_error("QUERY_TOO_LARGE", QueryTooLarge(max_bytes).message).formatted


def _socket_operation(
    handler: BaseGraphQLTransportWSHandler[Context, None] | BaseGraphQLWSHandler[Context, None],
    operation_id: str,
    message_type: str,
    is_live: Callable[[], bool],
) -> SocketOperation | None:
    adapter, view = handler.websocket, handler.view
    if not isinstance(adapter, ASGIWebSocketAdapter) or not isinstance(view, WebSocketGraphQL):
        return None
    send = adapter.ws.scope.get(SEND_KEY)
    if send is None:
        return None
    protocol = server_protocol(adapter.ws.scope.get(RAW_SEND_KEY))
    return SocketOperation(send, operation_id, message_type, view.payloads, is_live, protocol)


def _scope(
    handler: BaseGraphQLTransportWSHandler[Context, None] | BaseGraphQLWSHandler[Context, None],
) -> Scope | None:
    adapter = handler.websocket
    return adapter.ws.scope if isinstance(adapter, ASGIWebSocketAdapter) else None


def _initialising(
    handler: BaseGraphQLTransportWSHandler[Context, None] | BaseGraphQLWSHandler[Context, None],
) -> None:
    """connection_init has arrived: the socket no longer counts as pending."""
    scope, view = _scope(handler), handler.view
    if scope is not None and isinstance(view, WebSocketGraphQL):
        view.end_pending(scope)


async def _rate_limited(
    handler: BaseGraphQLTransportWSHandler[Context, None] | BaseGraphQLWSHandler[Context, None],
) -> GraphQLFormattedError | None:
    """The error for an operation about to start, if the caller's buckets are empty."""
    view, context = handler.view, handler.context
    if not isinstance(view, WebSocketGraphQL):
        return None
    identity = context.identity or identity_key(context.actor, context.address)
    wait = await view.services.rate_limits.request(identity, context.address)
    return rate_limited_error(wait) if wait else None


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with each operation's task knowing its socket operation
    (the express lane of its subscription: :mod:`api.ws.pubsub`)."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        _initialising(self)
        try:
            await super().handle_connection_init(message)  # a second one: 4429
        except Refused as refused:
            await self.websocket.close(code=refused.code, reason=refused.reason)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and message["id"] not in self.operations:
            error = _too_large(self, message.get("payload")) or await _rate_limited(self)
            if error is not None:
                await self.send_message(
                    TransportError(id=message["id"], type="error", payload=[error])
                )
                return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        def is_live() -> bool:
            return self.operations.get(operation.id) is operation and not operation.completed

        socket_operation.set(_socket_operation(self, operation.id, "next", is_live))
        await super().run_operation(operation)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy graphql-ws protocol, likewise; a second connection_init is refused (it
    would otherwise run the authentication, and take a connection slot, again)."""

    init_received = False

    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        if self.init_received:
            code, reason = TOO_MANY_INITS
            error = {"message": reason, "extensions": {"code": "BAD_USER_INPUT"}}
            await self.websocket.send_json({"type": "connection_error", "payload": error})
            await self.websocket.close(code=code, reason=reason)
            return
        self.init_received = True
        _initialising(self)
        try:
            await super().handle_connection_init(message)
        except Refused as refused:
            await self.websocket.send_json({"type": "connection_error", "payload": refused.payload})
            await self.websocket.close(code=refused.code, reason=refused.reason)

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged:
            error = _too_large(self, message.get("payload")) or await _rate_limited(self)
            if error is not None:
                await self.send_message(LegacyError(type="error", id=message["id"], payload=error))
                return
        await super().handle_start(message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        task = asyncio.current_task()

        def is_live() -> bool:
            # A stop takes the operation out of `subscriptions` first, then of `tasks`.
            return operation_id in self.subscriptions and self.tasks.get(operation_id) is task

        socket_operation.set(_socket_operation(self, operation_id, "data", is_live))
        await super().handle_async_results(operation_id, query, operation_name, variables)


class WebSocketGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: Schema, services: Services) -> None:
        settings = services.settings
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            allowed_origins=list(settings.allowed_origins),
            connection_init_wait_timeout=dt.timedelta(seconds=settings.websocket_init_timeout),
        )
        self.services = services
        self.payloads = PayloadEncoder()

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        if loopback_allowed(self.services.settings) and is_loopback(origin):
            return True
        return super().is_websocket_origin_allowed(request, origin)

    def encode_json(self, data: object) -> str:
        return self.payloads.encode(data)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        context = Context(self.services, None)
        context.address = client_address(request.scope)
        request.scope[CONTEXT_KEY] = context
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        header = authorization(context.connection_params or {})
        try:
            context.actor = self.services.authenticator.actor(header)
        except InvalidToken as error:
            raise Refused(4401, str(error), "UNAUTHENTICATED") from None
        key = identity_key(context.actor, context.address)
        if not self.services.connection_limits.open_connection(key):
            raise Refused(4403, "Too many connections for this user", "TOO_MANY_CONNECTIONS")
        context.identity = key  # counted: released when the socket ends
        return await super().on_ws_connect(context)

    def end_pending(self, scope: Scope) -> None:
        address = scope.pop(PENDING_KEY, None)
        if address is not None:
            self.services.connection_limits.end_pending(address)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        address = client_address(scope)
        if not self.services.connection_limits.open_pending(address):
            # Refused before the handshake (HTTP 403): nothing is held for it.
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        scope[PENDING_KEY] = address
        scope[SEND_KEY] = send
        watchdog = asyncio.create_task(self._close_when_idle(scope, send))
        try:
            await super().__call__(scope, receive, send)
        finally:
            watchdog.cancel()
            self.end_pending(scope)
            context: Context | None = scope.get(CONTEXT_KEY)
            if context is not None and context.identity is not None:
                self.services.connection_limits.close_connection(context.identity)

    async def _close_when_idle(self, scope: Scope, send: Send) -> None:
        """Close a socket that never authenticates in time (both protocols; Strawberry
        only times out graphql-transport-ws) or has had nothing live for too long."""
        settings = self.services.settings
        init_timeout = settings.websocket_init_timeout
        idle_timeout = settings.websocket_idle_timeout
        opened = time.monotonic()
        while True:
            await asyncio.sleep(min(init_timeout / 4, idle_timeout / 4, 5.0))
            context: Context | None = scope.get(CONTEXT_KEY)
            now = time.monotonic()
            if context is None or context.identity is None:
                if now - opened > init_timeout:
                    await self._close(send, "connection_init not received in time")
                    return
            elif not context.live_subscriptions and now - context.idle_since > idle_timeout:
                await self._close(send, "Idle for too long")
                return

    @staticmethod
    async def _close(send: Send, reason: str) -> None:
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": IDLE_CLOSE_CODE, "reason": reason})
