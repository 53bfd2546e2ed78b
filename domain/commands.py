"""Commands: what a caller asks the shop to do, in the imperative."""

from __future__ import annotations

import dataclasses
from typing import Literal

Role = Literal["customer", "staff"]


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who sends a command. ``None`` as an actor means an anonymous caller."""

    id: str
    role: Role

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    actor: Actor | None


@dataclasses.dataclass(frozen=True, slots=True)
class RegisterCustomer(Command):
    email: str
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class AddProduct(Command):
    sku: str
    name: str
    price_cents: int
    stock: int
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RestockProduct(Command):
    sku: str
    quantity: int


@dataclasses.dataclass(frozen=True, slots=True)
class ChangeProductPrice(Command):
    sku: str
    price_cents: int


@dataclasses.dataclass(frozen=True, slots=True)
class LineRequest:
    sku: str
    quantity: int


@dataclasses.dataclass(frozen=True, slots=True)
class PlaceOrder(Command):
    lines: tuple[LineRequest, ...]
    idempotency_key: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PayOrder(Command):
    order_id: str
    # Optimistic concurrency on the wire: refuse if the order moved past this version.
    expected_version: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CancelOrder(Command):
    order_id: str
    reason: str | None = None
    # Optimistic concurrency on the wire: refuse if the order moved past this version.
    expected_version: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ShipOrder(Command):
    order_id: str
    carrier: str
    tracking_number: str
    # Optimistic concurrency on the wire: refuse if the order moved past this version.
    expected_version: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DeliverOrder(Command):
    order_id: str
    # Optimistic concurrency on the wire: refuse if the order moved past this version.
    expected_version: int | None = None
