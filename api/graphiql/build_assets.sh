#!/usr/bin/env bash
# Rebuild the vendored GraphiQL assets in api/graphiql/static/ from the pinned
# package.json + package-lock.json next to this script.
#
# The output is committed, so running the app never needs npm or the network;
# only run this when bumping a version in package.json (then refresh the lock
# with `npm install --package-lock-only` in a scratch copy first).
#
# Usage: api/graphiql/build_assets.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
static="$here/static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

nm="$work/node_modules"
mkdir -p "$static"
rm -f "$static"/*

# source -> destination (file name inside static/)
copy() {
    install -m 0644 "$nm/$1" "$static/$2"
}
copy react/umd/react.production.min.js react.production.min.js
copy react-dom/umd/react-dom.production.min.js react-dom.production.min.js
copy graphiql/graphiql.min.js graphiql.min.js
copy graphiql/graphiql.min.css graphiql.min.css
copy @graphiql/plugin-explorer/dist/index.umd.js plugin-explorer.umd.js
copy @graphiql/plugin-explorer/dist/style.css plugin-explorer.css

# Source maps are not shipped: drop the comments that point at them so the
# browser's devtools do not request missing files.
sed -i -e '/^\/\/# sourceMappingURL=/d' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' "$static"/*

# Third-party licence texts travel with the code.
{
    for pkg in react react-dom graphiql @graphiql/plugin-explorer; do
        echo "==== $pkg $(node -p "require('$nm/$pkg/package.json').version") ===="
        cat "$nm/$pkg/LICENSE"* 2>/dev/null || echo "(license: $(node -p \
            "require('$nm/$pkg/package.json').license"))"
        echo
    done
} > "$static/THIRD_PARTY_LICENSES.txt"

# Offline guarantee: stylesheets must not pull anything (fonts, images) from
# outside; every url() has to be an inline data: URI and there is no @import.
fail=0
for css in "$static"/*.css; do
    if grep -q '@import' "$css"; then
        echo "error: $css contains @import" >&2
        fail=1
    fi
    if grep -oE 'url\([^)]*\)' "$css" | grep -vqE "^url\((['\"])?data:"; then
        echo "error: $css references a non-inline url()" >&2
        fail=1
    fi
done
if grep -lE '(src|href)=["'"'"']https?://' "$static"/*.js; then
    echo "error: a bundle injects a remote <script>/<link>" >&2
    fail=1
fi
if grep -lE 'https?://[^"'"'"' ]*(unpkg\.com|jsdelivr\.net|cdnjs|googleapis|gstatic)' \
    "$static"/*.css; then
    echo "error: a stylesheet references a CDN" >&2
    fail=1
fi
[ "$fail" -eq 0 ] || exit 1

ls -l "$static"
