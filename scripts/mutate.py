"""Mutation testing (``make mutate``): mutmut over the modules where a silent bug loses or
leaks data, each module against only the in-process tests that matter for it.

Each module runs in its own scratch copy of the repository under ``var/mutate/<slug>/``
(``var/`` is ignored by git), with a ``[tool.mutmut]`` section written for that module:
the files to mutate, the tests to run. mutmut's own ``mutants/`` folder and caches stay in
that scratch copy, so nothing lands in the working tree.

    python scripts/mutate.py                          # every module, one after the other
    python scripts/mutate.py domain/event_log.py      # one module
    python scripts/mutate.py --list                   # the modules and their tests

A module may be restricted to some of its functions (``names``: mutmut's mutant-name
globs, e.g. ``domain.model.x_can_see_order__mutmut_*``) when the rest of the file is not
what this run is about. The summary line per module is what docs/testing.md quotes.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "var" / "mutate"
PACKAGES = ("api", "domain", "projections", "migrations")
COPIED = (*PACKAGES, "tests", "pyproject.toml")

UNIT_HANDLERS = ["tests/unit/test_order_handlers.py", "tests/unit/test_model.py"]
# The write model's rows after each command, through the real bus on a real database.
WRITE_MODEL = "tests/integration/test_write_model.py"
WRITE_SIDE = [
    "tests/integration/test_concurrency.py",
    "tests/integration/test_gap_free_positions.py",
    "tests/reliability/test_event_evolution.py",
]
RUNNER = [
    "tests/integration/test_projection_runner.py",
    "tests/integration/test_gap_free_positions.py",
    "tests/reliability/test_consistency_wait.py",
]
AUTHORIZATION = "tests/integration/test_authorization_in_process.py"
REBUILD = [
    "tests/integration/test_rebuild_shadow.py",
    "tests/integration/test_rebuild_equivalence.py",
    "tests/integration/test_rebuild_swap.py",
    "tests/integration/test_rebuild_staging.py",
]


@dataclasses.dataclass(frozen=True)
class Target:
    module: str
    tests: list[str]
    names: list[str] = dataclasses.field(default_factory=list)
    # Seconds per test (pytest-timeout) instead of the suite's 120: a mutant that leaves a
    # caller waiting forever uses no CPU, so mutmut's CPU-time limit never ends it.
    test_timeout: int | None = None


TARGETS = [
    Target(
        "domain/bus.py",
        ["tests/integration/test_bus_groups.py", *UNIT_HANDLERS, WRITE_MODEL, *WRITE_SIDE],
        test_timeout=20,
    ),
    Target(
        "domain/handlers/orders.py",
        [*UNIT_HANDLERS, WRITE_MODEL, "tests/integration/test_concurrency.py"],
    ),
    Target("domain/sql_unit_of_work.py", [WRITE_MODEL, *WRITE_SIDE]),
    Target(
        "domain/event_log.py",
        [
            "tests/integration/test_event_log_append.py",
            *WRITE_SIDE,
            "tests/integration/test_projection_runner.py",
        ],
    ),
    Target("projections/engine/step.py", ["tests/integration/test_step_batches.py", *RUNNER]),
    Target(
        "projections/engine/checkpoints.py",
        ["tests/integration/test_checkpoint_rows.py", *RUNNER, *REBUILD],
    ),
    Target("projections/engine/high_water.py", ["tests/unit/test_high_water.py", *RUNNER]),
    Target("projections/rebuild/swap.py", REBUILD),
    Target("projections/rebuild/staging.py", REBUILD),
    Target(
        "api/http/consistency.py",
        ["tests/unit/test_consistency_token.py", "tests/reliability/test_consistency_wait.py"],
    ),
    Target(
        "api/http/operation.py",
        ["tests/reliability/test_consistency_wait.py"],
        names=["api.http.operation.x_await_consistency__mutmut_*"],
    ),
    # Authorization: the rule itself, and the resolvers that call it, run in process by
    # tests/integration/test_authorization_in_process.py (the end-to-end tests run them in
    # a server process, which mutmut cannot see into).
    Target(
        "domain/model.py",
        ["tests/unit/test_model.py", AUTHORIZATION],
        names=["domain.model.x_can_see_order__mutmut_*"],
    ),
    Target("api/graphql/orders/queries.py", ["tests/unit/test_order_paging.py", AUTHORIZATION]),
    Target("api/graphql/node.py", [AUTHORIZATION]),
    Target("api/http/response_cache.py", ["tests/unit/test_response_cache.py"]),
]

SUMMARY = re.compile(r"^\s*(\S+): (\w[\w ]*)$")


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def prepare(target: Target) -> Path:
    work = SCRATCH / slug(target.module)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns(
        "__pycache__", "node_modules", ".hypothesis", ".pytest_cache", "*.pyc"
    )
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        else:
            shutil.copy(source, work / name)
    top = target.module.split("/")[0]
    timeout = [f"--timeout={target.test_timeout}"] if target.test_timeout else []
    pytest_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q", *timeout]
    config = "\n".join(
        [
            "",
            "[tool.mutmut]",
            f"source_paths = {[top]!r}",
            f"only_mutate = {[target.module]!r}",
            f"also_copy = {[name for name in PACKAGES if name != top]!r}",
            f"pytest_add_cli_args_test_selection = {target.tests!r}",
            f"pytest_add_cli_args = {pytest_args!r}",
            "use_git_change_detection = false",
            "",
        ]
    )
    with (work / "pyproject.toml").open("a") as out:
        out.write(config.replace("'", '"'))
    return work


def run(target: Target) -> dict[str, int]:
    work = prepare(target)
    mutmut = Path(sys.executable).parent / "mutmut"
    started = time.monotonic()
    subprocess.run(
        [str(mutmut), "run", "--max-children", "2", *target.names],
        cwd=work,
        check=False,
    )
    listing = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    counts: dict[str, int] = {}
    survivors = []
    patterns = target.names or ["*"]
    for line in listing.splitlines():
        match = SUMMARY.match(line)
        if not match:
            continue
        name, status = match.groups()
        if not any(_glob(pattern, name) for pattern in patterns):
            continue
        counts[status] = counts.get(status, 0) + 1
        if status == "survived":
            survivors.append(name)
    total = sum(counts.values())
    killed = counts.get("killed", 0)
    minutes = (time.monotonic() - started) / 60
    print(
        f"== {target.module}: killed {killed} / {total}, "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "killed")
        + f" ({minutes:.1f} min)"
    )
    for name in survivors:
        print(f"   survived: {name}   (diff: cd {work} && mutmut show {name})")
    return counts


def _glob(pattern: str, name: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="e.g. domain/event_log.py (default: all)")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    args = parser.parse_args()
    known = {t.module: t for t in TARGETS}
    unknown = [m for m in args.modules if m not in known]
    if unknown:
        parser.error(f"not a mutation target: {', '.join(unknown)} (see --list)")
    chosen = [known[m] for m in args.modules] or TARGETS
    if args.list:
        for target in chosen:
            print(target.module, " ".join(target.names), "<-", " ".join(target.tests))
        return 0
    for target in chosen:
        run(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
