"""One execution of a plan: who asks, the read engine, and the objects loaded by id.

Fields that reach another screen's row by id (``Order.customer``, ``OrderLine.product``)
ask the run, which answers from what it has loaded and notes the ids it lacks; the
executor then loads all of them in one query per table and writes the answer again. So a
page of twenty orders with their customers costs two queries, as with the DataLoaders.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from domain.commands import Actor
from domain.model import can_see_order
from projections.reads import Row
from projections.screens import catalog, customer_profile

if TYPE_CHECKING:
    from api.bootstrap import Services

Fetch = Callable[[AsyncEngine, Sequence[str]], Awaitable[dict[str, Row]]]


class _Loaded:
    __slots__ = ("fetch", "found", "missing")

    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self.found: dict[str, Row | None] = {}
        self.missing: set[str] = set()

    def get(self, key: str) -> Row | None:
        found = self.found
        if key in found:
            return found[key]
        self.missing.add(key)
        return None

    async def load_missing(self, engine: AsyncEngine) -> None:
        keys = sorted(self.missing)
        rows = await self.fetch(engine, keys)
        for key in keys:
            self.found[key] = rows.get(key)
        self.missing.clear()


class Run:
    __slots__ = ("actor", "customers", "engine", "key", "outcomes", "products", "sent", "services")

    def __init__(
        self, actor: Actor | None, engine: AsyncEngine, services: Services | None = None
    ) -> None:
        self.actor = actor
        self.engine = engine
        self.services = services  # a mutation's: the command bus, the runner
        self.sent = False  # a mutation's: a command has gone to the bus
        self.key = ""  # a mutation's: the response key of the root field being run
        # A mutation's: what each command answered, by response key (see Handover).
        self.outcomes: dict[str, Any] = {}
        self.customers = _Loaded(customer_profile.customers_by_ids)
        self.products = _Loaded(catalog.products_by_ids)

    def customer(self, customer_id: str) -> Row | None:
        """An order's customer: only for whoever may see the order."""
        if not can_see_order(self.actor, customer_id):
            return None
        return self.customers.get(customer_id)

    def product(self, product_id: str) -> Row | None:
        return self.products.get(product_id)

    @property
    def incomplete(self) -> bool:
        return bool(self.customers.missing or self.products.missing)

    async def load_missing(self) -> None:
        for loaded in (self.customers, self.products):
            if loaded.missing:
                await loaded.load_missing(self.engine)
