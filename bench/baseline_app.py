"""The baselines of the read figures: plain Starlette routes that answer the bench's
read requests with the same JSON as the GraphQL endpoint, from the same read tables of the
same database file, through the same async engine (SQLAlchemy + aiosqlite, same pool and
pragmas). Same request bytes in, same ``data`` out; what is left out is GraphQL itself
(parse, validate, execute, resolvers) and the app's middleware.

Two kinds of route per screen:

* plain (``/my-orders``, ``/my-orders-flat``, ``/product``, ``/products``, ``/order``):
  checks the token as the server does (HS256 JWT) where the screen needs a caller, and
  answers ``extensions.readModel`` as well (its position read once at start-up: the
  server keeps it in memory too);
* bare (``/bare/...``): no token (the customer is a variable), no extensions: the
  physical limit of this stack (Starlette + uvicorn + SQLAlchemy/aiosqlite + orjson).

Run by the bench as ``uvicorn bench.baseline_app:app`` (one worker), configured from
BENCH_READ_DATABASE_URL and BENCH_JWT_SECRET.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import jwt
import orjson
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.database import create_engine
from bench.screens import (
    PAGE,
    my_orders_data,
    my_orders_flat_data,
    order_data,
    product_data,
    products_data,
)

READ_URL = os.environ.get("BENCH_READ_DATABASE_URL", "sqlite+aiosqlite:///var/read.db")
SECRET = os.environ.get("BENCH_JWT_SECRET", "")
engine = create_engine(READ_URL, "read")

HISTORY = sa.text(
    "SELECT doc FROM order_history WHERE customer_id = :customer_id "
    "ORDER BY sort_key DESC LIMIT :limit"
)
PRODUCT_COLUMNS = "product_id, sku, name, description, price_cents, currency, stock_available"
PRODUCT = sa.text(f"SELECT {PRODUCT_COLUMNS} FROM catalog_products WHERE sku = :sku")
PRODUCTS = sa.text(
    f"SELECT {PRODUCT_COLUMNS} FROM catalog_products ORDER BY name, product_id LIMIT :limit"
)
ORDER = sa.text("SELECT doc FROM order_detail WHERE order_id = :order_id")
POSITION = sa.text("SELECT min(position) FROM projection_checkpoints")
Json = dict[str, Any]
Screen = Callable[[Json, str | None], Awaitable[Json]]
read_model: Json = {"position": 0, "lagMs": 0.0}


def _json(data: Json, status: int = 200) -> Response:
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


async def _rows(statement: sa.TextClause, params: Json) -> Sequence[Mapping[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(statement, params)).mappings().all()
    return cast("Sequence[Mapping[str, Any]]", rows)  # RowMappings: read-only mappings


async def _history(variables: Json, customer_id: str | None) -> list[Json]:
    first = int(variables.get("first", PAGE))
    rows = await _rows(HISTORY, {"customer_id": customer_id, "limit": first + 1})
    return [orjson.loads(row["doc"]) for row in rows]


async def _my_orders(variables: Json, customer_id: str | None) -> Json:
    return my_orders_data(await _history(variables, customer_id), int(variables["first"]))


async def _my_orders_flat(variables: Json, customer_id: str | None) -> Json:
    return my_orders_flat_data(await _history(variables, customer_id), int(variables["first"]))


async def _product(variables: Json, customer_id: str | None) -> Json:
    rows = await _rows(PRODUCT, {"sku": variables["sku"]})
    return product_data(rows[0] if rows else None)


async def _products(variables: Json, customer_id: str | None) -> Json:
    first = int(variables["first"])
    return products_data(await _rows(PRODUCTS, {"limit": first + 1}), first)


async def _order(variables: Json, customer_id: str | None) -> Json:
    raw = base64.urlsafe_b64decode(variables["id"] + "==").decode().partition(":")[2]
    rows = await _rows(ORDER, {"order_id": raw})
    doc = orjson.loads(rows[0]["doc"]) if rows else None
    if doc is not None and customer_id is not None and doc["customer_id"] != customer_id:
        doc = None  # someone else's order looks missing
    return order_data(doc)


def _plain(screen: Screen, *, signed_in: bool) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        params = orjson.loads(await request.body())
        customer_id = _customer(request) if signed_in else None
        if signed_in and customer_id is None:
            return _json({"errors": [{"message": "Sign in"}]}, 401)
        data = await screen(params.get("variables", {}), customer_id)
        return _json({"data": data, "extensions": {"readModel": read_model}})

    return route


def _bare(screen: Screen) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        variables = orjson.loads(await request.body()).get("variables", {})
        return _json({"data": await screen(variables, variables.get("customer"))})

    return route


SCREENS: dict[str, tuple[Screen, bool]] = {
    "my-orders": (_my_orders, True),
    "my-orders-flat": (_my_orders_flat, True),
    "product": (_product, False),
    "products": (_products, False),
    "order": (_order, True),
}


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with engine.connect() as conn:
        read_model["position"] = (await conn.execute(POSITION)).scalar() or 0
    try:
        yield
    finally:
        await engine.dispose()


app = Starlette(
    routes=[
        *(
            Route(f"/{name}", _plain(screen, signed_in=signed_in), methods=["POST"])
            for name, (screen, signed_in) in SCREENS.items()
        ),
        *(
            Route(f"/bare/{name}", _bare(screen), methods=["POST"])
            for name, (screen, _) in SCREENS.items()
        ),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
