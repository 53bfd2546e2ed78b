#!/usr/bin/env bash
# Copies graphql-ws's browser build (the version package-lock.json pins) into static/vendor,
# where the app serves it from: the tracker page needs no network and no bundler.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
cp node_modules/graphql-ws/umd/graphql-ws.min.js static/vendor/graphql-ws.min.js
cp node_modules/graphql-ws/LICENSE.md static/vendor/graphql-ws.LICENSE.md
