"""The table of the issue (figure, ours, baseline, ratio, target, met?), the machine it
ran on, and the versions and command that produced it."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import os
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import dataset, loadgen, procs, servers

PACKAGES = (
    "starlette",
    "strawberry-graphql",
    "graphql-core",
    "uvicorn",
    "uvloop",
    "httptools",
    "websockets",
    "sqlalchemy",
    "aiosqlite",
    "orjson",
)
GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Row:
    figure: str
    ours: str
    baseline: str
    ratio: str
    target: str
    met: bool | None


def _rate(value: float) -> str:
    return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"


def _met(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "**no**")


def _ratio_row(figure: str, ours: float, base: float, target: float, note: str = "") -> Row:
    ratio = ours / base if base else math.nan
    return Row(
        figure,
        _rate(ours) + note,
        _rate(base),
        f"{ratio:.2f}",
        f">= {target:g}",
        ratio >= target,
    )


def _failed(figure: str, error: str, target: str) -> Row:
    return Row(figure, f"failed: {error}", "-", "-", target, False)


# The read figures: the uncached ones first (every request executed), then the cached.
UNCACHED_READS = (
    ("my_orders", "`myOrders(first: 20)` with lines"),
    ("my_orders_flat", "`myOrders(first: 20)`, 9 flat fields"),
    ("product", "`product(sku)`"),
    ("products", "`products(first: 20)`"),
    ("order", "`order(id)`"),
)
CACHED_READS = (
    ("my_orders", "`myOrders(first: 20)` with lines, requests/s"),
    ("product", "`product(sku)`, requests/s"),
)


def _read_rows(reads: Any) -> list[Row]:
    if reads is None:
        return []
    if "error" in reads:
        return [_failed("reads", reads["error"], ">= 0.8")]
    out = []
    for key, name in UNCACHED_READS:
        r = reads.get(key + "_uncached")
        if r is None:
            continue
        note = "" if r["same_data"] else " (data differ!)"
        compiled = r["ours"].get("compiled_ratio")
        if compiled is not None:
            note += f" ({compiled:.0%} compiled)"
        figure = f"{name}, response cache off, requests/s"
        row = _ratio_row(figure, r["ours"]["rps"], r["baseline"]["rps"], 0.8, note)
        out.append(dataclasses.replace(row, baseline=f"{row.baseline} (plain Starlette route)"))
        if "bare" in r:
            row = _ratio_row(
                "same, against the bare route", r["ours"]["rps"], r["bare"]["rps"], 0.5
            )
            out.append(dataclasses.replace(row, baseline=f"{row.baseline} (bare route)"))
    for key, name in UNCACHED_READS:
        r = reads.get(key + "_strawberry")
        if r is None:
            continue
        figure = f"{name}, cache off, compiled reads off (Strawberry executor)"
        row = _ratio_row(figure, r["ours"]["rps"], r["baseline"]["rps"], 0.8)
        row = dataclasses.replace(row, baseline=f"{row.baseline} (plain Starlette route)")
        out.append(dataclasses.replace(row, target="(report)", met=None))
    for key, figure in CACHED_READS:
        r = reads.get(key)
        if r is None:
            continue
        note = "" if r["same_data"] else " (data differ!)"
        hit = r["ours"].get("cache_hit_ratio")
        if hit is not None:
            note += f" ({hit:.0%} cache hits)"
        row = _ratio_row(figure, r["ours"]["rps"], r["baseline"]["rps"], 0.5, note)
        out.append(dataclasses.replace(row, baseline=f"{row.baseline} (plain Starlette route)"))
    return out


def rows(results: dict[str, Any], subscribers: int, idle: int, connections: int) -> list[Row]:
    out: list[Row] = []
    out.extend(_read_rows(results.get("reads")))
    writes = results.get("writes")
    figure = f"`placeOrder` mutations/s over HTTP ({connections} concurrent clients)"
    if isinstance(writes, dict) and "error" not in writes:
        row = _ratio_row(figure, writes["ours"]["rps"], writes["baseline"]["rps"], 0.5)
        label = writes["baseline"].get("label", "raw sqlite3")
        out.append(dataclasses.replace(row, baseline=f"{row.baseline} ({label})"))
        if "strawberry" in writes:
            row = _ratio_row(
                f"{figure}, compiled mutations off (Strawberry executor)",
                writes["strawberry"]["rps"],
                writes["baseline"]["rps"],
                0.5,
            )
            out.append(
                dataclasses.replace(
                    row, baseline=f"{row.baseline} ({label})", target="(report)", met=None
                )
            )
    elif writes is not None:
        out.append(_failed(figure, writes["error"], ">= 0.5"))
    rebuild = results.get("rebuild")
    figure = "projection rebuild, events/s"
    if isinstance(rebuild, dict) and "error" not in rebuild:
        row = _ratio_row(
            figure, rebuild["ours"]["events_per_s"], rebuild["baseline"]["events_per_s"], 0.3
        )
        out.append(dataclasses.replace(row, baseline=f"{row.baseline} (raw bulk insert)"))
    elif rebuild is not None:
        out.append(_failed(figure, rebuild["error"], ">= 0.3"))
    latency = results.get("latency")
    variants = (
        ("one_each", f"mutation -> subscriber delivery, {subscribers:,} live subscribers"),
        ("broadcast", f"same, each event broadcast to all {subscribers:,} subscribers"),
    )
    for key, figure in variants:
        if isinstance(latency, dict) and "error" not in latency:
            r = latency[key]
            ok = r["delivered"] == r["expected"] and r["p99_ms"] <= 50
            out.append(
                Row(
                    figure,
                    f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms "
                    f"({r['delivered']:,}/{r['expected']:,} delivered)",
                    "(absolute)",
                    "-",
                    "p99 <= 50 ms",
                    ok,
                )
            )
        elif latency is not None:
            out.append(_failed(figure, latency["error"], "p99 <= 50 ms"))
    memory = results.get("memory")
    figure = "idle subscriptions held by one process, memory per subscription"
    if isinstance(memory, dict) and "error" not in memory:
        live, after = memory["live"], memory["rss_after"]
        projected = memory["rss_before"] + memory["bytes_per_subscription"] * idle
        ok = live >= idle and after < GIB
        out.append(
            Row(
                figure,
                f"{memory['bytes_per_subscription'] / 1024:.1f} KiB each; RSS "
                f"{after / 2**20:,.0f} MiB with {live:,}"
                + ("" if live >= idle else f" (projected {projected / 2**20:,.0f} MiB)"),
                "(absolute)",
                "-",
                f"{idle:,} under 1 GiB",
                ok,
            )
        )
    elif memory is not None:
        out.append(_failed(figure, memory["error"], f"{idle:,} under 1 GiB"))
    out.extend(_cluster_rows(results.get("cluster"), connections))
    hist = results.get("history")
    figure = "order history screen: read table vs joins on the write model"
    if isinstance(hist, dict) and "error" not in hist:
        out.append(_history_row(figure, hist))
    elif hist is not None:
        out.append(_failed(figure, hist["error"], ">= 5x faster"))
    return out


def _cluster_rows(cluster: Any, connections: int) -> list[Row]:
    """The cluster phase (PostgreSQL): ratios of one run, absolute rates beside them."""
    figures = (
        ("my_orders", "`myOrders(first: 20)` uncached, PostgreSQL: 2 API processes vs 1", 1.7),
        ("product", "`product(sku)` uncached, PostgreSQL: 2 API processes vs 1", 1.7),
        (
            "place_order",
            f"`placeOrder`/s, PostgreSQL ({connections} clients): "
            "projectors in their own process vs inline",
            1.4,
        ),
    )
    out: list[Row] = []
    for key, figure, target in figures:
        if not isinstance(cluster, dict):
            continue
        if "error" in cluster:
            out.append(_failed(figure, cluster["error"], f">= {target:g}"))
            continue
        r = cluster["writes"] if key == "place_order" else cluster["reads"].get(key)
        if r is None:
            continue
        errors = r["ours"]["errors"] + r["baseline"]["errors"]
        note = f" ({errors:,} errors!)" if errors else ""
        row = _ratio_row(figure, r["ours"]["rps"], r["baseline"]["rps"], target, note)
        label = "inline" if key == "place_order" else "1 process"
        ours_cpu, base_cpu = (_cores(r[side]) for side in ("ours", "baseline"))
        out.append(
            dataclasses.replace(
                row, ours=row.ours + ours_cpu, baseline=f"{row.baseline} ({label}){base_cpu}"
            )
        )
    return out


def _cores(side: dict[str, Any]) -> str:
    """The CPU a side's processes kept busy, and the whole machine meanwhile."""
    cores, machine = side.get("server_cpu_cores"), side.get("machine_busy_cores")
    if cores is None or machine is None:
        return ""
    return f", {cores:.2f} cores (machine {machine:.2f})"


