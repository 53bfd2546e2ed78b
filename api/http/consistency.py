"""Consistency tokens: read-your-writes across requests.

A mutation hands back ``consistencyToken`` (the event-log position its result depends
on); a later request sent with ``Shopfront-Consistency: <token>`` waits until the read
models have reached that position, or fails with ``READ_MODEL_BEHIND``. A position
beyond the head of the event log (re-read once to be sure) is refused at once with
``BAD_USER_INPUT``: no mutation handed it out.
"""

from __future__ import annotations

HEADER = "shopfront-consistency"
PREFIX = "sf1."
# A token for a position the event log has not reached: not from one of our mutations.
AHEAD_OF_LOG = "consistency token is ahead of the event log"


def encode(position: int) -> str:
    return f"{PREFIX}{position}"


def decode(token: str) -> int:
    """The position in a token; ValueError if it is not one of ours."""
    token = token.strip()
    digits = token[len(PREFIX) :]
    # ASCII digits only: str.isdigit() and int() also take other scripts' digits
    # ("sf1.\u0663" would be position 3), which no mutation hands out.
    if not token.startswith(PREFIX) or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"Not a consistency token: {token[:40]!r}")
    return int(digits)
