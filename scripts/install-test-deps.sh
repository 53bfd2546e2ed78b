#!/usr/bin/env bash
# Installs the system parts the test suite drives for real: headless Chromium, Node.js +
# npm for the graphql-http conformance audit, and the PostgreSQL and Redis servers that
# the tests start on loopback (tests/servers.py).
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The GraphQL-over-HTTP conformance audit (tests/conformance) runs on Node.js >= 18.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The server binaries, not a running service: tests/servers.py starts its own clusters.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing system packages: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && sudo="sudo" || {
    echo "Need root (or sudo) to apt-get install ${need[*]}" >&2; exit 1; }
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
