"""Which phases run on which database engine, and the table that puts each row measured
on SQLite next to the same row measured on PostgreSQL. Pure: no processes, no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from bench.report import Row, markdown

ENGINES = ("sqlite", "postgresql")
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
CHOICES = (*ENGINES, "both")
# Run once whatever --db says: they pick their own databases (cluster: a PostgreSQL of
# its own with several processes; bus: several processes sharing one Redis).
ONCE = ("cluster", "bus")
# Measure SQLite-file code only: history compares the read table with joins on the
# write model through sqlite3; rebuild's baseline is a raw sqlite3 bulk insert.
SQLITE_ONLY = ("history", "rebuild")
# The phases that run against either engine through Shopfront's database URLs.
ON_POSTGRESQL = ("reads", "writes", "latency", "memory")


def selected(db: str) -> tuple[str, ...]:
    """The engines ``--db`` names, in the order they run."""
    if db == "both":
        return ENGINES
    if db not in ENGINES:
        raise ValueError(f"unknown database engine {db!r}: one of {', '.join(CHOICES)}")
    return (db,)


def runs_on(phase: str, engine: str) -> bool:
    """Whether ``phase`` (not one of ONCE) is measured on ``engine``."""
    return engine == "sqlite" or phase in ON_POSTGRESQL


def per_engine(phases: Sequence[str], db: str) -> dict[str, tuple[str, ...]]:
    """For each selected engine, the phases (in the asked order) measured on it; the
    phases that run once are left out (see ``once``)."""
    return {
        engine: tuple(p for p in phases if p not in ONCE and runs_on(p, engine))
        for engine in selected(db)
    }


def once(phases: Sequence[str]) -> tuple[str, ...]:
    return tuple(p for p in phases if p in ONCE)


def left_out(phases: Sequence[str], db: str) -> list[tuple[str, str]]:
    """(phase, engine) pairs asked for but not measured there (to say so in the log)."""
    plan = per_engine(phases, db)
    return [
        (p, engine)
        for engine in selected(db)
        for p in phases
        if p not in ONCE and p not in plan[engine]
    ]


@dataclasses.dataclass(frozen=True)
class Paired:
    """One figure, as measured on each engine (None: not measured there)."""

    figure: str
    target: str
    by_engine: Mapping[str, Row | None]


def pair(rows: Mapping[str, Iterable[Row]]) -> list[Paired]:
    """The rows of each engine matched by figure, in the order they first appear."""
    order: list[str] = []
    found: dict[str, dict[str, Row]] = {}
    for engine, engine_rows in rows.items():
        for row in engine_rows:
            if row.figure not in found:
                order.append(row.figure)
                found[row.figure] = {}
            found[row.figure][engine] = row
    out = []
    for figure in order:
        cells = found[figure]
        target = next(iter(cells.values())).target
        out.append(Paired(figure, target, {engine: cells.get(engine) for engine in rows}))
    return out


def _met(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "**no**")


def _cells(row: Row | None) -> tuple[str, str, str, str]:
    if row is None:
        return ("-", "-", "-", "-")
    return (row.ours, row.baseline, row.ratio, _met(row.met))


def table(paired: Sequence[Paired], engines: Sequence[str]) -> str:
    """A markdown table: figure, target, then ours / baseline / ratio / met per engine."""
    header: list[str] = ["figure", "target"]
    for engine in engines:
        label = LABELS.get(engine, engine)
        header += [f"{label}: ours", f"{label}: baseline", f"{label}: ratio", f"{label}: met?"]
    cells = [tuple(header)]
    for p in paired:
        line: list[str] = [p.figure, p.target]
        for engine in engines:
            line.extend(_cells(p.by_engine.get(engine)))
        cells.append(tuple(line))
    return markdown(cells)
