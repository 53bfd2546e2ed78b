"""The system tools some tests drive for real, found exactly where
``scripts/install-test-deps.sh`` (``make test-deps``) puts and checks them.

A missing or too old tool fails the test with a message that says how to install it:
a test that cannot run its tool proves nothing, so it may not pass as a skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

# The same path and version the install script checks.
CHROMIUM = Path("/usr/bin/chromium")
MIN_NODE_MAJOR = 18
NPM_CI_TIMEOUT = 300
INSTALL_HINT = "run `make test-deps` (scripts/install-test-deps.sh) to install it"


def missing(problem: str) -> NoReturn:
    pytest.fail(f"{problem}: {INSTALL_HINT}", pytrace=False)


def chromium() -> Path:
    """Headless Chromium for the browser tests."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing (Debian package chromium)")
    return CHROMIUM


def node_and_npm() -> tuple[str, str]:
    """Node.js >= MIN_NODE_MAJOR and npm (the graphql-http audit, graphql-js, codegen,
    tsc, the graphql-ws client)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("'node' and 'npm' must be on PATH")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE_MAJOR:
        missing(f"Node.js {version} is too old: the tests need >= {MIN_NODE_MAJOR}")
    return node, npm


def installed_matches_lockfile(folder: Path) -> bool:
    """Whether ``folder/node_modules`` holds exactly the versions package-lock.json pins."""
    if not (folder / "node_modules").is_dir():
        return False
    packages: dict[str, dict[str, Any]] = json.loads((folder / "package-lock.json").read_text())[
        "packages"
    ]
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


def node_modules(folder: Path) -> str:
    """Node.js, with ``npm ci`` run in ``folder`` unless its node_modules already holds
    what its package-lock.json pins; returns the path of ``node``."""
    node, npm = node_and_npm()
    if installed_matches_lockfile(folder):
        return node
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in {folder} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    assert installed_matches_lockfile(folder), f"npm ci did not install {folder}'s lock"
    return node
