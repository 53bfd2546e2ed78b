"""Per-request context: who is asking, the services, and this request's DataLoaders."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from api.bootstrap import Services
from api.graphql.errors import ApiError
from api.middleware.security import CLIENT_ADDRESS
from api.ws.limits import identity_key
from api.ws.pubsub import Subscription
from domain.commands import Actor
from domain.model import require_staff
from projections.reads import Doc, Row
from projections.screens import catalog, customer_profile, order_detail

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
    # WebSocket only: whose connection this is, and when it last had something live.
    identity: str | None = None
    # The client's address: over HTTP the one the rate-limit middleware saw.
    address: str = dataclasses.field(default_factory=CLIENT_ADDRESS.get)
    live_subscriptions: int = 0
    idle_since: float = dataclasses.field(default_factory=time.monotonic)
    # A compiled mutation handed over after its commands ran (api/graphql/compiled/):
    # what each root field's command answered, by response key; its resolver takes that
    # instead of running the command again.
    outcomes: dict[str, Any] = dataclasses.field(default_factory=dict)

    @contextlib.contextmanager
    def follow(self, key: str) -> Iterator[Subscription]:
        """Subscribe to committed order changes under ``key``, counted against the caller's
        cap of live subscriptions (and keeping the connection from idling out)."""
        identity = self.identity or identity_key(self.actor, "local")
        with self.services.connection_limits.subscription(identity):
            subscription = self.services.broker.subscribe(key)
            self.live_subscriptions += 1
            try:
                yield subscription
            finally:
                subscription.close()
                self.live_subscriptions -= 1
                self.idle_since = time.monotonic()

    @functools.cached_property
    def products(self) -> DataLoader[str, Row | None]:
        return _loader(functools.partial(catalog.products_by_ids, self.services.read_engine))

    @functools.cached_property
    def customers(self) -> DataLoader[str, Row | None]:
        return _loader(
            functools.partial(customer_profile.customers_by_ids, self.services.read_engine)
        )

    @functools.cached_property
    def orders(self) -> DataLoader[str, Doc | None]:
        return _loader(functools.partial(order_detail.orders_by_ids, self.services.read_engine))

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise ApiError("UNAUTHENTICATED", "Sign in to see this")
        return self.actor

    def require_staff(self) -> Actor:
        return require_staff(self.actor, "see this")


Info = StrawberryInfo[Context, None]
