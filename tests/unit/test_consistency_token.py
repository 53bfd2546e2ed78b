"""Unit tests of api.http.consistency: the token a mutation hands out reads back as its
position, and nothing else reads as a token."""

from __future__ import annotations

import pytest

from api.http import consistency


@pytest.mark.parametrize("position", [0, 1, 7, 1234567890123])
def test_a_token_reads_back_as_its_position(position: int) -> None:
    token = consistency.encode(position)
    assert token == f"sf1.{position}"
    assert consistency.decode(token) == position


def test_surrounding_whitespace_is_ignored() -> None:
    assert consistency.decode("  sf1.42\t") == 42


@pytest.mark.parametrize(
    "token",
    [
        "",
        "sf1.",
        "42",
        "sf2.42",
        "SF1.42",
        "xsf1.42",
        "sf1.-3",
        "sf1.+3",
        "sf1.4 2",
        "sf1.4x",
        "sf1.0x10",
        "sf1.\u0663",  # ARABIC-INDIC DIGIT THREE: int() reads it as 3
        "sf1.\uff17",  # FULLWIDTH DIGIT SEVEN
        "sf1.\u00b2",  # SUPERSCRIPT TWO: isdigit() is true, int() refuses it
        "sf1.1_000",
    ],
)
def test_anything_else_is_not_a_token(token: str) -> None:
    with pytest.raises(ValueError, match=r"^Not a consistency token: "):
        consistency.decode(token)


def test_the_refusal_quotes_the_start_of_what_was_sent() -> None:
    with pytest.raises(ValueError) as refused:
        consistency.decode(" not-a-token ")
    assert str(refused.value) == "Not a consistency token: 'not-a-token'"
    long = "x" * 100
    with pytest.raises(ValueError) as refused:
        consistency.decode(long)
    assert str(refused.value) == f"Not a consistency token: {'x' * 40!r}"
