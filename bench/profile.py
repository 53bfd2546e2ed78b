"""Optional (``--profile``): sample the Shopfront server with py-spy during one extra,
uncounted round of each throughput figure, and sum the samples up by where the time goes."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench import procs

AREAS = (
    ("graphql-core", "/graphql/"),
    ("strawberry", "/strawberry/"),
    ("sqlalchemy", "/sqlalchemy/"),
    ("aiosqlite + sqlite3", "/aiosqlite/"),
    ("aiosqlite + sqlite3", "/sqlite3/"),
    ("starlette", "/starlette/"),
    ("uvicorn", "/uvicorn/"),
    ("jwt + cryptography", "/jwt/"),
    ("jwt + cryptography", "/cryptography/"),
    ("prometheus_client", "/prometheus_client/"),
    ("websockets", "/websockets/"),
    ("app: api/", "/api/"),
    ("app: domain/", "/domain/"),
    ("app: projections/", "/projections/"),
    ("asyncio", "/asyncio/"),
    ("threads, queues", "/threading.py"),
    ("threads, queues", "/concurrent/"),
    ("threads, queues", "/queue.py"),
)
# What the server was doing, by the outermost frame that says so (first match wins).
STAGES = (
    ("WebSocket subscriptions (per subscriber)", "strawberry/subscriptions/"),
    ("GraphQL parse + validate", "Schema._prepare_operation"),
    ("GraphQL execute (resolvers, results)", "Schema._execute_operation"),
    ("command handlers (writer thread)", "CommandBus._execute"),
    ("projectors (projector thread)", "Tail._step"),
    ("following the leader (projector thread)", "Tail._follow"),
    ("rest of the HTTP request", "graphql_http"),
    ("uvicorn, middleware, event loop", "uvicorn/"),
    # The async engine runs each statement's Python side in a greenlet of its own stack.
    ("SQLAlchemy async statements (greenlets)", "sqlalchemy/"),
)
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    found = procs.BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    tool = py_spy()
    if tool is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [tool, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    # --gil: only the thread holding the GIL, i.e. where the one core of Python goes (a
    # thread waiting in C, as aiosqlite's workers do between queries, would look busy).
    command += ["--gil", "--rate", "200", "--format", "raw", "--output", str(out)]
    return procs.start(command, log=out.with_suffix(".log"))


def _area(file: str) -> str:
    path = "/" + file  # py-spy writes paths relative to sys.path: "graphql/...", "api/..."
    for name, marker in AREAS:
        if marker in path:
            return name
    return "other"


def _stage(stack: str) -> str:
    for name, marker in STAGES:
        if marker in stack:
            return name
    return "other"


def summarize(folded: Path, top: int = 12) -> dict[str, Any]:
    """Share of samples by area (where the innermost Python frame is), the busiest
    innermost functions, and the app's own functions by inclusive share."""
    own: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [FRAME.match(f) for f in stack.split(";")]
        parsed = [(m["func"], m["file"]) for m in frames if m is not None]
        if not parsed:
            continue
        total += count
        func, file = parsed[-1]
        own[f"{func} ({Path(file).name})"] += count
        areas[_area(file)] += count
        stages[_stage(stack)] += count
        seen = set()
        for func, file in parsed:
            if _area(file).startswith("app:") and (func, file) not in seen:
                seen.add((func, file))
                inclusive[f"{func} ({file.split('/main/')[-1]})"] += count
    if not total:
        return {"samples": 0}

    def shares(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, round(100 * c / total, 1)) for name, c in counter.most_common(n)]

    return {
        "samples": total,
        "by_stage_pct": shares(stages, len(stages)),
        "by_area_pct": shares(areas, len(areas)),
        "top_self_pct": shares(own, top),
        "app_inclusive_pct": shares(inclusive, top),
    }


def describe(summary: dict[str, Any]) -> str:
    if not summary.get("samples"):
        return "no samples"
    stages = ", ".join(f"{name} {pct}%" for name, pct in summary["by_stage_pct"][:6])
    areas = ", ".join(f"{name} {pct}%" for name, pct in summary["by_area_pct"][:6])
    return f"{summary['samples']} GIL samples; doing: {stages}; innermost frame in: {areas}"
