"""Shared by the reliability tests (crash safety, exactly-once, races, poison events,
rebuilds, idempotency, resumable subscriptions, event evolution): tokens, a dedicated
server process on its own SQLite files that a test may kill and restart, raw access to
those files, the CLI, and row-for-row comparisons of read tables.

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import psycopg
from sqlalchemy.engine import make_url

from api.auth import make_token
from api.database import create_sync_engine
from api.graphql.staff.queries import TOP_PRODUCTS
from projections.engine.read_side import ReadSide as ProjectionRunner
from projections.registry import PROJECTORS
from tests.conftest import ROOT, TEST_SECRET, free_port, fresh_url, start_server, stop_server
from tests.e2e.client import bearer

TOKEN_TTL = dt.timedelta(hours=1)
CLI_TIMEOUT = 30.0
# How long a connection waits for the server's locks: ``connect`` and the helpers on it
# wait LOCK_WAIT unless told otherwise; the crash-safety and plain-HTTP tests read with
# READ_WAIT.
LOCK_WAIT = 20.0
READ_WAIT = 30.0
JSON_COLUMNS = frozenset({"doc"})
# Never compared: the migration marker, the checkpoints (a rebuild rewinds them) and who
# leads the projectors.
NOT_COMPARED = frozenset({"alembic_version", "projection_checkpoints", "projection_leader"})
# Not screens: NOT_COMPARED and the parked events (compared separately where they matter,
# or kept in the snapshot with ``with_dead_letters=True``).
NOT_READ_MODELS = NOT_COMPARED | {"projection_dead_letters"}

Json = dict[str, Any]
Row = dict[str, Any]
Snapshot = dict[str, list[Row]]


# -- identities ---------------------------------------------------------------------------
def staff_token(sub: str = "staff-reliability") -> str:
    return make_token(TEST_SECRET, sub, "staff", TOKEN_TTL)


def customer_token(customer_id: str) -> str:
    return make_token(TEST_SECRET, customer_id, "customer", TOKEN_TTL)


# -- the databases, raw -----------------------------------------------------------------
# A database as the tests name it: the file of a SQLite database, or a PostgreSQL URL.
Db = Path | str


def database_of(url: str) -> Db:
    """The file behind a ``sqlite+aiosqlite:///...`` URL; a PostgreSQL URL as it is."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    assert parsed.database, url
    return Path(parsed.database)


def _pg_row(cursor: Any) -> Any:
    """Rows that answer by position and by column name, as ``sqlite3.Row`` does."""
    names = [column.name for column in cursor.description or ()]

    def make(values: Sequence[Any]) -> _Row:
        return _Row(names, values)

    return make


class _Row(tuple[Any, ...]):
    _names: list[str]

    def __new__(cls, names: list[str], values: Sequence[Any]) -> _Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return self._names


