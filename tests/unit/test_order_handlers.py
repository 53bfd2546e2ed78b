"""placeOrder, payOrder and cancelOrder handlers against the in-memory unit of work: no
database, the rules and the writes a handler asks for."""

from __future__ import annotations

import pytest

from domain import commands as c
from domain import events as e
from domain.model import DomainError, OrderStatus
from domain.unit_of_work import ConcurrencyConflict
from tests.unit.fakes import FakeUnitOfWork

STAFF = c.Actor("staff-1", "staff")
ALICE = c.Actor("alice", "customer")
BOB = c.Actor("bob", "customer")


def _line(sku: str, quantity: int) -> tuple[c.LineRequest, ...]:
    return (c.LineRequest(sku, quantity),)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    uow.execute(c.AddProduct(STAFF, "MUG-1", "Mug", 1200, stock=5))
    uow.execute(c.AddProduct(STAFF, "TEE-1", "Tee", 2500, stock=2))
    return uow


def _available(uow: FakeUnitOfWork, sku: str) -> int:
    product = uow.state.products[sku]
    return product.stock_on_hand - product.stock_reserved


def _place(uow: FakeUnitOfWork, actor: c.Actor = ALICE, key: str | None = None) -> str:
    lines = (c.LineRequest("MUG-1", 2), c.LineRequest("TEE-1", 1), c.LineRequest("MUG-1", 1))
    return uow.execute(c.PlaceOrder(actor, lines, key)).entity_id


def test_place_order_reserves_stock_and_records_the_priced_order(uow: FakeUnitOfWork) -> None:
    result = uow.execute(
        c.PlaceOrder(ALICE, (c.LineRequest("MUG-1", 2), c.LineRequest("MUG-1", 1)))
    )
    order_id = result.entity_id
    assert _available(uow, "MUG-1") == 2
    stored = uow.state.orders[order_id]
    assert (stored.status, stored.version, stored.order.total_cents) == (
        OrderStatus.PLACED,
        1,
        3600,
    )
    [placed] = result.events
    assert isinstance(placed, e.OrderPlaced)
    assert (placed.customer_id, placed.total_cents, placed.item_count) == ("alice", 3600, 3)
    assert [(line.sku, line.quantity, line.unit_price_cents) for line in placed.lines] == [
        ("MUG-1", 3, 1200)
    ]
    assert result.position == uow.last_position(f"order-{order_id}")


def test_out_of_stock_refuses_and_reserves_nothing(uow: FakeUnitOfWork) -> None:
    error = uow.refused(c.PlaceOrder(ALICE, (c.LineRequest("MUG-1", 1), c.LineRequest("TEE-1", 3))))
    assert (error.code, error.field) == ("OUT_OF_STOCK", "lines")
    assert error.message == "Only 2 of TEE-1 left, 3 requested"
    assert (_available(uow, "MUG-1"), _available(uow, "TEE-1")) == (5, 2)
    assert uow.state.orders == {}


def test_lost_reservation_race_is_out_of_stock(uow: FakeUnitOfWork) -> None:
    """The stock read said yes, the guarded reservation says no (a concurrent order took
    it in between): refused, and nothing reserved."""
    reserve = uow.reserve_stock
    uow.reserve_stock = lambda product_id, quantity: False  # type: ignore[method-assign]
    error = uow.refused(c.PlaceOrder(ALICE, _line("MUG-1", 1)))
    uow.reserve_stock = reserve  # type: ignore[method-assign]
    assert error.code == "OUT_OF_STOCK"
    assert _available(uow, "MUG-1") == 5


def test_unknown_sku_is_refused(uow: FakeUnitOfWork) -> None:
    error = uow.refused(c.PlaceOrder(ALICE, (c.LineRequest("MUG-1", 1), c.LineRequest("NOPE", 1))))
    assert (error.code, error.field) == ("UNKNOWN_SKU", "lines")
    assert _available(uow, "MUG-1") == 5


