"""Node.js packages that tests run (the graphql-http audit, graphql-codegen, tsc, the
graphql-ws client): ``npm ci`` from each folder's package-lock.json when its node_modules
is missing or differs from the lock.

A missing or too old Node.js fails the test that needs it, never skips it: `make test`
installs Node.js (scripts/install-test-deps.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

MIN_NODE_MAJOR = 18
NPM_CI_TIMEOUT = 300


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"'{name}' is not on PATH: run `make test-deps` (installs Node.js and npm)")
    return path


def node() -> str:
    """The path of a Node.js new enough for the tests' packages."""
    path = tool("node")
    version = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE_MAJOR:
        pytest.fail(f"Node.js {version} is too old: the tests need >= {MIN_NODE_MAJOR}")
    return path


def installed_matches_lockfile(folder: Path) -> bool:
    """Whether ``folder/node_modules`` holds exactly the versions package-lock.json pins."""
    if not (folder / "node_modules").is_dir():
        return False
    lock = json.loads((folder / "package-lock.json").read_text())
    packages: dict[str, dict[str, Any]] = lock["packages"]
    for location, entry in packages.items():
        if not location:  # "" is the project itself
            continue
        try:
            installed = json.loads((folder / location / "package.json").read_text())
        except (OSError, ValueError):
            return False
        if installed.get("version") != entry.get("version"):
            return False
    return True


def ensure_node_modules(folder: Path) -> None:
    """``npm ci`` in ``folder`` unless its node_modules already matches the lock."""
    node()
    if installed_matches_lockfile(folder):
        return
    done = subprocess.run(
        [tool("npm"), "ci", "--no-audit", "--no-fund"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in {folder} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    assert installed_matches_lockfile(folder), f"npm ci did not install {folder}'s lock"
