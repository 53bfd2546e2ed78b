"""build_app(settings) -> Starlette. The lifespan starts engines, projector runner and bus."""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import logging
from collections.abc import AsyncIterator

import orjson
import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from api.bootstrap import Services
from api.cli.seeding import DEMO_EMAIL
from api.examples import example_routes
from api.graphiql import STATIC_PREFIX, static_app
from api.graphql.compiled import CompiledReads
from api.graphql.limits import Limits
from api.graphql.schema import build_schema
from api.http.request import wants_html
from api.http.view import graphiql_response, graphql_http
from api.middleware.edge import Edge
from api.middleware.metrics import Metrics, RequestCounts
from api.middleware.origins import Cors
from api.middleware.security import RateGate
from api.settings import Settings
from api.ws.view import WebSocketGraphQL
from projections.screens import customer_profile

log = logging.getLogger("shopfront")
GRAPHIQL_TOKEN_TTL = dt.timedelta(hours=12)


def build_app(settings: Settings) -> Starlette:
    problem = settings.startup_problem()
    if problem is not None:
        raise RuntimeError(problem)
    services = Services.create(settings)
    schema = build_schema(
        introspection=settings.is_dev,
        expose_internal=settings.is_dev,
        limits=Limits(max_query_bytes=settings.max_query_bytes),
    )
    compiled = CompiledReads(
        schema, enabled=settings.compiled_reads, mutations=settings.compiled_mutations
    )
    metrics = Metrics(services, compiled)
    websocket_app = WebSocketGraphQL(schema, services)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.uses_dev_secret:
            log.warning("SHOPFRONT_JWT_SECRET is not set: using the dev-only secret")
        await services.start()
        try:
            yield
        finally:
            await services.close()

    async def graphql(request: Request) -> Response:
        if request.method == "OPTIONS":
            # Not a CORS preflight (Cors answers those): what this path accepts.
            return Response(status_code=204, headers={"Allow": "GET, HEAD, POST, OPTIONS"})
        if request.method == "GET" and settings.is_dev and wants_html(request):
            return graphiql_response(await _demo_headers(services))
        return await graphql_http(request, services)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problems = []
        try:
            await services.runner.head_position()  # the write database, from a worker
        except Exception as error:  # report any failure as not ready
            problems.append(f"write database: {type(error).__name__}")
        try:
            async with services.read_engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception as error:
            problems.append(f"read database: {type(error).__name__}")
        if not services.runner.running:
            problems.append("projection runner not running")
        # The change bus never makes a process unready: without it changes still arrive,
        # by poll ("degraded"); the body says so for people and dashboards.
        bus = services.bus_state
        body: dict[str, object] = {"status": "ready", "bus": bus}
        if bus == "degraded" and services.redis is not None:
            body["warnings"] = [
                f"bus degraded: Redis unavailable ({services.redis.problem}); other "
                "processes' changes arrive by poll, persisted queries and rate limits are "
                "per process"
            ]
        if problems:
            return JSONResponse({**body, "status": "unavailable", "problems": problems}, 503)
        return JSONResponse(body)

    async def metrics_endpoint(request: Request) -> Response:
        if not _may_see_metrics(settings, request):
            return PlainTextResponse("Not Found", 404)  # as for any unknown path
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST", "OPTIONS"]),
            WebSocketRoute("/graphql", websocket_app),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Mount(STATIC_PREFIX, app=static_app(), name="graphiql-static"),
            *(example_routes(lambda: _demo_token(services)) if settings.is_dev else []),
        ],
        middleware=_middleware(settings, services, metrics),
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.schema = schema
    app.state.compiled = compiled
    return app


def create_app() -> Starlette:
    """The app of one worker of ``shopfront serve --workers N`` (uvicorn's factory): its
    settings from the environment, as the parent process checked them."""
    import gc

    from api.logs import configure

    settings = Settings()
    configure(json_logs=not settings.is_dev, level=settings.log_level)
    if settings.gc_young_threshold:  # as ``shopfront serve`` does for a single process
        gc.set_threshold(settings.gc_young_threshold, *gc.get_threshold()[1:])
    return build_app(settings)


def _middleware(settings: Settings, services: Services, metrics: Metrics) -> list[Middleware]:
    """One middleware (api/middleware/edge.py) in front of every route: request id,
    metrics, security headers, header and body limits, CORS and rate limits in one frame."""
    return [
        Middleware(
            Edge,
            counts=RequestCounts(metrics),
            cors=Cors(_no_app, settings),
            rate_gate=RateGate(services.authenticator, services.rate_limits),
            max_header_bytes=settings.max_header_bytes,
            body_read_timeout=settings.body_read_timeout,
        )
    ]


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind ``Cors``, which the edge uses for its rules only, never as a layer."""
    raise RuntimeError("Cors is not a layer of its own here")


def _may_see_metrics(settings: Settings, request: Request) -> bool:
    """/metrics with SHOPFRONT_METRICS_TOKEN set: to that bearer only; without it: to
    anyone in dev, to nobody in prod (they show the traffic and the event log's size)."""
    if settings.metrics_token is None:
        return settings.is_dev
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), settings.metrics_token.encode()
    )


async def _demo_token(services: Services) -> str | None:
    """Dev mode: a token of the demo customer (None without a seeded demo shop)."""
    row = await customer_profile.customer_by_email(services.read_engine, DEMO_EMAIL)
    if row is None:
        return None
    return services.authenticator.sign(row.customer_id, "customer", GRAPHIQL_TOKEN_TTL)


async def _demo_headers(services: Services) -> str | None:
    """Dev mode: GraphiQL opens with the demo customer's token in the headers editor."""
    token = await _demo_token(services)
    if token is None:
        return None
    return orjson.dumps({"Authorization": f"Bearer {token}"}, option=orjson.OPT_INDENT_2).decode()
