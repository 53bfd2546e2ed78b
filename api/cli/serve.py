"""`shopfront serve`: GraphQL over HTTP and WebSocket, under uvicorn."""

from __future__ import annotations

import gc
import ipaddress
from typing import Annotated, Any

import typer

from api.cli.common import console
from api.settings import Settings


def tune_garbage_collector(young_threshold: int) -> None:
    """A server's young garbage collections every ``young_threshold`` allocations (0:
    Python's default): a request allocates a few thousand objects that die with it, and a
    young collection every 700 allocations also walks those still in use."""
    if young_threshold:
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def exposed_dev_secret(settings: Settings, host: str) -> str | None:
    """Why serving on ``host`` with these settings would hand out staff access: the
    dev-only secret is in the repository, so anyone who can reach the server can sign
    their own staff token. Fine on loopback (``make run``), refused elsewhere."""
    if not settings.uses_dev_secret or is_loopback(host):
        return None
    return (
        f"listening on {host} with the dev-only JWT secret, which is public: anyone who "
        "can reach this address could sign a staff token. Set SHOPFRONT_JWT_SECRET "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'), or listen "
        "on 127.0.0.1"
    )


def databases_problem(settings: Settings) -> str | None:
    """Why the databases cannot be used (a malformed URL, a server that does not answer),
    found before serving rather than by every request."""
    from api.database import Pool, unreachable

    pool = Pool(size=1, max_overflow=0, connect_timeout=5.0)
    return unreachable(settings.write_database_url, "write", pool) or unreachable(
        settings.read_database_url, "read", pool
    )


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes sharing the port (each an ordinary one)")
    ] = 1,
) -> None:
    """Serve GraphQL (and GraphiQL in dev) over HTTP and WebSocket."""
    import uvicorn
    from starlette.applications import Starlette

    from api.app import build_app
    from api.cli.workers import port_problem, run_workers
    from api.logs import configure

    settings = Settings()
    host, port = host or settings.host, port or settings.port
    configure(json_logs=not settings.is_dev, level=settings.log_level)
    app: Starlette | str
    try:
        problem = (
            exposed_dev_secret(settings, host)
            or settings.startup_problem()
            or databases_problem(settings)
        )
        if problem is None and workers > 1:
            problem = port_problem(host, port)
        if problem is not None:
            raise RuntimeError(problem)
        # Several workers: each process builds its own app from the environment.
        app = build_app(settings) if workers == 1 else "api.app:create_app"
    except (RuntimeError, ValueError) as error:
        console.print(f"[red]Refusing to start:[/red] {error}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"Shopfront on http://{host}:{port}/graphql ({settings.env})")
    tune_garbage_collector(settings.gc_young_threshold)
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        log_level=settings.log_level,
        log_config=None,
        access_log=settings.is_dev,
        ws_per_message_deflate=settings.websocket_compression,
        ws_max_size=settings.websocket_max_message_bytes,
        limit_concurrency=settings.limit_concurrency or None,
        timeout_keep_alive=settings.keep_alive_timeout,
        # h11's limit on a request's head (httptools has none: see api/middleware/edge.py).
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # X-Forwarded-For rewrites the client address only from the proxies named.
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips or "",
    )
    if isinstance(app, str):
        run_workers(app, workers, **options)  # one listening socket per worker
    else:
        uvicorn.run(app, **options)
