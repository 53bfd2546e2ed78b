"""Subscriptions over WebSocket (graphql-transport-ws and legacy graphql-ws), via
Strawberry's protocol handlers; the token comes in the connection_init payload."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import Schema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from api.auth import InvalidToken, actor_from_header
from api.context import Context
from api.services import Services


class WebSocketGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: Schema, services: Services) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            allowed_origins=list(services.settings.allowed_origins),
        )
        self.services = services

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(self.services, None)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params: dict[str, Any] = context.connection_params or {}
        header = params.get("Authorization", params.get("authorization"))
        if header is not None and not isinstance(header, str):
            raise ConnectionRejectionError({"message": "Authorization must be a string"})
        try:
            context.actor = actor_from_header(self.services.settings.jwt_secret, header)
        except InvalidToken as error:
            raise ConnectionRejectionError({"message": str(error)}) from None
        return await super().on_ws_connect(context)
