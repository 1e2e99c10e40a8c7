"""Change data capture as production runs it: DMS reads a `test_decoding` slot and applies
the task's table mappings (deploy/ze_infra/analytics_tables.py `table_mappings`). Here a
slot of the same plugin is read with `pg_logical_slot_get_changes`, the same rules pick,
rename and trim each change, and the changes are applied as DMS's batch apply does to a
second database that holds the warehouse's tables (deploy/warehouse/migrations/, without
Redshift's distribution clauses and without enforced keys, as in Redshift): an INSERT
appends, an UPDATE deletes the key's rows and inserts the new row, a DELETE deletes them.

A full load is a copy of every selected table, taken after the slot exists; changes made
meanwhile arrive twice, which deploy/warehouse/dedupe.sql then repairs.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from psycopg.types.string import TextLoader

from tests.support.builders import SAO_PAULO, CourierFactory, OrderFactory, order_act, ping
from tests.support.database import database_connect
from tests.support.warehouse import warehouse_users_statements
from tracking.services.ingest import ping_batch_record
from tracking.services.partitions import ping_partition_name, ping_partitions_drop_expired, ping_partitions_ensure

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
from ze_infra import analytics_tables as tables  # noqa: E402  (plain data, no CDK import)

SLOT = "ze_dms_test"
TEXT_OUTPUT = ("uuid", "timestamptz", "jsonb", "float4", "float8", "int2", "int4", "int8", "bool", "numeric")
CHANGE = re.compile(r"^table (\w+)\.(\w+): (INSERT|UPDATE|DELETE): (.*)$")
# name[type]:value, the value quoted ('' inside) or bare (numbers, null, booleans).
COLUMN = re.compile(r"(\w+)\[([^\]]+)\]:('(?:[^']|'')*'|\S+)")
REDSHIFT_ONLY = re.compile(
    r",\s*PRIMARY KEY \([^)]*\)|\bDISTKEY \(\w+\)|\bDISTSTYLE ALL|\b(?:COMPOUND )?SORTKEY \([^)]*\)"
)


def execute(sql: str, params=None, *, dbname: str) -> list[tuple]:
    with database_connect(dbname=dbname, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _like(pattern: str, name: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace("%", ".*"), name) is not None


class Dms:
    """The task's table mappings, applied as DMS applies them."""

    def __init__(self):
        self.rules = tables.table_mappings()["rules"]

    def _rules(self, rule_type: str, action: str, table: str) -> list[dict]:
        return [
            r
            for r in self.rules
            if r["rule-type"] == rule_type
            and r["rule-action"] == action
            and r["object-locator"]["schema-name"] == tables.SCHEMA
            and _like(r["object-locator"]["table-name"], table)
        ]

    def target(self, table: str) -> str | None:
        """The warehouse table a source table lands in, or None when it is not replicated."""
        if not self._rules("selection", "include", table) or self._rules("selection", "exclude", table):
            return None
        renamed = self._rules("transformation", "rename", table)
        return renamed[-1]["value"] if renamed else table

    def columns(self, table: str, row: dict) -> dict:
        removed = {r["object-locator"]["column-name"] for r in self._rules("transformation", "remove-column", table)}
        return {column: value for column, value in row.items() if column not in removed}


