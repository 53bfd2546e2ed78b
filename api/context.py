"""Per-request context: who is asking, the services, and this request's DataLoaders."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from api import readers
from api.errors import ApiError
from api.services import Services
from domain.commands import Actor

V = TypeVar("V")


def _loader(
    fetch: Callable[[Sequence[str]], Awaitable[Mapping[str, V]]],
) -> DataLoader[str, V | None]:
    async def load(keys: list[str]) -> list[V | None]:
        found = await fetch(keys)
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load)


@dataclasses.dataclass
class Context:
    services: Services
    actor: Actor | None
    # Set by Strawberry from the WebSocket connection_init payload.
    connection_params: dict[str, Any] | None = None

    @functools.cached_property
    def products(self) -> DataLoader[str, readers.Row | None]:
        return _loader(functools.partial(readers.products_by_ids, self.services.read_engine))

    @functools.cached_property
    def customers(self) -> DataLoader[str, readers.Row | None]:
        return _loader(functools.partial(readers.customers_by_ids, self.services.read_engine))

    @functools.cached_property
    def orders(self) -> DataLoader[str, readers.Doc | None]:
        return _loader(functools.partial(readers.orders_by_ids, self.services.read_engine))

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise ApiError("UNAUTHENTICATED", "Sign in to see this")
        return self.actor

    def require_staff(self) -> Actor:
        actor = self.require_actor()
        if not actor.is_staff:
            raise ApiError("FORBIDDEN", "Only staff may see this")
        return actor


Info = StrawberryInfo[Context, None]
