"""Relay global ids ("Type:raw-id", base64) and opaque cursors."""

from __future__ import annotations

import base64
import binascii

from api.graphql.errors import ApiError


def to_global_id(type_name: str, raw_id: str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{raw_id}".encode()).decode().rstrip("=")


def from_global_id(global_id: str) -> tuple[str, str]:
    """Return (type name, raw id). Raises ApiError(NOT_FOUND) for anything malformed."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, sep, raw_id = base64.urlsafe_b64decode(padded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError("NOT_FOUND", f"Not a valid id: {global_id!r}") from None
    if not sep or not type_name or not raw_id:
        raise ApiError("NOT_FOUND", f"Not a valid id: {global_id!r}")
    return type_name, raw_id


def raw_id_of(type_name: str, global_id: str) -> str | None:
    """The raw id if ``global_id`` is a well-formed id of ``type_name``, else None."""
    try:
        kind, raw_id = from_global_id(global_id)
    except ApiError:
        return None
    return raw_id if kind == type_name else None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError("BAD_USER_INPUT", f"Not a valid cursor: {cursor!r}") from None