class Warehouse:
    """The second database: the warehouse's tables, what DMS would write into them."""

    def __init__(self, *, source: str):
        self.source = source
        self.name = f"{source}_warehouse"
        self.dms = Dms()

    def create(self) -> None:
        execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)", dbname=self.source)
        execute(f"CREATE DATABASE {self.name}", dbname=self.source)
        with database_connect(dbname=self.name) as conn:
            for statement in warehouse_users_statements():
                conn.execute(statement)
            for path in sorted((tables.WAREHOUSE_SQL / "migrations").glob("*.sql")):
                for statement in tables.sql_statements(path=path):
                    conn.execute(REDSHIFT_ONLY.sub("", statement))

    def drop(self) -> None:
        execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)", dbname=self.source)

    def _key(self, table: str) -> list[str]:
        (key,) = execute(
            "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_constraint c "
            "CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
            "WHERE c.conrelid = %s::regclass AND c.contype = 'p'",
            [table],
            dbname=self.source,
        )[0]
        assert key, f"{table} has no primary key: DMS could not apply its updates and deletes"
        return key

    def full_load_read(self) -> list[tuple[str, dict]]:
        """Read every selected table, each partition for the one ping table: (target, row)."""
        names = [
            name
            for (name,) in execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", dbname=self.source)
        ]
        rows = []
        with database_connect(dbname=self.source) as source:
            source.execute("SET TimeZone = 'UTC'")
            for type_name in TEXT_OUTPUT:  # every value as PostgreSQL prints it, as test_decoding does
                source.adapters.register_loader(type_name, TextLoader)
            for table in names:
                if not (into := self.dms.target(table)):
                    continue
                cursor = source.execute(f"SELECT * FROM {table}")
                columns = [c.name for c in cursor.description]
                rows += [(into, self.dms.columns(table, dict(zip(columns, v, strict=True)))) for v in cursor.fetchall()]
        return rows

    def load(self, rows: list[tuple[str, dict]]) -> None:
        with database_connect(dbname=self.name) as target:
            for into, row in rows:
                self._insert(target, into, row)

    def full_load(self) -> None:
        self.load(self.full_load_read())

    def _insert(self, conn: psycopg.Connection, table: str, row: dict) -> None:
        names = ", ".join(row)
        conn.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(row))})", list(row.values()))

    def changes(self) -> list[tuple[str, str, dict]]:
        """Consume the slot: (source table, operation, columns) per change, as test_decoding
        reports them (timestamps in UTC, as DMS writes them)."""
        with database_connect(dbname=self.source, autocommit=True) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            lines = conn.execute(
                "SELECT data FROM pg_logical_slot_get_changes(%s, NULL, NULL, 'include-xids', '0')", [SLOT]
            ).fetchall()
        decoded = []
        for (line,) in lines:
            if not (change := CHANGE.match(line)):
                continue  # BEGIN, COMMIT
            _, table, operation, data = change.groups()
            row = {}
            for name, _type, value in COLUMN.findall(data):
                row[name] = None if value == "null" else value[1:-1].replace("''", "'") if value[0] == "'" else value
            decoded.append((table, operation, row))
        return decoded

    def apply_changes(self) -> list[str]:
        """Apply what the slot holds; return the source tables it came from."""
        seen = []
        with database_connect(dbname=self.name) as conn:
            for table, operation, row in self.changes():
                seen.append(table)
                if not (into := self.dms.target(table)):
                    continue
                row = self.dms.columns(table, row)
                if operation in ("UPDATE", "DELETE"):
                    key = self._key(table)
                    where = " AND ".join(f"{column} = %s" for column in key)
                    conn.execute(f"DELETE FROM {into} WHERE {where}", [row[column] for column in key])
                if operation in ("INSERT", "UPDATE"):
                    self._insert(conn, into, row)
        return seen

    def count(self, table: str, *, where: str = "true", distinct: str = "*") -> int:
        ((n,),) = execute(f"SELECT count({distinct}) FROM {table} WHERE {where}", dbname=self.name)
        return n

    def keys(self, table: str, key: str, *, dbname: str) -> set[str]:
        return {row[0] for row in execute(f"SELECT ({key})::text FROM {table}", dbname=dbname)}

    def dedupe(self) -> None:
        with database_connect(dbname=self.name) as conn:
            for statement in tables.sql_statements(path=tables.WAREHOUSE_SQL / "dedupe.sql"):
                conn.execute(statement)


# Each warehouse table's key, as text, in both databases (pings by courier, time and event).
KEYS = {
    "tracking_ping": "courier_id::text || '/' || event_id::text",
    "orders_order": "id",
    "orders_orderevent": "id",
    "orders_notification": "id",
    "couriers_courier": "id",
    "tracking_orderlastlocation": "order_id",
    "tracking_courierlastlocation": "courier_id",
}


@pytest.fixture
def warehouse(transactional_db):
    """Steps: check the server decodes logically; create the warehouse database; create the
    slot with DMS's plugin (DMS creates its own on the task's first start). Teardown drops
    both."""
    source = connection.settings_dict["NAME"]
    ((wal_level,),) = execute("SHOW wal_level", dbname=source)
    assert wal_level == "logical", "the server needs wal_level=logical (scripts/setup.sh starts it so)"
    warehouse = Warehouse(source=source)
    if execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [SLOT], dbname=source):
        execute("SELECT pg_drop_replication_slot(%s)", [SLOT], dbname=source)  # left by an interrupted run
    warehouse.create()
    execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", [SLOT], dbname=source)
    try:
        yield warehouse
    finally:
        execute("SELECT pg_drop_replication_slot(%s)", [SLOT], dbname=source)
        warehouse.drop()


