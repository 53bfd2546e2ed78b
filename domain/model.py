"""The shop's rules, with no I/O: validation, the order state machine, stock and money."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping

from domain.commands import Actor, LineRequest

CURRENCY = "EUR"
MAX_ORDER_LINES = 50
MAX_LINE_QUANTITY = 1000
MAX_PRICE_CENTS = 100_000_000
MAX_STOCK = 1_000_000_000
MAX_TEXT = 200
MAX_DESCRIPTION = 5000
SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class OrderStatus(enum.StrEnum):
    PLACED = "PLACED"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


class DomainError(Exception):
    """An expected business failure, reported to the caller as a ``userError``."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def invalid(field: str, message: str) -> DomainError:
    return DomainError("INVALID_INPUT", message, field)


def require_staff(actor: Actor | None, doing: str = "do this") -> Actor:
    """The actor, if staff: commands and the staff-only queries both ask here."""
    if actor is None:
        raise DomainError("UNAUTHENTICATED", f"Sign in as staff to {doing}")
    if not actor.is_staff:
        raise DomainError("FORBIDDEN", f"Only staff may {doing}")
    return actor


def require_customer(actor: Actor | None) -> Actor:
    if actor is None:
        raise DomainError("UNAUTHENTICATED", "Sign in as a customer to do this")
    if actor.is_staff:
        raise DomainError("FORBIDDEN", "Only customers may place orders")
    return actor


def can_see_order(actor: Actor | None, customer_id: str) -> bool:
    return actor is not None and (actor.is_staff or actor.id == customer_id)


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > MAX_TEXT or not EMAIL_PATTERN.fullmatch(email):
        raise invalid("email", "Enter a valid email address")
    return email


def clean_text(field: str, value: str, *, max_length: int = MAX_TEXT) -> str:
    value = value.strip()
    if not value:
        raise invalid(field, f"{field} must not be empty")
    if len(value) > max_length:
        raise invalid(field, f"{field} must be at most {max_length} characters")
    return value


def check_sku(sku: str, field: str = "sku") -> str:
    if not SKU_PATTERN.fullmatch(sku):
        raise invalid(field, "A SKU is 1-64 letters, digits, '.', '_' or '-'")
    return sku


def check_price(price_cents: int, field: str = "priceCents") -> int:
    if not 0 <= price_cents <= MAX_PRICE_CENTS:
        raise invalid(field, f"Price must be between 0 and {MAX_PRICE_CENTS} cents")
    return price_cents


def check_stock(quantity: int, field: str, *, minimum: int = 0) -> int:
    if not minimum <= quantity <= MAX_STOCK:
        raise invalid(field, f"Quantity must be between {minimum} and {MAX_STOCK}")
    return quantity


def merge_lines(lines: Iterable[LineRequest]) -> list[LineRequest]:
    """Validate requested lines and merge repeated SKUs, keeping first-seen order."""
    merged: dict[str, int] = {}
    for index, line in enumerate(lines):
        check_sku(line.sku, f"lines.{index}.sku")
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            raise invalid(
                f"lines.{index}.quantity", f"Quantity must be between 1 and {MAX_LINE_QUANTITY}"
            )
        merged[line.sku] = merged.get(line.sku, 0) + line.quantity
    if not merged:
        raise invalid("lines", "An order needs at least one line")
    if len(merged) > MAX_ORDER_LINES:
        raise invalid("lines", f"An order has at most {MAX_ORDER_LINES} lines")
    for sku, quantity in merged.items():
        if quantity > MAX_LINE_QUANTITY:
            raise invalid("lines", f"Quantity of {sku} must be at most {MAX_LINE_QUANTITY}")
    return [LineRequest(sku, quantity) for sku, quantity in merged.items()]


@dataclasses.dataclass(frozen=True, slots=True)
class StockLevel:
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def check_available(sku: str, wanted: int, stock: StockLevel | None) -> None:
    if stock is None:
        raise DomainError("UNKNOWN_SKU", f"No product with SKU {sku}", "lines")
    if stock.available < wanted:
        raise DomainError(
            "OUT_OF_STOCK",
            f"Only {max(stock.available, 0)} of {sku} left, {wanted} requested",
            "lines",
        )


def order_total(lines: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """(quantity, unit price) pairs -> (total cents, item count)."""
    total = items = 0
    for quantity, unit_price in lines:
        total += quantity * unit_price
        items += quantity
    return total, items


# The order state machine: which status each transition may start from.
TRANSITIONS: Mapping[str, frozenset[OrderStatus]] = {
    "pay": frozenset({OrderStatus.PLACED}),
    "cancel": frozenset({OrderStatus.PLACED, OrderStatus.PAID}),
    "ship": frozenset({OrderStatus.PAID}),
    "deliver": frozenset({OrderStatus.SHIPPED}),
}
TARGET: Mapping[str, OrderStatus] = {
    "pay": OrderStatus.PAID,
    "cancel": OrderStatus.CANCELLED,
    "ship": OrderStatus.SHIPPED,
    "deliver": OrderStatus.DELIVERED,
}


def transition(action: str, current: OrderStatus) -> OrderStatus:
    if current not in TRANSITIONS[action]:
        raise DomainError(
            "INVALID_STATE", f"Cannot {action} an order that is {current.value}", "orderId"
        )
    return TARGET[action]


def check_version(expected: int | None, actual: int) -> None:
    """A client that says which version it saw gets a refusal, not a surprise, if the
    order has moved on since."""
    if expected is not None and expected != actual:
        raise DomainError(
            "VERSION_CONFLICT",
            f"The order is at version {actual}, not {expected}: reload it and decide again",
            "expectedVersion",
        )


def authorize_order_action(action: str, actor: Actor | None, owner_id: str) -> Actor:
    """pay: the owner; cancel: the owner or staff; ship/deliver: staff only."""
    if actor is None:
        raise DomainError("UNAUTHENTICATED", "Sign in to change an order")
    if action in ("ship", "deliver"):
        return require_staff(actor)
    if actor.id == owner_id or (action == "cancel" and actor.is_staff):
        return actor
    if not actor.is_staff:
        # Never reveal that another customer's order exists.
        raise DomainError("NOT_FOUND", "No such order", "orderId")
    raise DomainError("FORBIDDEN", f"Only the customer who placed the order may {action} it")
