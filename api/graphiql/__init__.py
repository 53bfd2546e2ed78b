"""Offline GraphiQL explorer page.

Every asset the page needs (React, ReactDOM, GraphiQL, the explorer plugin and
their stylesheets, fonts inlined as data: URIs) is vendored in ``static/`` by
``build_assets.sh`` from the pinned ``package.json``/``package-lock.json``, so
serving the page needs neither npm nor the network.

The application mounts :func:`static_app` at :data:`STATIC_PREFIX` and returns
:func:`render_page` for browser ``GET /graphql`` requests.

Transport wiring done by the page:

* queries and mutations: HTTP ``POST {origin}/graphql`` carrying the headers
  typed in the headers editor;
* subscriptions: ``ws(s)://{host}/graphql`` with the ``graphql-transport-ws``
  protocol (the graphql-ws client bundled inside ``graphiql.min.js``); the
  headers-editor object is sent as the ``connection_init`` payload, e.g.
  ``{"Authorization": "Bearer ..."}``.
"""

from __future__ import annotations

import json
import pathlib
from typing import Final

from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "STATIC_PREFIX", "render_page", "static_app"]

STATIC_DIR: Final[pathlib.Path] = pathlib.Path(__file__).resolve().parent / "static"
"""Folder holding the vendored assets (committed; rebuilt by build_assets.sh)."""

STATIC_PREFIX: Final[str] = "/graphiql/static"
"""URL path where :func:`static_app` must be mounted; the page links assets here."""

_STYLESHEETS: Final[tuple[str, ...]] = ("graphiql.min.css", "plugin-explorer.css")
# Order matters: each UMD bundle reads the globals defined by the previous ones
# (React -> ReactDOM -> GraphiQL -> GraphiQLPluginExplorer).
_SCRIPTS: Final[tuple[str, ...]] = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
)

_DEFAULT_QUERY: Final[str] = (
    "# Shopfront GraphQL explorer\n"
    "#\n"
    "# Ctrl-Enter runs the operation. The sidebar holds the docs\n"
    "# and the query builder; subscriptions run over WebSocket.\n"
    "\n"
    "{\n"
    "  products(first: 3) {\n"
    "    edges {\n"
    "      node {\n"
    "        sku\n"
    "        name\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n"
)

_PAGE_TEMPLATE: Final[str] = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Shopfront GraphiQL</title>
<link rel="icon" href="data:,">
__STYLESHEETS__
<style>
  html, body { height: 100%; margin: 0; overflow: hidden; }
  #graphiql { height: 100vh; }
  #graphiql > .loading { font-family: sans-serif; padding: 2rem; }
</style>
</head>
<body>
<div id="graphiql"><div class="loading">Loading&hellip;</div></div>
__SCRIPTS__
<script>
(function () {
  "use strict";
  var defaultHeaders = __DEFAULT_HEADERS__;
  var defaultQuery = __DEFAULT_QUERY__;
  var wsScheme = location.protocol === "https:" ? "wss" : "ws";
  // createFetcher sends the parsed headers-editor object with every HTTP
  // request, and for subscriptions opens a graphql-transport-ws connection
  // whose connection_init payload is that same object.
  var fetcher = GraphiQL.createFetcher({
    url: location.origin + "/graphql",
    subscriptionUrl: wsScheme + "://" + location.host + "/graphql"
  });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();
  var props = {
    fetcher: fetcher,
    plugins: [explorer],
    defaultQuery: defaultQuery
  };
  if (defaultHeaders !== null) {
    props.defaultHeaders = defaultHeaders;
    props.headers = defaultHeaders;
    props.defaultEditorToolsVisibility = "headers";
  }
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, props)
  );
})();
</script>
</body>
</html>
"""


def _js_literal(value: str | None) -> str:
    """Encode ``value`` as a JavaScript literal safe inside an inline <script>.

    ``json.dumps`` (ASCII-only, so U+2028/U+2029 are escaped too) yields a valid
    JS string literal; ``<``, ``>`` and ``&`` are then written as ``\\u`` escapes
    so the text can never close the script element or open an HTML comment.
    """
    return (
        json.dumps(value, ensure_ascii=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def render_page(*, default_headers: str | None) -> str:
    """Return the complete GraphiQL HTML page.

    ``default_headers`` is JSON text (an object such as
    ``'{"Authorization": "Bearer ..."}'``) that pre-fills the headers editor;
    ``None`` leaves it empty.  Raises ``ValueError`` if it is not a JSON object.
    """
    if default_headers is not None:
        try:
            parsed: object = json.loads(default_headers)
        except ValueError as exc:
            raise ValueError(f"default_headers is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ValueError("default_headers must be a JSON object")
    stylesheets = "\n".join(
        f'<link rel="stylesheet" href="{STATIC_PREFIX}/{name}">' for name in _STYLESHEETS
    )
    scripts = "\n".join(f'<script src="{STATIC_PREFIX}/{name}"></script>' for name in _SCRIPTS)
    return (
        _PAGE_TEMPLATE.replace("__STYLESHEETS__", stylesheets)
        .replace("__SCRIPTS__", scripts)
        .replace("__DEFAULT_QUERY__", _js_literal(_DEFAULT_QUERY))
        .replace("__DEFAULT_HEADERS__", _js_literal(default_headers))
    )


def static_app() -> StaticFiles:
    """ASGI app serving :data:`STATIC_DIR`; mount it at :data:`STATIC_PREFIX`."""
    return StaticFiles(directory=STATIC_DIR)
