"""Unit tests of the order connections' paging (api/graphql/orders/queries.py): what an
``after`` cursor may be, and the page built from the rows the read model returned (one
more than ``first`` when there is a next page)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from api.graphql.errors import ApiError
from api.graphql.ids import encode_cursor, to_global_id
from api.graphql.orders.queries import int_cursor, order_connection
from domain import events as e
from projections.base import StoredEvent
from projections.order_doc import apply_event

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
LINES = (e.OrderLineData("SKU-A", "prod-a", "Widget", 2, 1500),)


def order_doc(number: int) -> dict[str, Any]:
    """The order detail document of order ``ord-<number>``, placed at position
    ``number * 10`` (its ``sort_key``)."""
    event = StoredEvent(
        position=number * 10,
        stream_id=f"order-ord-{number}",
        stream_version=1,
        type="OrderPlaced",
        occurred_at=T0,
        command_id=f"cmd-{number}",
        data=e.OrderPlaced(f"ord-{number}", "cust-1", LINES, 3000, 2, "EUR"),
    )
    return dict(apply_event(None, event))


# -- int_cursor -------------------------------------------------------------------------
def test_no_cursor_means_from_the_start() -> None:
    assert int_cursor(None) is None


@pytest.mark.parametrize("value", [0, 7, 1234, 10**17, 10**18 - 1])
def test_a_cursor_reads_back_as_the_sort_key_it_was_made_from(value: int) -> None:
    assert int_cursor(encode_cursor(str(value))) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-1",
        "+1",
        "1.5",
        "1e3",
        " 12",
        "12 ",
        "1_000",
        "\u00b2",  # SUPERSCRIPT TWO: isdigit() is true
        "\u0663",  # ARABIC-INDIC DIGIT THREE: int() reads it as 3
        "1" * 19,  # beyond a 64-bit column
        "abc",
    ],
)
def test_anything_but_a_small_ascii_number_is_refused(value: str) -> None:
    cursor = encode_cursor(value)
    with pytest.raises(ApiError) as refused:
        int_cursor(cursor)
    assert refused.value.code == "BAD_USER_INPUT"
    assert str(refused.value) == f"Not a valid cursor: {cursor!r}"


def test_eighteen_digits_are_still_a_cursor() -> None:
    assert int_cursor(encode_cursor("9" * 18)) == 10**18 - 1


# -- order_connection -------------------------------------------------------------------
def test_a_page_with_a_next_page_drops_the_extra_row() -> None:
    docs = [order_doc(n) for n in (5, 4, 3)]  # first=2, and one more row: a next page
    page = order_connection(docs, 2, None, "sort_key")
    assert [edge.node.id for edge in page.edges] == [
        to_global_id("Order", "ord-5"),
        to_global_id("Order", "ord-4"),
    ]
    assert [edge.cursor for edge in page.edges] == [encode_cursor("50"), encode_cursor("40")]
    info = page.page_info
    assert info.has_next_page is True
    assert info.has_previous_page is False
    assert info.start_cursor == encode_cursor("50")
    assert info.end_cursor == encode_cursor("40")
    # The end cursor is where the next page starts.
    assert int_cursor(info.end_cursor) == 40


def test_the_last_page_has_no_next_page() -> None:
    after = encode_cursor("40")
    docs = [order_doc(n) for n in (3, 2)]  # first=2, no extra row
    page = order_connection(docs, 2, after, "sort_key")
    assert [edge.cursor for edge in page.edges] == [encode_cursor("30"), encode_cursor("20")]
    info = page.page_info
    assert info.has_next_page is False
    assert info.has_previous_page is True
    assert (info.start_cursor, info.end_cursor) == (encode_cursor("30"), encode_cursor("20"))


def test_an_empty_page() -> None:
    page = order_connection([], 3, encode_cursor("10"), "sort_key")
    assert page.edges == []
    info = page.page_info
    assert (info.has_next_page, info.has_previous_page) == (False, True)
    assert (info.start_cursor, info.end_cursor) == (None, None)


def test_the_cursor_comes_from_the_key_asked_for() -> None:
    doc = order_doc(7)
    doc["queue_key"] = 123
    page = order_connection([doc], 1, None, "queue_key")
    assert [edge.cursor for edge in page.edges] == [encode_cursor("123")]
    assert page.page_info.has_next_page is False
