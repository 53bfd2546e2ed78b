"""The persisted-query store: registered (after the query ran) only under its own hash, bounded by
count and bytes, least recently used first out."""

from __future__ import annotations

import hashlib

import pytest

from api.http.persisted import PersistedQueries, PersistedQueryNotFound
from api.http.request import BadRequest


def _ext(query: str) -> dict[str, object]:
    return {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}
    }


def test_no_extension_leaves_the_query_alone() -> None:
    store = PersistedQueries()
    assert store.resolve("{ a }", None) == "{ a }"
    assert store.resolve("{ a }", {"other": 1}) == "{ a }"
    assert len(store) == 0


def test_a_registered_hash_gives_its_query_and_upper_case_hex_is_the_same_hash() -> None:
    store = PersistedQueries()
    with pytest.raises(PersistedQueryNotFound):
        store.resolve(None, _ext("{ a }"))
    assert store.resolve("{ a }", _ext("{ a }")) == "{ a }"
    with pytest.raises(PersistedQueryNotFound):  # kept only once it ran (register)
        store.resolve(None, _ext("{ a }"))
    store.register("{ a }", _ext("{ a }"))
    upper = {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(b"{ a }").hexdigest().upper()}
    }
    assert store.resolve(None, upper) == "{ a }"
    with pytest.raises(BadRequest):
        store.resolve("{ b }", _ext("{ a }"))


def test_the_store_is_bounded_by_count_and_bytes() -> None:
    store = PersistedQueries(max_queries=3, max_bytes=40)
    queries = [f"{{ f{n} }}" for n in range(5)]
    for query in queries:
        store.register(query, _ext(query))
    assert len(store) == 3
    with pytest.raises(PersistedQueryNotFound):
        store.resolve(None, _ext(queries[0]))  # the oldest went first
    assert store.resolve(None, _ext(queries[2])) == queries[2]
    big = "{ " + "x" * 30 + " }"
    store.register(big, _ext(big))
    assert store.bytes <= 40
    assert store.resolve(None, _ext(big)) == big
    huge = "{ " + "y" * 100 + " }"
    assert store.resolve(huge, _ext(huge)) == huge  # runs, but is not kept
    store.register(huge, _ext(huge))
    with pytest.raises(PersistedQueryNotFound):
        store.resolve(None, _ext(huge))