@pytest.mark.django_db(transaction=True)
def test_pings_orders_and_last_locations_arrive_under_the_warehouse_names_updates_included(warehouse):
    courier = CourierFactory()
    order = OrderFactory()
    order_act(order, courier, "assigned", seconds_ago=120)
    order_act(order, courier, "started", seconds_ago=90)
    ping_batch_record(
        courier_id=courier.id,
        received_at=timezone.now(),
        pings=[ping(seconds_ago=60, lat=-23.58), ping(seconds_ago=45)],
    )
    ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=30, lat=-23.5620)])
    order_act(order, courier, "delivered", seconds_ago=10, lat=SAO_PAULO[0])

    seen = warehouse.apply_changes()

    # test_decoding names each ping's partition; the mappings fold them into tracking_ping.
    assert f"tracking_ping_p{timezone.now().astimezone(dt.UTC):%Y%m%d}" in seen and "tracking_ping" not in seen
    assert warehouse.count("tracking_ping") == 6  # three pings plus the three events' positions
    for table, key in KEYS.items():
        assert warehouse.keys(table, key, dbname=warehouse.name) == warehouse.keys(
            table, key, dbname=warehouse.source
        ), table
    (status,) = execute("SELECT status FROM orders_order WHERE id = %s", [str(order.id)], dbname=warehouse.name)
    assert status == ("delivered",)
    assert warehouse.count("tracking_orderlastlocation") == 1  # updated in place, not appended
    # Personal data stays upstream: the warehouse has no column for it, and DMS sends none.
    (consumer,) = execute("SELECT consumer_name FROM orders_order", dbname=warehouse.source)[0]
    assert consumer and not any(
        consumer in str(row) for row in execute("SELECT * FROM orders_order", dbname=warehouse.name)
    )


@pytest.mark.django_db(transaction=True)
def test_rows_written_during_the_full_load_arrive_twice_and_the_dedupe_keeps_one_per_key(warehouse):
    courier = CourierFactory()
    order = OrderFactory()
    order_act(order, courier, "assigned", seconds_ago=120)
    ping_batch_record(
        courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=60), ping(seconds_ago=50)]
    )
    warehouse.full_load()  # after the slot: what the load copied, the slot holds too
    order_act(order, courier, "started", seconds_ago=30)
    warehouse.apply_changes()
    assert warehouse.count("tracking_ping") > warehouse.count("tracking_ping", distinct="DISTINCT event_id")
    # A reload appends the tables again (TargetTablePrepMode DO_NOTHING), and what it read
    # before a change arrives after the change's apply: an older copy beside the newer one.
    reload = warehouse.full_load_read()
    order_act(order, courier, "delivered", seconds_ago=10)
    warehouse.apply_changes()
    warehouse.load(reload)
    assert warehouse.count("orders_order") == 2

    warehouse.dedupe()

    for table, key in KEYS.items():
        upstream = warehouse.keys(table, key, dbname=warehouse.source)
        assert warehouse.keys(table, key, dbname=warehouse.name) == upstream, table
        assert warehouse.count(table) == len(upstream), table
    # The newest copy of a changed row is the one kept.
    status = "SELECT status, updated_at FROM orders_order WHERE id = %s"
    assert execute(status, [str(order.id)], dbname=warehouse.name) == execute(
        "SELECT status, (updated_at AT TIME ZONE 'UTC') FROM orders_order WHERE id = %s",
        [str(order.id)],
        dbname=warehouse.source,
    )


@pytest.mark.django_db(transaction=True)
def test_dropping_an_expired_partition_deletes_nothing_downstream(warehouse):
    courier = CourierFactory()
    expired_day = timezone.now().date() - dt.timedelta(days=django_settings.TRACKING["RETENTION_DAYS"] + 30)
    ping_partitions_ensure(today=expired_day)
    with connection.cursor() as cursor:
        for hour in range(3):
            recorded = dt.datetime.combine(expired_day, dt.time(hour), tzinfo=dt.UTC)
            cursor.execute(
                "INSERT INTO tracking_ping (event_id, recorded_at, received_at, courier_id, lat, lon) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [uuid.uuid4(), recorded, recorded, courier.id, SAO_PAULO[0], SAO_PAULO[1]],
            )
    warehouse.apply_changes()
    expired = f"recorded_at::date = '{expired_day}'"
    assert warehouse.count("tracking_ping", where=expired) == 3

    dropped = ping_partitions_drop_expired()
    ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=5)])
    seen = warehouse.apply_changes()

    assert ping_partition_name(day=expired_day) in dropped
    assert seen  # the ping written after the drop arrived; the DETACH and DROP sent no row change
    assert warehouse.count("tracking_ping", where=expired) == 3


def test_dms_never_selects_the_event_identity_table():
    """It only serves the writers' deduplication for the acceptance window; the warehouse
    has every ping with its event id already."""
    dms = Dms()
    assert dms.target("tracking_pingevent") is None and dms.target("tracking_ping") is None
    assert dms.target("tracking_ping_p20260101") == "tracking_ping" and dms.target("orders_order") == "orders_order"
