"""The pure parts of ``python -m bench --db``: which phases run on which engine, and how
the rows of the two engines are paired and printed."""

from __future__ import annotations

import pytest

from bench import config, engines
from bench.config import PHASES
from bench.report import Row


def row(figure: str, ours: str, ratio: str = "1.00", met: bool | None = True) -> Row:
    return Row(figure, ours, "100/s (plain Starlette route)", ratio, ">= 0.8", met)


def test_sqlite_alone_runs_every_phase_and_cluster_and_bus_once() -> None:
    assert engines.per_engine(PHASES, "sqlite") == {
        "sqlite": ("history", "reads", "writes", "latency", "memory", "rebuild")
    }
    assert engines.once(PHASES) == ("cluster", "bus")
    assert engines.left_out(PHASES, "sqlite") == []


def test_both_runs_the_url_driven_phases_on_postgresql_in_the_asked_order() -> None:
    plan = engines.per_engine(("memory", "history", "reads", "cluster", "writes"), "both")
    assert list(plan) == ["sqlite", "postgresql"]
    assert plan["sqlite"] == ("memory", "history", "reads", "writes")
    assert plan["postgresql"] == ("memory", "reads", "writes")


def test_phases_that_make_no_sense_twice_are_never_per_engine() -> None:
    for db in engines.CHOICES:
        for phases in engines.per_engine((*PHASES, "bus"), db).values():
            assert not set(phases) & set(engines.ONCE)
    assert engines.once(("bus", "reads", "cluster")) == ("bus", "cluster")


def test_postgresql_alone_says_which_phases_it_leaves_out() -> None:
    assert engines.per_engine(PHASES, "postgresql") == {
        "postgresql": ("reads", "writes", "latency", "memory")
    }
    assert engines.left_out(PHASES, "postgresql") == [
        ("history", "postgresql"),
        ("rebuild", "postgresql"),
    ]


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        engines.selected("mysql")


def test_db_option_and_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.parse([]).db == "sqlite"
    assert config.parse(["--db", "both"]).db == "both"
    monkeypatch.setenv("BENCH_DB", "postgresql")
    assert config.parse([]).db == "postgresql"
    with pytest.raises(SystemExit):
        config.parse(["--db", "oracle"])


def test_rows_are_paired_by_figure_keeping_the_first_engine_order() -> None:
    sqlite = [row("reads", "300/s"), row("writes", "50/s"), row("history", "9 us/page")]
    postgresql = [row("writes", "40/s", "0.40", False), row("reads", "200/s")]
    paired = engines.pair({"sqlite": sqlite, "postgresql": postgresql})
    assert [p.figure for p in paired] == ["reads", "writes", "history"]
    writes = paired[1]
    assert writes.by_engine["sqlite"] == sqlite[1]
    assert writes.by_engine["postgresql"] == postgresql[0]
    assert paired[2].by_engine == {"sqlite": sqlite[2], "postgresql": None}


def test_a_row_measured_only_on_postgresql_still_appears() -> None:
    paired = engines.pair({"sqlite": [row("a", "1/s")], "postgresql": [row("b", "2/s")]})
    assert [(p.figure, p.by_engine["sqlite"] is None) for p in paired] == [
        ("a", False),
        ("b", True),
    ]


def test_table_puts_each_engine_side_by_side() -> None:
    paired = engines.pair(
        {
            "sqlite": [row("reads", "300/s", "0.90"), row("history", "9 us/page", "7x")],
            "postgresql": [row("reads", "200/s", "0.70", False)],
        }
    )
    lines = engines.table(paired, ["sqlite", "postgresql"]).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == [
        "figure",
        "target",
        "SQLite: ours",
        "SQLite: baseline",
        "SQLite: ratio",
        "SQLite: met?",
        "PostgreSQL: ours",
        "PostgreSQL: baseline",
        "PostgreSQL: ratio",
        "PostgreSQL: met?",
    ]
    assert set(lines[1]) == {"|", "-"}
    reads = [c.strip() for c in lines[2].strip("|").split("|")]
    assert reads[0] == "reads" and reads[1] == ">= 0.8"
    assert reads[2:6] == ["300/s", "100/s (plain Starlette route)", "0.90", "yes"]
    assert reads[6:] == ["200/s", "100/s (plain Starlette route)", "0.70", "**no**"]
    history = [c.strip() for c in lines[3].strip("|").split("|")]
    assert history[6:] == ["-", "-", "-", "-"]
    assert len({len(line) for line in lines}) == 1  # columns aligned