class _PgConnection:
    """A psycopg connection that takes the tests' SQLite-flavoured statements: ``?``
    placeholders, ``BEGIN IMMEDIATE`` (PostgreSQL locks rows, not the database)."""

    def __init__(self, url: str, timeout: float) -> None:
        target = make_url(url).set(drivername="postgresql")
        self._conn = psycopg.connect(
            target.render_as_string(hide_password=False),
            autocommit=True,
            row_factory=_pg_row,
            options=f"-c lock_timeout={int(timeout * 1000)}",
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if sql.strip() == "BEGIN IMMEDIATE":
            sql = "BEGIN"
        sql = sql.replace("%", "%%").replace("?", "%s")
        return self._conn.execute(sql, tuple(params))

    def close(self) -> None:
        self._conn.close()


def connect(path: Db, *, timeout: float = LOCK_WAIT) -> Any:
    """A plain connection that waits (bounded) for the server's locks; autocommit, so
    ``BEGIN IMMEDIATE`` is the caller's to issue. (WAL: a SELECT sees every transaction
    the server committed.) Rows answer by position and by name."""
    if isinstance(path, str):
        return _PgConnection(path, timeout)
    assert path.exists(), path
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def query_rows(
    path: Db, sql: str, params: tuple[Any, ...] = (), *, timeout: float = LOCK_WAIT
) -> list[Row]:
    with contextlib.closing(connect(path, timeout=timeout)) as conn:
        return [dict(row) for row in conn.execute(sql, params)]


def scalar(path: Db, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with contextlib.closing(connect(path)) as conn:
        row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def table_names(path: Db, *, timeout: float = LOCK_WAIT) -> list[str]:
    """The tables of a database (SQLite's own left out)."""
    if isinstance(path, str):
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return sorted(str(row[0]) for row in query_rows_raw(path, sql, timeout=timeout))


def query_rows_raw(path: Db, sql: str, *, timeout: float = LOCK_WAIT) -> list[tuple[Any, ...]]:
    with contextlib.closing(connect(path, timeout=timeout)) as conn:
        return [tuple(row) for row in conn.execute(sql)]


@dataclasses.dataclass(frozen=True)
class RawEvent:
    """An event row as a buggy or older writer might have stored it."""

    stream_id: str
    stream_version: int
    type: str
    payload: Json
    schema_version: int = 1


def append_raw_events(
    write_db: Db, raw: Sequence[RawEvent], extra_sql: Sequence[tuple[str, tuple[Any, ...]]] = ()
) -> list[int]:
    """Append events straight into the event log the way ``domain.event_log.append``
    does (head counter bumped in the same transaction: no gap), plus any write-model
    statements, all in one ``BEGIN IMMEDIATE`` transaction. Returns their positions."""
    now: object = dt.datetime.now(dt.UTC)
    if isinstance(write_db, Path):
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it
    with contextlib.closing(connect(write_db)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "UPDATE event_log_head SET position = position + ? WHERE id = 1", (len(raw),)
            )
            (last,) = conn.execute("SELECT position FROM event_log_head WHERE id = 1").fetchone()
            first = int(last) - len(raw) + 1
            for index, event in enumerate(raw):
                conn.execute(
                    "INSERT INTO events (position, stream_id, stream_version, type, "
                    "schema_version, payload, occurred_at, command_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        first + index,
                        event.stream_id,
                        event.stream_version,
                        event.type,
                        event.schema_version,
                        orjson.dumps(event.payload).decode(),
                        now,
                        f"raw-{first + index}",
                    ),
                )
            for sql, params in extra_sql:
                conn.execute(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return list(range(first, first + len(raw)))


def read_snapshot(
    path: Db, *, with_dead_letters: bool = False, timeout: float = LOCK_WAIT
) -> Snapshot:
    """Every row of every read table (all but NOT_READ_MODELS; with ``with_dead_letters``
    all but NOT_COMPARED), JSON documents parsed, rows in a canonical order: equal
    snapshots mean equal tables, row for row."""
    skip = NOT_COMPARED if with_dead_letters else NOT_READ_MODELS
    result: Snapshot = {}
    tables = table_names(path, timeout=timeout)
    with contextlib.closing(connect(path, timeout=timeout)) as conn:
        for table in tables:
            if table in skip:
                continue
            rows = [
                {
                    key: json.loads(value)
                    if key in JSON_COLUMNS and isinstance(value, str)
                    else value
                    for key, value in dict(row).items()
                }
                for row in conn.execute(f'SELECT * FROM "{table}"')
            ]
            rows.sort(key=lambda row: json.dumps(row, sort_keys=True, default=str))
            result[table] = rows
    return result


async def replay_snapshot(
    template_dir: Path,
    target: Path,
    write_url: str,
    *,
    batch_size: int | None = 2000,
    with_dead_letters: bool = False,
    timeout: float = LOCK_WAIT,
) -> Snapshot:
    """Project the whole event log from scratch, in this process, into a fresh copy of the
    migrated read database (``target``/read.db on SQLite); returns its snapshot (``read_snapshot``
    with ``with_dead_letters`` and ``timeout``). ``batch_size=None``: the runner's own."""
    read_url = await asyncio.to_thread(fresh_url, template_dir, target, "read")
    log = create_sync_engine(write_url, "log")
    read = create_sync_engine(read_url, "projector")
    runner = (
        ProjectionRunner(log, read, PROJECTORS)
        if batch_size is None
        else ProjectionRunner(log, read, PROJECTORS, batch_size=batch_size)
    )
    try:
        await runner.catch_up(timeout=30)
        assert not runner.errors, runner.errors
    finally:
        runner.close()
        log.dispose()
        read.dispose()
    return await asyncio.to_thread(
        read_snapshot, database_of(read_url), with_dead_letters=with_dead_letters, timeout=timeout
    )


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a database with its WAL files, so the copy holds every committed write."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")


def assert_same_tables(live: Snapshot, rebuilt: Snapshot) -> int:
    """Equal row for row; returns how many rows were compared."""
    assert live.keys() == rebuilt.keys(), (sorted(live), sorted(rebuilt))
    for name in sorted(rebuilt):
        got, want = live[name], rebuilt[name]
        assert len(got) == len(want), f"{name}: {len(got)} rows live, {len(want)} rebuilt"
        for got_row, want_row in zip(got, want, strict=True):
            assert got_row == want_row, f"{name} differs from the rebuild:\n{got_row}\n{want_row}"
    return sum(len(rows) for rows in rebuilt.values())


# -- the write model's own figures ---------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ExpectedDashboard:
    order_count: int
    revenue_cents: int
    by_status: dict[str, int]
    units: dict[str, int]  # sku -> units sold (paid, not refunded)
    product_revenue: dict[str, int]


def expected_dashboard(write_db: Db) -> ExpectedDashboard:
    """The sales dashboard computed from the write model alone."""
    by_status = {
        row["status"]: row["n"]
        for row in query_rows(write_db, "SELECT status, count(*) AS n FROM orders GROUP BY status")
    }
    sold = query_rows(
        write_db,
        "SELECT l.sku, sum(l.quantity) AS units, sum(l.quantity * l.unit_price_cents) AS cents "
        "FROM order_lines l JOIN payments p ON p.order_id = l.order_id "
        "WHERE p.status = 'PAID' GROUP BY l.sku",
    )
    return ExpectedDashboard(
        order_count=int(scalar(write_db, "SELECT count(*) FROM orders")),
        revenue_cents=int(
            scalar(
                write_db,
                "SELECT coalesce(sum(amount_cents), 0) FROM payments WHERE status = 'PAID'",
            )
        ),
        by_status=by_status,
        units={row["sku"]: int(row["units"]) for row in sold},
        product_revenue={row["sku"]: int(row["cents"]) for row in sold},
    )


DASHBOARD = """{ salesDashboard { orderCount revenueCents ordersByStatus { status count }
  topProducts { sku name unitsSold revenueCents } } }"""


def assert_dashboard_exact(dashboard: Json, expected: ExpectedDashboard) -> None:
    assert dashboard["orderCount"] == expected.order_count, (dashboard, expected)
    assert dashboard["revenueCents"] == expected.revenue_cents, (dashboard, expected)
    shown = {s["status"]: s["count"] for s in dashboard["ordersByStatus"] if s["count"]}
    assert shown == expected.by_status, (dashboard["ordersByStatus"], expected.by_status)
    assert sum(s["count"] for s in dashboard["ordersByStatus"]) == expected.order_count
    top = {p["sku"]: p for p in dashboard["topProducts"]}
    for sku, product in top.items():
        assert product["unitsSold"] == expected.units.get(sku, 0), (product, expected.units)
        assert product["revenueCents"] == expected.product_revenue.get(sku, 0), product
    # The best sellers, as many as the screen shows (TOP_PRODUCTS), none left out.
    selling = {sku for sku, units in expected.units.items() if units}
    assert len(top) == min(TOP_PRODUCTS, len(selling)), (sorted(top), sorted(selling))
    if selling - set(top):
        best_left_out = max(expected.units[sku] for sku in selling - set(top))
        assert min(p["unitsSold"] for p in top.values()) >= best_left_out, top


# -- a server of our own ------------------------------------------------------------------
@dataclasses.dataclass
class Server:
    """``shopfront serve`` as a child process on given database files (via ``env``)."""

    env: dict[str, str]
    log: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_db(self) -> Db:
        return database_of(self.env["SHOPFRONT_WRITE_DATABASE_URL"])

    @property
    def read_db(self) -> Db:
        return database_of(self.env["SHOPFRONT_READ_DATABASE_URL"])

    async def start(self, **extra_env: str) -> None:
        """Start on a new free port; returns once /readyz says ready."""
        assert self.process is None or self.process.poll() is not None
        self.port = free_port()
        env = {**self.env, **extra_env}
        self.process = await asyncio.to_thread(start_server, env, self.port, self.log)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            await asyncio.to_thread(stop_server, self.process)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10, trust_env=False)


