"""Consistency tokens: read-your-writes across requests.

A mutation hands back ``consistencyToken`` (the event-log position its result depends
on); a later request sent with ``Shopfront-Consistency: <token>`` waits until the read
models have reached that position, or fails with ``READ_MODEL_BEHIND``.
"""

from __future__ import annotations

HEADER = "shopfront-consistency"
PREFIX = "sf1."


def encode(position: int) -> str:
    return f"{PREFIX}{position}"


def decode(token: str) -> int:
    """The position in a token; ValueError if it is not one of ours."""
    token = token.strip()
    if not token.startswith(PREFIX) or not token[len(PREFIX) :].isdigit():
        raise ValueError(f"Not a consistency token: {token[:40]!r}")
    return int(token[len(PREFIX) :])