def _history_row(figure: str, hist: dict[str, Any]) -> Row:
    ratio = hist["read_table_pages_per_s"] / hist["joins_pages_per_s"]
    ours = f"{hist['read_table_us_per_page']:.0f} us/page"
    theirs = f"{hist['joins_us_per_page']:.0f} us/page (joins"
    shown = f"{ratio:.1f}x"
    if "read_table_sql_us_per_page" in hist:  # the SQL alone, rows not yet shaped
        sql_ratio = hist["read_table_sql_pages_per_s"] / hist["joins_sql_pages_per_s"]
        ours += f" (SQL alone {hist['read_table_sql_us_per_page']:.0f} us)"
        theirs += f"; SQL alone {hist['joins_sql_us_per_page']:.0f} us"
        shown += f" (SQL alone {sql_ratio:.1f}x)"
    if hist["pages_differ"]:
        ours += f" ({hist['pages_differ']} pages differ!)"
    return Row(
        figure + f" ({hist['orders_in_write_model']:,} orders)",
        ours,
        theirs + ")",
        shown,
        ">= 5x faster",
        ratio >= 5 and hist["pages_differ"] == 0,
    )


def table(all_rows: list[Row]) -> str:
    header = ("figure", "ours", "baseline", "ratio", "target", "met?")
    cells = [header] + [
        (r.figure, r.ours, r.baseline, r.ratio, r.target, _met(r.met)) for r in all_rows
    ]
    return markdown(cells)