async def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m api ...`` with the server's settings; bounded in time."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api", *args],
        cwd=ROOT,
        env={**env, "COLUMNS": "250", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


def cli_output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"


# -- GraphQL over HTTP ----------------------------------------------------------------------
async def execute(
    http: httpx.AsyncClient, query: str, variables: Json | None = None, token: str | None = None
) -> Json:
    """One GraphQL request; HTTP 200 and a JSON body with no stack trace. Returns the body."""
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=bearer(token)
    )
    assert response.status_code == 200, (response.status_code, response.text[:2000])
    assert "Traceback" not in response.text, response.text[:2000]
    return cast(Json, response.json())


async def graphql(
    http: httpx.AsyncClient, query: str, variables: Json | None = None, token: str | None = None
) -> Json:
    """One GraphQL request that must succeed (no errors); returns ``data``."""
    body = await execute(http, query, variables, token)
    assert not body.get("errors"), body["errors"]
    return cast(Json, body["data"])


PROJECTIONS = """{ projections { name position headPosition lag state deadLetters
  parkedEvents { position streamId eventType error } } }"""


async def projections(http: httpx.AsyncClient, token: str) -> list[Json]:
    return cast(list[Json], (await graphql(http, PROJECTIONS, token=token))["projections"])


async def wait_caught_up(
    http: httpx.AsyncClient, token: str, timeout: float = 15.0, *, never_in_error: bool = False
) -> list[Json]:
    """Poll the staff ``projections`` query until every projection has lag 0.

    By default every projection must then be ``running``. With ``never_in_error`` (after
    a crash) no poll may show a projection in state ``error``, and the caught-up states
    are returned whatever else they say."""
    deadline = time.monotonic() + timeout
    while True:
        states = await projections(http, token)
        assert states, "no projections reported"
        if never_in_error:
            assert all(s["state"] != "error" for s in states), states
        if all(s["lag"] == 0 and s["position"] == s["headPosition"] for s in states):
            if not never_in_error:
                assert all(s["state"] == "running" for s in states), states
            return states
        assert time.monotonic() < deadline, f"projections did not catch up: {states}"
        await asyncio.sleep(0.1)


