"""A rebuild's order screens: the rows are kept in memory and written in key order once
(``flush``), instead of each batch updating rows scattered over the table (and its primary
key index) through SQLAlchemy. Only used on a rebuild's shadow tables.

The documents fold exactly as the live ``OrderDocProjector`` folds them (same
``fold_batch``); only where the rows live until they are written differs (``store``). It
changes the memory only once the whole batch has folded, so a batch that raises (and is
then retried event by event to park the poison one) leaves it as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Collection
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Connection

from projections.base import OrderChange
from projections.order_doc import Doc, OrderDocProjector, dumps

# Rows held per projector before they are written (about 1 KB each).
LIMIT = 250_000
Row = tuple[Any, ...]
CHANGE_COLUMNS = ("order_id", "version", "event", "occurred_at", "doc", "position")  # key first


@dataclasses.dataclass
class _Held:
    rows: dict[str, Row | None] = dataclasses.field(default_factory=dict)  # None: no row
    changes: list[Row] = dataclasses.field(default_factory=list)
    written: set[str] = dataclasses.field(default_factory=set)  # orders with a row on disk
    # Rows were written by someone else (a rebuild's helper process): any order may have
    # one on disk.
    all_written: bool = False


@dataclasses.dataclass(frozen=True)
class BufferedOrderDocs(OrderDocProjector):
    held: _Held = dataclasses.field(default_factory=_Held, compare=False)

    @classmethod
    def of(cls, projector: OrderDocProjector) -> BufferedOrderDocs:
        fields = {f.name: getattr(projector, f.name) for f in dataclasses.fields(projector)}
        return cls(**fields)

    def load_docs(self, conn: Connection, order_ids: list[str]) -> dict[str, str]:
        held = self.held.rows
        docs: dict[str, str] = {}
        missing = []
        for order_id in order_ids:
            if order_id not in held:
                missing.append(order_id)
            elif (row := held[order_id]) is not None:
                docs[order_id] = row[self._doc_at]
        on_disk = self.held.written or self.held.all_written
        found = super().load_docs(conn, missing) if missing and on_disk else {}
        return {**docs, **found}

    def store(
        self,
        conn: Connection,
        stored: Collection[str],
        docs: dict[str, Doc | None],
        changes: list[OrderChange],
    ) -> None:
        """Keep the folded batch's rows in memory instead of writing them."""
        rows: dict[str, Row | None] = {}
        for order_id in {change.order_id for change in changes}:
            doc = docs[order_id]
            assert doc is not None
            row = self.row_of(doc)
            rows[order_id] = None if row is None else self._as_row({"order_id": order_id, **row})
        new_changes = self._change_rows(conn, changes)
        self.held.rows.update(rows)  # the batch folded: only now the memory changes
        self.held.changes.extend(new_changes)

    @property
    def full(self) -> bool:
        return len(self.held.rows) + len(self.held.changes) >= LIMIT

    def flush(self, conn: Connection, chunk: int | None = None) -> None:
        """Write the held rows in key order (in transactions of ``chunk`` rows if given,
        else in the caller's) and forget them; the table's documents are read back when
        a later event needs them."""
        held = self.held
        gone = sorted(set(held.rows) if held.all_written else set(held.rows) & held.written)
        rows = sorted((row for row in held.rows.values() if row is not None), key=itemgetter(0))
        changes = sorted(held.changes, key=itemgetter(0, 1))  # (order_id, version)
        table, names = self.table.name, list(self._columns)
        # The rebuild's connection: SQLite's TEMP schema is passed by naming ``main``.
        schema, mark = ("main.", "?") if conn.dialect.name == "sqlite" else ("", "%s")
        writes: list[tuple[str, list[Row]]] = [
            (f'DELETE FROM {schema}"{table}" WHERE order_id = {mark}', [(k,) for k in gone]),
            (_insert(schema, table, names, mark), rows),
        ]
        if self.changes_table is not None:
            changes_table = self.changes_table.name
            writes.append((_insert(schema, changes_table, list(CHANGE_COLUMNS), mark), changes))
        for sql, params in writes:
            step = chunk or len(params) or 1
            for start in range(0, len(params), step):
                with conn.begin() if chunk else contextlib.nullcontext():
                    conn.exec_driver_sql(sql, params[start : start + step])
        held.written.update(order_id for order_id, row in held.rows.items() if row is not None)
        held.written.difference_update(k for k, row in held.rows.items() if row is None)
        held.rows.clear()
        held.changes.clear()

    @functools.cached_property
    def _columns(self) -> tuple[str, ...]:
        return tuple(self.table.c.keys())

    @property
    def _doc_at(self) -> int:
        return self._columns.index("doc")

    def _as_row(self, values: dict[str, Any]) -> Row:
        return tuple(map(values.__getitem__, self._columns))

    def _change_rows(self, conn: Connection, changes: list[OrderChange]) -> list[Row]:
        if self.changes_table is None:
            return []
        # Stored as SQLAlchemy stores it (a DateTime column is text in SQLite).
        at_type = self.changes_table.c.occurred_at.type.dialect_impl(conn.dialect)
        process = at_type.bind_processor(conn.dialect)
        return [
            (
                ch.order_id,
                ch.version,
                ch.event,
                ch.occurred_at if process is None else process(ch.occurred_at),
                dumps(ch.doc),
                ch.position,
            )
            for ch in changes
        ]  # in the order of CHANGE_COLUMNS


def _insert(schema: str, table: str, columns: list[str], mark: str) -> str:
    names = ", ".join(f'"{name}"' for name in columns)
    marks = ", ".join(mark for _ in columns)
    return f'INSERT INTO {schema}"{table}" ({names}) VALUES ({marks})'
