"""Shared GraphQL types: Node, PageInfo, UserError, and paging arguments."""

from __future__ import annotations

import strawberry

from api.graphql.errors import ApiError
from domain.model import DomainError

MAX_PAGE = 100


@strawberry.interface(description="An object with a global id (Relay).")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="An expected business failure: fix the input and try again.")
class UserError:
    field: str | None
    message: str
    code: str

    @classmethod
    def from_domain(cls, error: DomainError) -> UserError:
        return cls(field=error.field, message=error.message, code=error.code)


def check_first(first: int | None, default: int) -> int:
    """An explicit null means the default page size."""
    if first is None:
        return default
    if not 0 <= first <= MAX_PAGE:
        raise ApiError("BAD_USER_INPUT", f"'first' must be between 0 and {MAX_PAGE}")
    return first


def page_info(cursors: list[str], has_next: bool, after: str | None) -> PageInfo:
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )
