"""Unit tests for the pure business rules in domain/model.py (no I/O)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.commands import Actor, LineRequest
from domain.model import (
    MAX_DESCRIPTION,
    MAX_LINE_QUANTITY,
    MAX_ORDER_LINES,
    MAX_PRICE_CENTS,
    MAX_STOCK,
    MAX_TEXT,
    TARGET,
    TRANSITIONS,
    DomainError,
    OrderStatus,
    StockLevel,
    can_see_order,
    check_available,
    check_price,
    check_sku,
    check_stock,
    clean_text,
    invalid,
    merge_lines,
    normalize_email,
    order_total,
    require_customer,
    require_staff,
    transition,
)
from domain.model import (
    authorize_order_action as authorize,
)

ACTIONS = ("pay", "cancel", "ship", "deliver")
S = OrderStatus

# The order state machine as the business defines it, written out independently of
# TRANSITIONS/TARGET so the tests check the table rather than echo it.
ALLOWED: dict[tuple[str, OrderStatus], OrderStatus] = {
    ("pay", S.PLACED): S.PAID,
    ("cancel", S.PLACED): S.CANCELLED,
    ("cancel", S.PAID): S.CANCELLED,
    ("ship", S.PAID): S.SHIPPED,
    ("deliver", S.SHIPPED): S.DELIVERED,
}
TERMINAL = (S.DELIVERED, S.CANCELLED)

ALICE = Actor("cust-alice", "customer")
BOB = Actor("cust-bob", "customer")
STAFF = Actor("staff-1", "staff")


def check(info: pytest.ExceptionInfo[DomainError], code: str, field: str | None) -> DomainError:
    """Assert the caught DomainError's code and field, and return it."""
    err = info.value
    assert err.code == code
    assert err.field == field
    assert err.message
    assert str(err) == err.message
    return err


# --------------------------------------------------------------------------- DomainError


def test_domain_error_carries_code_message_and_field() -> None:
    err = DomainError("SOME_CODE", "Something went wrong", "where")
    assert isinstance(err, Exception)
    assert (err.code, err.message, err.field) == ("SOME_CODE", "Something went wrong", "where")
    assert str(err) == "Something went wrong"
    assert DomainError("X", "y").field is None


def test_invalid_builds_invalid_input_error() -> None:
    err = invalid("name", "Name is bad")
    assert (err.code, err.message, err.field) == ("INVALID_INPUT", "Name is bad", "name")


# --------------------------------------------------------------------------- state machine


def test_order_status_values_are_their_names() -> None:
    assert [s.value for s in OrderStatus] == [
        "PLACED",
        "PAID",
        "SHIPPED",
        "DELIVERED",
        "CANCELLED",
    ]
    assert OrderStatus("PAID") is S.PAID
    assert S.PAID == "PAID"


def test_transition_tables_match_business_rules() -> None:
    assert set(TRANSITIONS) == set(ACTIONS) == set(TARGET)
    derived = {(a, s): TARGET[a] for a in ACTIONS for s in TRANSITIONS[a]}
    assert derived == ALLOWED


@pytest.mark.parametrize(
    ("action", "current"),
    list(itertools.product(ACTIONS, list(OrderStatus))),
    ids=lambda v: str(v),
)
def test_transition_every_action_from_every_status(action: str, current: OrderStatus) -> None:
    expected = ALLOWED.get((action, current))
    if expected is not None:
        result = transition(action, current)
        assert result is expected
        assert isinstance(result, OrderStatus)
    else:
        with pytest.raises(DomainError) as info:
            transition(action, current)
        err = check(info, "INVALID_STATE", "orderId")
        assert action in err.message
        assert current.value in err.message


@pytest.mark.parametrize("terminal", TERMINAL)
@pytest.mark.parametrize("action", ACTIONS)
def test_terminal_states_accept_no_action(action: str, terminal: OrderStatus) -> None:
    with pytest.raises(DomainError) as info:
        transition(action, terminal)
    check(info, "INVALID_STATE", "orderId")


def test_transition_accepts_plain_string_status() -> None:
    # StrEnum members compare equal to their values; a status read back from the
    # database as an OrderStatus(...) round-trips.
    assert transition("pay", OrderStatus("PLACED")) is S.PAID


def test_transition_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        transition("refund", S.PAID)


def test_happy_path_through_the_state_machine() -> None:
    status = S.PLACED
    for action in ("pay", "ship", "deliver"):
        status = transition(action, status)
    assert status is S.DELIVERED