def test_only_customers_place_orders(uow: FakeUnitOfWork) -> None:
    assert uow.refused(c.PlaceOrder(None, _line("MUG-1", 1))).code == "UNAUTHENTICATED"
    assert uow.refused(c.PlaceOrder(STAFF, _line("MUG-1", 1))).code == "FORBIDDEN"


def test_idempotent_replay_returns_the_first_order(uow: FakeUnitOfWork) -> None:
    first = uow.execute(c.PlaceOrder(ALICE, _line("MUG-1", 2), "key-1"))
    # The same lines in another form (split) are the same request.
    lines = (c.LineRequest("MUG-1", 1), c.LineRequest("MUG-1", 1))
    again = uow.execute(c.PlaceOrder(ALICE, lines, "key-1"))
    assert again.entity_id == first.entity_id
    assert again.events == ()
    assert again.position == first.position  # what a reader waits for
    assert _available(uow, "MUG-1") == 3  # reserved once
    assert len(uow.state.orders) == 1
    # The key is the customer's own: another customer's same key is a new order.
    assert uow.execute(c.PlaceOrder(BOB, _line("MUG-1", 2), "key-1")).entity_id != first.entity_id


def test_idempotency_key_reused_for_another_order_is_refused(uow: FakeUnitOfWork) -> None:
    uow.execute(c.PlaceOrder(ALICE, _line("MUG-1", 2), "key-1"))
    error = uow.refused(c.PlaceOrder(ALICE, _line("MUG-1", 1), "key-1"))
    assert (error.code, error.field) == ("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")
    assert _available(uow, "MUG-1") == 3
    assert uow.refused(c.PlaceOrder(ALICE, _line("MUG-1", 1), "")).code == "INVALID_INPUT"


