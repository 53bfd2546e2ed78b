"""The baseline of the read figures: plain Starlette routes that answer the bench's
MyOrders and Product requests with the same JSON ``data`` as the GraphQL endpoint, from
the same read tables of the same database file, through the same async engine (SQLAlchemy
+ aiosqlite, same pool and pragmas). Same request bytes in, same ``data`` out; what is
left out is GraphQL itself (parse, validate, execute, resolvers) and the app's middleware.

Run by the bench as ``uvicorn bench.baseline_app:app`` (one worker), configured from
BENCH_READ_DATABASE_URL and BENCH_JWT_SECRET.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import jwt
import orjson
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.database import create_engine
from bench.screens import PAGE, my_orders_data, product_data

READ_URL = os.environ.get("BENCH_READ_DATABASE_URL", "sqlite+aiosqlite:///var/read.db")
SECRET = os.environ.get("BENCH_JWT_SECRET", "")
engine = create_engine(READ_URL, "read")

HISTORY = sa.text(
    "SELECT doc FROM order_history WHERE customer_id = :customer_id "
    "ORDER BY sort_key DESC LIMIT :limit"
)
PRODUCT = sa.text(
    "SELECT product_id, sku, name, description, price_cents, currency, stock_available "
    "FROM catalog_products WHERE sku = :sku"
)


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def _customer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], options={"require": ["sub", "role", "exp"]}
        )
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) and claims.get("role") == "customer" else None


async def my_orders(request: Request) -> Response:
    params = orjson.loads(await request.body())
    customer_id = _customer(request)
    if customer_id is None:
        return _json({"errors": [{"message": "Sign in"}]}, 401)
    first = int(params.get("variables", {}).get("first", PAGE))
    async with engine.connect() as conn:
        rows = (await conn.execute(HISTORY, {"customer_id": customer_id, "limit": first + 1})).all()
    return _json({"data": my_orders_data([orjson.loads(row.doc) for row in rows], first)})


async def product(request: Request) -> Response:
    params = orjson.loads(await request.body())
    sku = params["variables"]["sku"]
    async with engine.connect() as conn:
        row = (await conn.execute(PRODUCT, {"sku": sku})).mappings().first()
    return _json({"data": product_data(None if row is None else dict(row))})


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await engine.dispose()


app = Starlette(
    routes=[
        Route("/my-orders", my_orders, methods=["POST"]),
        Route("/product", product, methods=["POST"]),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