@given(st.lists(st.sampled_from(ACTIONS), max_size=30))
def test_random_action_sequences_follow_the_graph(actions: list[str]) -> None:
    status = S.PLACED
    for action in actions:
        try:
            new = transition(action, status)
        except DomainError as err:
            assert err.code == "INVALID_STATE"
            assert err.field == "orderId"
            assert (action, status) not in ALLOWED
            continue
        assert status not in TERMINAL
        assert ALLOWED[(action, status)] is new
        status = new
    assert status in set(OrderStatus)


@given(st.sampled_from(TERMINAL), st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=10))
def test_terminal_states_are_absorbing(terminal: OrderStatus, actions: list[str]) -> None:
    for action in actions:
        with pytest.raises(DomainError):
            transition(action, terminal)


def _reachable_from_placed() -> set[OrderStatus]:
    seen = {S.PLACED}
    frontier = [S.PLACED]
    while frontier:
        current = frontier.pop()
        for action in ACTIONS:
            try:
                nxt = transition(action, current)
            except DomainError:
                continue
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


def test_every_status_reachable_from_placed_and_none_lead_back() -> None:
    assert _reachable_from_placed() == set(OrderStatus)
    for action, status in itertools.product(ACTIONS, OrderStatus):
        if (action, status) in ALLOWED:
            assert transition(action, status) is not S.PLACED


# --------------------------------------------------------------------------- authorization


def test_actor_is_staff() -> None:
    assert STAFF.is_staff
    assert not ALICE.is_staff


@pytest.mark.parametrize("action", ACTIONS)
def test_authorize_anonymous_is_unauthenticated(action: str) -> None:
    with pytest.raises(DomainError) as info:
        authorize(action, None, ALICE.id)
    check(info, "UNAUTHENTICATED", None)


@pytest.mark.parametrize("action", ["ship", "deliver"])
def test_authorize_ship_deliver_staff_only(action: str) -> None:
    assert authorize(action, STAFF, ALICE.id) is STAFF
    # Even the owner may not ship or deliver their own order.
    with pytest.raises(DomainError) as info:
        authorize(action, ALICE, ALICE.id)
    check(info, "FORBIDDEN", None)
    # Another customer is told FORBIDDEN too (a staff-only action, not about the order).
    with pytest.raises(DomainError) as info:
        authorize(action, BOB, ALICE.id)
    check(info, "FORBIDDEN", None)


@pytest.mark.parametrize("action", ["pay", "cancel"])
def test_authorize_owner_may_pay_and_cancel(action: str) -> None:
    assert authorize(action, ALICE, ALICE.id) is ALICE


@pytest.mark.parametrize("action", ["pay", "cancel"])
def test_authorize_other_customer_gets_not_found(action: str) -> None:
    with pytest.raises(DomainError) as info:
        authorize(action, BOB, ALICE.id)
    err = check(info, "NOT_FOUND", "orderId")
    # Must not reveal who owns it or that the action was the problem.
    assert ALICE.id not in err.message
    assert "No such order" in err.message


def test_authorize_staff_may_cancel_any_order() -> None:
    assert authorize("cancel", STAFF, ALICE.id) is STAFF


def test_authorize_staff_may_not_pay_customers_order() -> None:
    with pytest.raises(DomainError) as info:
        authorize("pay", STAFF, ALICE.id)
    err = check(info, "FORBIDDEN", None)
    assert "pay" in err.message


def test_authorize_customer_cannot_impersonate_by_role_mismatch() -> None:
    # Same id string as staff but customer role: still just a customer.
    impostor = Actor(STAFF.id, "customer")
    with pytest.raises(DomainError) as info:
        authorize("cancel", impostor, ALICE.id)
    check(info, "NOT_FOUND", "orderId")
    with pytest.raises(DomainError) as info:
        authorize("ship", impostor, ALICE.id)
    check(info, "FORBIDDEN", None)


def test_require_staff() -> None:
    assert require_staff(STAFF) is STAFF
    with pytest.raises(DomainError) as info:
        require_staff(None)
    check(info, "UNAUTHENTICATED", None)
    with pytest.raises(DomainError) as info:
        require_staff(ALICE)
    check(info, "FORBIDDEN", None)