def markdown(cells: Sequence[tuple[str, ...]]) -> str:
    """A Markdown table, its first row the header, every column padded to its widest."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _first_line(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip() if ":" in line else line
    except OSError:
        pass
    return "?"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _filesystem(path: Path) -> str:
    best = ("?", "?")
    best_len = -1
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            if str(path.resolve()).startswith(mount) and len(mount) > best_len:
                best, best_len = (device, kind), len(mount)
    except OSError:
        pass
    return f"{best[1]} on {best[0]}"


def _wrk_version() -> str:
    wrk = loadgen.wrk_path()
    if wrk is None:
        return "not installed"
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].strip()


def machine(var: Path) -> dict[str, str]:
    mem_kib = _first_line("/proc/meminfo", "MemTotal").split()[0]
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "-"
    return {
        "cpus": str(os.cpu_count()),
        "cpu": _first_line("/proc/cpuinfo", "model name"),
        "ram": f"{int(mem_kib) / 2**20:.1f} GiB" if mem_kib.isdigit() else "?",
        "os": f"{_os_name()}, Linux {platform.release()}",
        "disk": _filesystem(var),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "load generator": _wrk_version(),
        "load average at start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def commands(sizes: dataset.Sizes, connections: int, duration: float) -> list[str]:
    """How the processes of the run were started (ports are picked at run time)."""
    env = " ".join(
        f"{k}={v}" for k, v in servers.shopfront_env(Path("var/bench/run/db")).items()
    ).replace(str(procs.ROOT) + "/", "")
    seed = " && ".join(
        " ".join(c).replace(str(procs.ROOT) + "/", "") for c in dataset.seed_commands(sizes)
    )
    load = (
        f"wrk -t1 -c{connections} -d{max(1, round(duration))}s --timeout 30s "
        "-s var/bench/run/load/NAME.lua http://127.0.0.1:PORT"
        if loadgen.wrk_path()
        else f"python -m bench.loadgen SPEC ({connections} connections, {duration:g} s)"
    )
    return [
        f"seed (once, into var/bench/data/{sizes.key}/): {seed}",
        f"server: {env} .venv/bin/shopfront serve --host 127.0.0.1 --port PORT",
        "baseline: .venv/bin/python -m uvicorn bench.baseline_app:app --host 127.0.0.1 "
        "--port PORT --workers 1 --no-access-log",
        f"load: {load}",
        "subscribers: .venv/bin/python -m bench.subscribers SPEC (graphql-transport-ws)",
        "rebuild: .venv/bin/python -m bench.rebuild_worker FOLDER OUT "
        "(as `shopfront projections rebuild`)",
    ]


def command() -> str:
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    return " ".join(argv)