def test_pay_order_moves_it_on_and_records_the_payment(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    result = uow.execute(c.PayOrder(ALICE, order_id, expected_version=1))
    stored = uow.state.orders[order_id]
    assert (stored.status, stored.version) == (OrderStatus.PAID, 2)
    assert uow.state.payments == {order_id: "PAID"}
    [paid] = result.events
    assert isinstance(paid, e.OrderPaid)
    assert paid.amount_cents == 6100
    assert [(line.sku, line.quantity) for line in paid.lines] == [("MUG-1", 3), ("TEE-1", 1)]


def test_paying_twice_is_the_wrong_state(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    uow.execute(c.PayOrder(ALICE, order_id))
    error = uow.refused(c.PayOrder(ALICE, order_id))
    assert (error.code, error.message) == ("INVALID_STATE", "Cannot pay an order that is PAID")
    assert uow.state.orders[order_id].version == 2


def test_another_customers_order_is_not_found(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    assert uow.refused(c.PayOrder(BOB, order_id)).code == "NOT_FOUND"
    assert uow.refused(c.CancelOrder(BOB, order_id)).code == "NOT_FOUND"
    assert uow.refused(c.PayOrder(STAFF, order_id)).code == "FORBIDDEN"
    assert uow.refused(c.PayOrder(ALICE, "no-such-order")).code == "NOT_FOUND"
    assert uow.state.orders[order_id].status == OrderStatus.PLACED


def test_expected_version_conflict_is_refused(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    error = uow.refused(c.PayOrder(ALICE, order_id, expected_version=3))
    assert (error.code, error.field) == ("VERSION_CONFLICT", "expectedVersion")
    assert uow.state.payments == {}


def test_a_concurrent_move_is_a_conflict_for_the_bus_to_retry(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    uow.conflict_on_move = True
    with pytest.raises(ConcurrencyConflict):
        uow.execute(c.PayOrder(ALICE, order_id))
    assert uow.state.payments == {}
    assert len(uow.stream(f"order-{order_id}")) == 1  # OrderPlaced only


def test_cancel_releases_the_stock(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    assert (_available(uow, "MUG-1"), _available(uow, "TEE-1")) == (2, 1)
    result = uow.execute(c.CancelOrder(ALICE, order_id, reason="  changed my mind "))
    assert (_available(uow, "MUG-1"), _available(uow, "TEE-1")) == (5, 2)
    assert uow.state.orders[order_id].status == OrderStatus.CANCELLED
    [cancelled] = result.events
    assert isinstance(cancelled, e.OrderCancelled)
    assert (cancelled.reason, cancelled.cancelled_by) == ("changed my mind", "customer")
    assert (cancelled.previous_status, cancelled.refunded_cents) == ("PLACED", 0)


def test_staff_cancel_of_a_paid_order_refunds_it(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    uow.execute(c.PayOrder(ALICE, order_id))
    result = uow.execute(c.CancelOrder(STAFF, order_id))
    assert uow.state.payments == {order_id: "REFUNDED"}
    assert _available(uow, "MUG-1") == 5
    [cancelled] = result.events
    assert isinstance(cancelled, e.OrderCancelled)
    assert (cancelled.previous_status, cancelled.refunded_cents) == ("PAID", 6100)
    assert cancelled.cancelled_by == "staff"


def test_a_shipped_order_cannot_be_cancelled(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    uow.execute(c.PayOrder(ALICE, order_id))
    uow.execute(c.ShipOrder(STAFF, order_id, "DHL", "JD1"))
    assert uow.state.products["MUG-1"].stock_on_hand == 2  # left the warehouse
    error = uow.refused(c.CancelOrder(STAFF, order_id))
    assert error.code == "INVALID_STATE"
    assert _available(uow, "MUG-1") == 2


def test_refused_handler_leaves_no_events(uow: FakeUnitOfWork) -> None:
    before = list(uow.state.log)
    with pytest.raises(DomainError):
        uow.execute(c.CancelOrder(ALICE, "no-such-order"))
    assert uow.state.log == before


# -- ship and deliver (staff), and the expected version on every transition ------------
def _last_recorded(uow: FakeUnitOfWork, order_id: str) -> tuple[int, e.Event]:
    """(stream version, event) of the order's last event in the log."""
    recorded = [(v, event) for _, s, v, event in uow.state.log if s == f"order-{order_id}"]
    assert recorded
    return recorded[-1]


def _paid(uow: FakeUnitOfWork) -> str:
    order_id = _place(uow)
    uow.execute(c.PayOrder(ALICE, order_id))
    return order_id


def test_ship_records_the_cleaned_carrier_and_tracking_and_takes_the_stock(
    uow: FakeUnitOfWork,
) -> None:
    order_id = _paid(uow)
    result = uow.execute(c.ShipOrder(STAFF, order_id, "  DHL ", " JD1\t", expected_version=2))
    stored = uow.state.orders[order_id]
    assert (stored.status, stored.version) == (OrderStatus.SHIPPED, 3)
    assert uow.state.shipments == {order_id: "SHIPPED"}
    # Reserved stock leaves the warehouse: on hand and reserved both go down.
    mug = uow.state.products["MUG-1"]
    assert (mug.stock_on_hand, mug.stock_reserved) == (2, 0)
    assert result.events == (e.OrderShipped(order_id, "alice", "DHL", "JD1"),)
    assert result.entity_id == order_id
    assert _last_recorded(uow, order_id) == (3, result.events[0])


@pytest.mark.parametrize(
    ("carrier", "tracking", "field"),
    [("  ", "JD1", "carrier"), ("DHL", "", "trackingNumber")],
)
def test_ship_needs_a_carrier_and_a_tracking_number(
    uow: FakeUnitOfWork, carrier: str, tracking: str, field: str
) -> None:
    order_id = _paid(uow)
    error = uow.refused(c.ShipOrder(STAFF, order_id, carrier, tracking))
    assert (error.code, error.field) == ("INVALID_INPUT", field)
    assert error.message == f"{field} must not be empty"
    assert uow.state.orders[order_id].status == OrderStatus.PAID
    assert uow.state.shipments == {}


def test_only_staff_ship_and_deliver(uow: FakeUnitOfWork) -> None:
    order_id = _paid(uow)
    assert uow.refused(c.ShipOrder(ALICE, order_id, "DHL", "JD1")).code == "FORBIDDEN"
    assert uow.refused(c.ShipOrder(None, order_id, "DHL", "JD1")).code == "UNAUTHENTICATED"
    uow.execute(c.ShipOrder(STAFF, order_id, "DHL", "JD1"))
    assert uow.refused(c.DeliverOrder(ALICE, order_id)).code == "FORBIDDEN"
    assert uow.refused(c.DeliverOrder(None, order_id)).code == "UNAUTHENTICATED"
    assert uow.state.orders[order_id].status == OrderStatus.SHIPPED


def test_ship_and_deliver_an_unknown_order_is_not_found(uow: FakeUnitOfWork) -> None:
    for command in (c.ShipOrder(STAFF, "nope", "DHL", "JD1"), c.DeliverOrder(STAFF, "nope")):
        error = uow.refused(command)
        assert (error.code, error.message, error.field) == (
            "NOT_FOUND",
            "No such order",
            "orderId",
        )


def test_an_unpaid_order_is_not_shipped(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    error = uow.refused(c.ShipOrder(STAFF, order_id, "DHL", "JD1"))
    assert (error.code, error.message, error.field) == (
        "INVALID_STATE",
        "Cannot ship an order that is PLACED",
        "orderId",
    )
    assert uow.state.shipments == {}
    assert uow.state.products["MUG-1"].stock_on_hand == 5


def test_deliver_moves_a_shipped_order_on(uow: FakeUnitOfWork) -> None:
    order_id = _paid(uow)
    uow.execute(c.ShipOrder(STAFF, order_id, "DHL", "JD1"))
    result = uow.execute(c.DeliverOrder(STAFF, order_id, expected_version=3))
    stored = uow.state.orders[order_id]
    assert (stored.status, stored.version) == (OrderStatus.DELIVERED, 4)
    assert uow.state.shipments == {order_id: "DELIVERED"}
    assert result.entity_id == order_id
    assert result.events == (e.OrderDelivered(order_id, "alice"),)
    assert _last_recorded(uow, order_id) == (4, result.events[0])
    assert result.position == uow.last_position(f"order-{order_id}")
    # Delivered is final.
    assert uow.refused(c.DeliverOrder(STAFF, order_id)).message == (
        "Cannot deliver an order that is DELIVERED"
    )


def test_an_order_not_shipped_is_not_delivered(uow: FakeUnitOfWork) -> None:
    order_id = _paid(uow)
    error = uow.refused(c.DeliverOrder(STAFF, order_id))
    assert (error.code, error.message) == ("INVALID_STATE", "Cannot deliver an order that is PAID")
    assert uow.state.shipments == {}
    assert uow.state.orders[order_id].version == 2


@pytest.mark.parametrize("action", ["pay", "cancel", "ship", "deliver"])
def test_every_transition_refuses_a_stale_expected_version(
    uow: FakeUnitOfWork, action: str
) -> None:
    order_id = _place(uow)
    if action in ("ship", "deliver"):
        uow.execute(c.PayOrder(ALICE, order_id))
    if action == "deliver":
        uow.execute(c.ShipOrder(STAFF, order_id, "DHL", "JD1"))
    version = uow.state.orders[order_id].version

    def command(expected: int) -> c.Command:
        if action == "pay":
            return c.PayOrder(ALICE, order_id, expected_version=expected)
        if action == "cancel":
            return c.CancelOrder(ALICE, order_id, expected_version=expected)
        if action == "ship":
            return c.ShipOrder(STAFF, order_id, "DHL", "JD1", expected_version=expected)
        return c.DeliverOrder(STAFF, order_id, expected_version=expected)

    log = list(uow.state.log)
    error = uow.refused(command(version - 1))
    assert (error.code, error.field) == ("VERSION_CONFLICT", "expectedVersion")
    assert error.message == (
        f"The order is at version {version}, not {version - 1}: reload it and decide again"
    )
    assert uow.state.log == log
    result = uow.execute(command(version))
    assert uow.state.orders[order_id].version == version + 1
    assert _last_recorded(uow, order_id) == (version + 1, result.events[0])
    assert len(result.events) == 1


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_cancel_without_a_reason_records_none(uow: FakeUnitOfWork, reason: str | None) -> None:
    order_id = _place(uow)
    result = uow.execute(c.CancelOrder(ALICE, order_id, reason=reason))
    [cancelled] = result.events
    assert isinstance(cancelled, e.OrderCancelled)
    assert cancelled.reason is None
    assert cancelled.lines == uow.order_lines(order_id)
    assert (cancelled.order_id, cancelled.customer_id) == (order_id, "alice")
    assert _last_recorded(uow, order_id) == (2, cancelled)


# -- idempotency keys, refusals' wording ------------------------------------------------
def test_an_idempotency_key_is_1_to_200_characters(uow: FakeUnitOfWork) -> None:
    assert uow.execute(c.PlaceOrder(ALICE, _line("MUG-1", 1), "k")).entity_id
    assert uow.execute(c.PlaceOrder(ALICE, _line("MUG-1", 1), "k" * 200)).entity_id
    for key in ("", "k" * 201):
        error = uow.refused(c.PlaceOrder(ALICE, _line("MUG-1", 1), key))
        assert (error.code, error.field, error.message) == (
            "INVALID_INPUT",
            "idempotencyKey",
            "An idempotency key is 1-200 characters",
        )
    assert len(uow.state.orders) == 2


def test_a_reused_key_says_why_it_is_refused(uow: FakeUnitOfWork) -> None:
    uow.execute(c.PlaceOrder(ALICE, _line("MUG-1", 2), "key-1"))
    error = uow.refused(c.PlaceOrder(ALICE, _line("TEE-1", 2), "key-1"))
    assert error.message == "This idempotency key was used for a different order"


def test_the_request_hash_is_stable_across_releases() -> None:
    """Stored with the order (orders.request_hash) and compared with a retry's: a change of
    its form would refuse, after an upgrade, the genuine retry of an order placed before."""
    import hashlib

    from domain.handlers.orders import _request_hash

    lines = [c.LineRequest("TEE-1", 1), c.LineRequest("MUG-1", 3)]
    assert _request_hash(lines) == hashlib.sha256(b"MUG-1=3;TEE-1=1").hexdigest()


def test_placed_order_event_carries_the_shops_currency(uow: FakeUnitOfWork) -> None:
    [placed] = uow.execute(c.PlaceOrder(ALICE, _line("MUG-1", 1))).events
    assert isinstance(placed, e.OrderPlaced)
    assert placed.currency == "EUR"


def test_a_lost_reservation_race_names_the_product(uow: FakeUnitOfWork) -> None:
    uow.reserve_stock = lambda product_id, quantity: False  # type: ignore[method-assign]
    error = uow.refused(c.PlaceOrder(ALICE, _line("TEE-1", 2)))
    assert (error.code, error.field) == ("OUT_OF_STOCK", "lines")
    assert error.message == "Only 0 of TEE-1 left, 2 requested"


def test_a_concurrent_move_names_the_order(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    uow.conflict_on_move = True
    with pytest.raises(ConcurrencyConflict) as conflict:
        uow.execute(c.CancelOrder(ALICE, order_id))
    assert conflict.value.args == (order_id,)


def test_an_over_long_cancel_reason_is_refused_by_name(uow: FakeUnitOfWork) -> None:
    order_id = _place(uow)
    error = uow.refused(c.CancelOrder(ALICE, order_id, reason="x" * 201))
    assert (error.code, error.field) == ("INVALID_INPUT", "reason")
    assert error.message == "reason must be at most 200 characters"
    assert uow.state.orders[order_id].status == OrderStatus.PLACED