def test_require_customer() -> None:
    assert require_customer(ALICE) is ALICE
    with pytest.raises(DomainError) as info:
        require_customer(None)
    check(info, "UNAUTHENTICATED", None)
    with pytest.raises(DomainError) as info:
        require_customer(STAFF)
    check(info, "FORBIDDEN", None)


@pytest.mark.parametrize(
    ("actor", "owner", "visible"),
    [
        (None, ALICE.id, False),
        (ALICE, ALICE.id, True),
        (BOB, ALICE.id, False),
        (STAFF, ALICE.id, True),
        (STAFF, "nobody", True),
        (Actor("", "customer"), "", True),
        (None, "", False),
    ],
)
def test_can_see_order(actor: Actor | None, owner: str, visible: bool) -> None:
    assert can_see_order(actor, owner) is visible


# --------------------------------------------------------------------------- email & text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM  ", "alice@example.com"),
        ("\tBOB.smith+tag@mail.example.org\n", "bob.smith+tag@mail.example.org"),
        ("a@b.cc", "a@b.cc"),
        ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),
    ],
)
def test_normalize_email_accepts_and_normalizes(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@example.c",
        "alice@@example.com",
        "al ice@example.com",
        "alice@exa mple.com",
        "alice@ex@ample.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * (MAX_TEXT - 5) + ".com",  # 201 characters
    ],
)
def test_normalize_email_rejects_bad_addresses(raw: str) -> None:
    with pytest.raises(DomainError) as info:
        normalize_email(raw)
    check(info, "INVALID_INPUT", "email")


def test_normalize_email_length_boundary() -> None:
    at_limit = "a@" + "b" * (MAX_TEXT - 5) + ".co"
    assert len(at_limit) == MAX_TEXT
    assert normalize_email(at_limit) == at_limit
    # Surrounding whitespace does not count towards the limit.
    assert normalize_email("  " + at_limit.upper() + "  ") == at_limit


def test_clean_text_trims_and_returns() -> None:
    assert clean_text("name", "  Widget  ") == "Widget"
    assert clean_text("name", "x") == "x"
    assert clean_text("name", "a  b") == "a  b"


@pytest.mark.parametrize("value", ["", " ", "\t\n  "])
def test_clean_text_rejects_empty(value: str) -> None:
    with pytest.raises(DomainError) as info:
        clean_text("name", value)
    err = check(info, "INVALID_INPUT", "name")
    assert "name" in err.message


def test_clean_text_max_length_default() -> None:
    assert clean_text("name", "x" * MAX_TEXT) == "x" * MAX_TEXT
    assert clean_text("name", "  " + "x" * MAX_TEXT + "  ") == "x" * MAX_TEXT
    with pytest.raises(DomainError) as info:
        clean_text("name", "x" * (MAX_TEXT + 1))
    err = check(info, "INVALID_INPUT", "name")
    assert str(MAX_TEXT) in err.message


def test_clean_text_custom_max_length_and_field() -> None:
    long = "y" * MAX_DESCRIPTION
    assert clean_text("description", long, max_length=MAX_DESCRIPTION) == long
    with pytest.raises(DomainError) as info:
        clean_text("description", long + "y", max_length=MAX_DESCRIPTION)
    check(info, "INVALID_INPUT", "description")
    with pytest.raises(DomainError) as info:
        clean_text("reason", "abcd", max_length=3)
    check(info, "INVALID_INPUT", "reason")


# --------------------------------------------------------------------------- sku, price, stock


@pytest.mark.parametrize(
    "sku",
    ["A", "9", "SKU-1", "sku_2.x", "a" * 64, "A.B_C-D", "0-0"],
)
def test_check_sku_accepts(sku: str) -> None:
    assert check_sku(sku) == sku


@pytest.mark.parametrize(
    "sku",
    ["", "-abc", ".abc", "_abc", "a" * 65, "has space", "ümlaut", "a/b", "a@b", " A", "A "],
)
def test_check_sku_rejects(sku: str) -> None:
    with pytest.raises(DomainError) as info:
        check_sku(sku)
    check(info, "INVALID_INPUT", "sku")


def test_check_sku_uses_given_field() -> None:
    with pytest.raises(DomainError) as info:
        check_sku("bad sku", "lines.3.sku")
    check(info, "INVALID_INPUT", "lines.3.sku")


@pytest.mark.parametrize("sku", ["ABC\n", "a" * 64 + "\n"])
def test_check_sku_rejects_trailing_newline(sku: str) -> None:
    with pytest.raises(DomainError):
        check_sku(sku)


