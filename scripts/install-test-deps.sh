#!/usr/bin/env bash
# Installs the system parts the test suite drives for real, and checks them exactly as the
# tests find them (tests/required_tools.py, tests/servers.py): headless Chromium at
# /usr/bin/chromium, Node.js >= 18 with npm (graphql-http audit, graphql-codegen, the
# graphql-ws client), and the PostgreSQL and Redis servers that the tests start on
# loopback. A test whose tool is missing fails; this script is how `make test` makes sure
# none is.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
MIN_NODE_MAJOR=18

node_major() {
  local version
  version=$(node --version 2>/dev/null) || return 1
  version=${version#v}
  echo "${version%%.*}"
}

node_ok() {
  local major
  major=$(node_major) || return 1
  [ "$major" -ge "$MIN_NODE_MAJOR" ]
}

need=()
[ -x "$CHROMIUM" ] || need+=(chromium)
node_ok || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The server binaries, not a running service: tests/servers.py starts its own clusters.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)

if [ ${#need[@]} -gt 0 ]; then
  echo "Installing system packages: ${need[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo="sudo" || {
      echo "Need root (or sudo) to apt-get install ${need[*]}" >&2; exit 1; }
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Checked again after installing: what the tests will find.
[ -x "$CHROMIUM" ] || { echo "$CHROMIUM is still missing" >&2; exit 1; }
node_ok || {
  echo "Node.js >= $MIN_NODE_MAJOR is needed; found: $(node --version 2>/dev/null || echo none)" >&2
  exit 1
}
command -v npm >/dev/null 2>&1 || { echo "npm is still missing" >&2; exit 1; }
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "PostgreSQL's server is still missing" >&2; exit 1; }
command -v redis-server >/dev/null 2>&1 || { echo "redis-server is still missing" >&2; exit 1; }