ORDER = """id status version totalCents itemCount
  lines { sku quantity unitPriceCents }
  payment { status amountCents } shipment { carrier trackingNumber status }"""
REGISTER = """mutation($input: RegisterCustomerInput!) {
  registerCustomer(input: $input) { token customer { id } userErrors { code message } } }"""
ADD_PRODUCT = """mutation($input: AddProductInput!) {
  addProduct(input: $input) { product { sku priceCents currency stockAvailable }
  userErrors { code message } } }"""
PLACE = f"""mutation($input: PlaceOrderInput!) {{
  placeOrder(input: $input) {{ order {{ {ORDER} }} userErrors {{ field code message }} }} }}"""
PAY = f"""mutation($input: PayOrderInput!) {{
  payOrder(input: $input) {{ order {{ {ORDER} }} userErrors {{ field code message }} }} }}"""
CANCEL = f"""mutation($input: CancelOrderInput!) {{
  cancelOrder(input: $input) {{ order {{ {ORDER} }} userErrors {{ field code message }} }} }}"""
SHIP = f"""mutation($input: ShipOrderInput!) {{
  shipOrder(input: $input) {{ order {{ {ORDER} }} userErrors {{ field code message }} }} }}"""
DELIVER = f"""mutation($input: DeliverOrderInput!) {{
  deliverOrder(input: $input) {{ order {{ {ORDER} }} userErrors {{ field code message }} }} }}"""
GET_ORDER = f"query($id: ID!) {{ order(id: $id) {{ {ORDER} }} }}"


async def register(http: httpx.AsyncClient, name: str) -> tuple[str, str]:
    """A new customer: (token, global id)."""
    email = f"{name.lower().replace(' ', '-')}-{time.time_ns()}@example.com"
    data = await graphql(http, REGISTER, {"input": {"email": email, "name": name}})
    payload = data["registerCustomer"]
    assert payload["userErrors"] == [], payload
    return str(payload["token"]), str(payload["customer"]["id"])


async def add_product(
    http: httpx.AsyncClient, staff: str, sku: str, price_cents: int, stock: int
) -> Json:
    data = await graphql(
        http,
        ADD_PRODUCT,
        {
            "input": {
                "sku": sku,
                "name": f"Product {sku}",
                "priceCents": price_cents,
                "stock": stock,
                "description": "made by a pipeline test",
            }
        },
        staff,
    )
    payload = data["addProduct"]
    assert payload["userErrors"] == [], payload
    return cast(Json, payload["product"])


async def mutate(
    http: httpx.AsyncClient, mutation: str, field: str, input: Json, token: str
) -> Json:
    """An order mutation that must succeed and read its order back; returns the order."""
    payload = (await graphql(http, mutation, {"input": input}, token))[field]
    assert payload["userErrors"] == [], payload
    assert payload["order"] is not None, f"{field} acknowledged without its order: {payload}"
    return cast(Json, payload["order"])


async def place(
    http: httpx.AsyncClient, token: str, lines: dict[str, int], key: str | None = None
) -> Json:
    order_lines = [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()]
    return await mutate(
        http, PLACE, "placeOrder", {"lines": order_lines, "idempotencyKey": key}, token
    )


def event_counts(write_db: Db, stream_id: str) -> Counter[str]:
    return Counter(
        row["type"]
        for row in query_rows(write_db, "SELECT type FROM events WHERE stream_id = ?", (stream_id,))
    )


def env_without_fault_injection(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "SHOPFRONT_TEST_CRASH_BEFORE_COMMIT"}