@pytest.mark.parametrize("price", [0, 1, 999, MAX_PRICE_CENTS])
def test_check_price_accepts(price: int) -> None:
    assert check_price(price) == price


@pytest.mark.parametrize("price", [-1, MAX_PRICE_CENTS + 1, -MAX_PRICE_CENTS])
def test_check_price_rejects(price: int) -> None:
    with pytest.raises(DomainError) as info:
        check_price(price)
    check(info, "INVALID_INPUT", "priceCents")
    with pytest.raises(DomainError) as info:
        check_price(price, "newPrice")
    check(info, "INVALID_INPUT", "newPrice")


@pytest.mark.parametrize("quantity", [0, 1, MAX_STOCK])
def test_check_stock_default_minimum(quantity: int) -> None:
    assert check_stock(quantity, "stock") == quantity


@pytest.mark.parametrize("quantity", [-1, MAX_STOCK + 1])
def test_check_stock_rejects(quantity: int) -> None:
    with pytest.raises(DomainError) as info:
        check_stock(quantity, "stock")
    err = check(info, "INVALID_INPUT", "stock")
    assert str(MAX_STOCK) in err.message


def test_check_stock_custom_minimum() -> None:
    assert check_stock(1, "quantity", minimum=1) == 1
    with pytest.raises(DomainError) as info:
        check_stock(0, "quantity", minimum=1)
    err = check(info, "INVALID_INPUT", "quantity")
    assert "between 1 and" in err.message


# --------------------------------------------------------------------------- merge_lines


def L(sku: str, quantity: int) -> LineRequest:
    return LineRequest(sku, quantity)


def test_merge_lines_single_line() -> None:
    assert merge_lines([L("A", 2)]) == [L("A", 2)]


def test_merge_lines_merges_repeats_in_first_seen_order() -> None:
    lines = [L("B", 1), L("A", 2), L("B", 3), L("C", 1), L("A", 4)]
    assert merge_lines(lines) == [L("B", 4), L("A", 6), L("C", 1)]


def test_merge_lines_accepts_any_iterable() -> None:
    assert merge_lines(iter((L("X", 1), L("X", 1)))) == [L("X", 2)]
    assert merge_lines(L(s, 1) for s in "abc") == [L("a", 1), L("b", 1), L("c", 1)]


def test_merge_lines_sku_is_case_sensitive() -> None:
    assert merge_lines([L("a", 1), L("A", 1)]) == [L("a", 1), L("A", 1)]


def test_merge_lines_rejects_empty() -> None:
    with pytest.raises(DomainError) as info:
        merge_lines([])
    check(info, "INVALID_INPUT", "lines")


@pytest.mark.parametrize("quantity", [0, -1, -1000, MAX_LINE_QUANTITY + 1])
def test_merge_lines_rejects_bad_quantity_with_index(quantity: int) -> None:
    with pytest.raises(DomainError) as info:
        merge_lines([L("A", 1), L("B", quantity)])
    err = check(info, "INVALID_INPUT", "lines.1.quantity")
    assert str(MAX_LINE_QUANTITY) in err.message


def test_merge_lines_quantity_boundaries() -> None:
    assert merge_lines([L("A", 1)]) == [L("A", 1)]
    assert merge_lines([L("A", MAX_LINE_QUANTITY)]) == [L("A", MAX_LINE_QUANTITY)]


def test_merge_lines_rejects_bad_sku_with_index() -> None:
    with pytest.raises(DomainError) as info:
        merge_lines([L("A", 1), L("B", 1), L("bad sku", 1)])
    check(info, "INVALID_INPUT", "lines.2.sku")


def test_merge_lines_reports_first_bad_line() -> None:
    with pytest.raises(DomainError) as info:
        merge_lines([L("A", 0), L("", 1)])
    check(info, "INVALID_INPUT", "lines.0.quantity")
    # SKU is checked before quantity on the same line.
    with pytest.raises(DomainError) as info:
        merge_lines([L("", 0)])
    check(info, "INVALID_INPUT", "lines.0.sku")


def test_merge_lines_max_distinct_lines() -> None:
    at_limit = [L(f"SKU-{i}", 1) for i in range(MAX_ORDER_LINES)]
    assert merge_lines(at_limit) == at_limit
    with pytest.raises(DomainError) as info:
        merge_lines([*at_limit, L("ONE-MORE", 1)])
    err = check(info, "INVALID_INPUT", "lines")
    assert str(MAX_ORDER_LINES) in err.message


