"""How the screens read their tables: statements built once, and the tables each reads.

A statement is built once, with bind parameters, and knows the tables it reads: building
a SQLAlchemy statement per call, and asking it for its tables (``get_final_froms``
compiles it), cost more than running it (see docs/performance.md). ``fetch_all`` records
the tables read into the set in ``tables_read`` (the response cache sets one per request;
DataLoader batches run in tasks that inherit it).
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

Row = sa.Row[Any]
Doc = dict[str, Any]
P = sa.bindparam

# Tables read by the request being executed; None outside a cacheable execution.
tables_read: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "shopfront_tables_read", default=None
)


def record_tables(names: Iterable[str]) -> None:
    tables = tables_read.get()
    if tables is not None:
        tables.update(names)


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """A statement built once, and the names of the read tables it reads."""

    statement: sa.Select[Any]
    tables: tuple[str, ...]

    @classmethod
    def of(cls, statement: sa.Select[Any]) -> Query:
        return cls(statement, tuple(t.name for t in statement.get_final_froms()))  # type: ignore[attr-defined]


async def fetch_all(
    engine: AsyncEngine, query: Query, params: Mapping[str, Any] | None = None
) -> Sequence[Row]:
    record_tables(query.tables)
    async with engine.connect() as conn:
        rows: Sequence[Row] = (await conn.execute(query.statement, params)).all()
        return rows


async def fetch_one(
    engine: AsyncEngine, query: Query, params: Mapping[str, Any] | None = None
) -> Row | None:
    rows = await fetch_all(engine, query, params)
    return rows[0] if rows else None
