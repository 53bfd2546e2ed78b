"""Child processes of the bench: started in their own session, always killed by id."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
_CHILDREN: list[subprocess.Popen[bytes]] = []


def start(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    pipe_stdout: bool = False,
    pipe_stdin: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a child in a new session (its own process group) and remember it. Its
    stderr (and stdout unless piped) go to ``log``, or nowhere."""
    full_env = {**os.environ, **(env or {})}
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        sink = files.enter_context(log.open("ab")) if log is not None else None
        target: int | IO[bytes] = subprocess.DEVNULL if sink is None else sink
        process = subprocess.Popen(
            list(args),
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.PIPE if pipe_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_stdout else target,
            stderr=target,
            start_new_session=True,
        )
    _CHILDREN.append(process)
    return process


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the child's process group (it leads one), then SIGKILL if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    if process in _CHILDREN:
        _CHILDREN.remove(process)


def stop_all() -> None:
    for process in list(_CHILDREN):
        stop(process, timeout=5.0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200 (or fail if the process died or time ran out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:g} s")


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft open-files limit (children inherit it); return it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