def test_merge_lines_limit_counts_distinct_skus_not_raw_lines() -> None:
    lines = [L("A", 1) for _ in range(MAX_ORDER_LINES + 10)]
    assert merge_lines(lines) == [L("A", MAX_ORDER_LINES + 10)]


def test_merge_lines_merged_quantity_over_max() -> None:
    half = MAX_LINE_QUANTITY // 2
    assert merge_lines([L("A", half), L("A", MAX_LINE_QUANTITY - half)]) == [
        L("A", MAX_LINE_QUANTITY)
    ]
    with pytest.raises(DomainError) as info:
        merge_lines([L("Z", 1), L("A", MAX_LINE_QUANTITY), L("A", 1)])
    err = check(info, "INVALID_INPUT", "lines")
    assert "A" in err.message
    assert str(MAX_LINE_QUANTITY) in err.message


@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C", "D"]), st.integers(1, 200)),
        min_size=1,
        max_size=5,
    )
)
def test_merge_lines_property_preserves_totals(pairs: list[tuple[str, int]]) -> None:
    lines = [L(sku, q) for sku, q in pairs]
    merged = merge_lines(lines)
    skus = [line.sku for line in merged]
    assert skus == list(dict.fromkeys(sku for sku, _ in pairs))
    for line in merged:
        assert line.quantity == sum(q for s, q in pairs if s == line.sku)
    assert sum(line.quantity for line in merged) == sum(q for _, q in pairs)


# --------------------------------------------------------------------------- stock checks


def test_stock_level_available() -> None:
    assert StockLevel(on_hand=10, reserved=3).available == 7
    assert StockLevel(on_hand=0, reserved=0).available == 0
    assert StockLevel(on_hand=2, reserved=5).available == -3


def test_check_available_unknown_sku() -> None:
    with pytest.raises(DomainError) as info:
        check_available("NOPE", 1, None)
    err = check(info, "UNKNOWN_SKU", "lines")
    assert "NOPE" in err.message


def test_check_available_out_of_stock_names_sku() -> None:
    with pytest.raises(DomainError) as info:
        check_available("WIDGET-1", 5, StockLevel(on_hand=10, reserved=6))
    err = check(info, "OUT_OF_STOCK", "lines")
    assert "WIDGET-1" in err.message
    assert "Only 4 " in err.message
    assert "5 requested" in err.message


def test_check_available_negative_availability_reported_as_zero() -> None:
    with pytest.raises(DomainError) as info:
        check_available("W", 1, StockLevel(on_hand=1, reserved=3))
    err = check(info, "OUT_OF_STOCK", "lines")
    assert err.message == "Only 0 of W left, 1 requested"


def test_check_available_exact_and_surplus_pass() -> None:
    check_available("W", 4, StockLevel(on_hand=10, reserved=6))  # does not raise
    check_available("W", 1, StockLevel(on_hand=10, reserved=0))  # does not raise


def test_check_available_zero_stock() -> None:
    with pytest.raises(DomainError) as info:
        check_available("W", 1, StockLevel(on_hand=0, reserved=0))
    check(info, "OUT_OF_STOCK", "lines")


# --------------------------------------------------------------------------- money


def test_order_total_empty() -> None:
    assert order_total([]) == (0, 0)


def test_order_total_sums_amount_and_items() -> None:
    assert order_total([(2, 150), (1, 999), (3, 0)]) == (2 * 150 + 999, 6)


def test_order_total_accepts_generator() -> None:
    assert order_total((q, 100) for q in (1, 2, 3)) == (600, 6)


def test_order_total_large_values_are_exact() -> None:
    lines = [(MAX_LINE_QUANTITY, MAX_PRICE_CENTS)] * MAX_ORDER_LINES
    total, items = order_total(lines)
    assert total == MAX_LINE_QUANTITY * MAX_PRICE_CENTS * MAX_ORDER_LINES
    assert items == MAX_LINE_QUANTITY * MAX_ORDER_LINES


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, MAX_PRICE_CENTS)), max_size=20))
def test_order_total_property(lines: list[tuple[int, int]]) -> None:
    total, items = order_total(lines)
    assert total == sum(q * p for q, p in lines)
    assert items == sum(q for q, _ in lines)
    assert total >= 0
    assert items >= 0
