"""Which parse failures are the size limits (QUERY_TOO_LARGE) and which are mistakes
(GRAPHQL_PARSE_FAILED), told from where graphql-core stopped, not from its wording."""

from __future__ import annotations

import pytest
from graphql import GraphQLSyntaxError, parse

from api.graphql.limits.documents import over_limits

MAX_TOKENS = 20
MAX_LENGTH = 1000


def _stopped(query: str) -> GraphQLSyntaxError:
    with pytest.raises(GraphQLSyntaxError) as caught:
        parse(query, max_tokens=MAX_TOKENS, max_source_length=MAX_LENGTH)
    return caught.value


def _names(n: int) -> str:
    return "{ " + " ".join(f"f{i}" for i in range(n)) + " }"


def test_too_many_tokens_is_a_limit() -> None:
    query = _names(40)
    assert over_limits(query, _stopped(query), MAX_TOKENS, MAX_LENGTH)


def test_too_many_comments_is_a_limit() -> None:
    query = "{ a }\n" + "# padding\n" * 40
    assert over_limits(query, _stopped(query), MAX_TOKENS, MAX_LENGTH)


def test_too_long_is_a_limit() -> None:
    query = "{ a " + " " * MAX_LENGTH + "}"
    assert over_limits(query, _stopped(query), MAX_TOKENS, MAX_LENGTH)


def test_a_mistake_within_the_limits_is_not() -> None:
    for query in ("{ a ", "{ a(b: ) }", "{ a } }", "{ a ~ }", _names(3)[:-1] + "]"):
        assert not over_limits(query, _stopped(query), MAX_TOKENS, MAX_LENGTH), query


def test_the_boundary_is_graphql_cores() -> None:
    # The largest document that parses, then one token more: the first is no error at
    # all, the second is the limit; a mistake as the last allowed token is a mistake.
    fits = max(n for n in range(1, MAX_TOKENS) if _parses(_names(n)))
    over = _names(fits + 1)
    assert over_limits(over, _stopped(over), MAX_TOKENS, MAX_LENGTH)
    wrong = _names(fits)[:-1] + "]"
    assert not over_limits(wrong, _stopped(wrong), MAX_TOKENS, MAX_LENGTH)


def _parses(query: str) -> bool:
    try:
        parse(query, max_tokens=MAX_TOKENS, max_source_length=MAX_LENGTH)
    except GraphQLSyntaxError:
        return False
    return True
