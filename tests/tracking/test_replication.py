"""Change data capture, proven here: a second database on the same server subscribes to the
`ze_analytics` publication (migration tracking 0002) through logical replication, the
mechanism DMS's CDC reads in production, and ends up with exactly what the warehouse needs.

The subscriber's tables are built from what the publication sends (its columns and their
types), with the same primary keys: personal columns never reach it. Its ping table is a
plain table, as in Redshift, because `publish_via_partition_root` sends every partition's
rows as `tracking_ping`.
"""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from tests.support.builders import SAO_PAULO, CourierFactory, OrderFactory, order_act, ping, pings_record
from tests.support.waiting import wait_for
from tracking.services.partitions import ping_partition_name, ping_partitions_drop_expired, ping_partitions_ensure

PUBLICATION = "ze_analytics"
SLOT = "ze_analytics_test"
SUBSCRIPTION = "ze_analytics_test"
REPLICATION_TIMEOUT_S = 60


def conninfo(*, dbname: str) -> str:
    db = connection.settings_dict
    parts = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"], "dbname": dbname}
    if db.get("PASSWORD"):
        parts["password"] = db["PASSWORD"]
    return " ".join(f"{key}={value}" for key, value in parts.items())


class Warehouse:
    """The subscriber database, and the comparison with the publisher."""

    def __init__(self, *, publisher: str, subscriber: str):
        self.publisher = publisher
        self.subscriber = subscriber
        self.published: dict[str, list[str]] = {}

    def execute(self, sql: str, params=None, *, dbname: str) -> list[tuple]:
        with psycopg.connect(conninfo(dbname=dbname), autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def tables_create(self) -> None:
        """One table per published table: the published columns, their types, the primary key."""
        published = self.execute(
            "SELECT tablename, attnames FROM pg_publication_tables WHERE pubname = %s", [PUBLICATION],
            dbname=self.publisher,
        )  # fmt: skip
        for table, columns in published:
            types = dict(
                self.execute(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    [table],
                    dbname=self.publisher,
                )
            )
            (key,) = self.execute(
                "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_constraint c "
                "CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
                "WHERE c.conrelid = %s::regclass AND c.contype = 'p'",
                [table],
                dbname=self.publisher,
            )[0]
            definition = ", ".join(f"{column} {types[column]}" for column in columns)
            self.execute(f"CREATE TABLE {table} ({definition}, PRIMARY KEY ({', '.join(key)}))", dbname=self.subscriber)
            self.published[table] = columns

    def rows(self, table: str, *, dbname: str, where: str = "true") -> list[tuple]:
        columns = ", ".join(self.published[table])
        return self.execute(f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {columns}", dbname=dbname)

    def differences(self) -> dict[str, tuple[int, int]]:
        """Tables whose published rows differ downstream, with both row counts."""
        differ = {}
        for table in self.published:
            upstream, downstream = self.rows(table, dbname=self.publisher), self.rows(table, dbname=self.subscriber)
            if upstream != downstream:
                differ[table] = (len(upstream), len(downstream))
        return differ

    def wait_in_sync(self) -> None:
        wait_for(lambda: not self.differences(), timeout=REPLICATION_TIMEOUT_S, message="the subscriber to catch up")


def subscription_drop(*, warehouse: Warehouse) -> None:
    """Drop the subscription without letting it touch the slot (DROP SUBSCRIPTION would try to
    drop it over a connection to this same server), then the slot itself once it is idle."""
    exists = warehouse.execute(
        "SELECT 1 FROM pg_subscription WHERE subname = %s", [SUBSCRIPTION], dbname=warehouse.subscriber
    )
    if exists:
        warehouse.execute(f"ALTER SUBSCRIPTION {SUBSCRIPTION} DISABLE", dbname=warehouse.subscriber)
        warehouse.execute(f"ALTER SUBSCRIPTION {SUBSCRIPTION} SET (slot_name = NONE)", dbname=warehouse.subscriber)
        warehouse.execute(f"DROP SUBSCRIPTION {SUBSCRIPTION}", dbname=warehouse.subscriber)

    # The slot, plus any table-sync slot a worker left behind, all on this test database.
    def idle_slots_dropped() -> bool:
        slots = warehouse.execute(
            "SELECT slot_name, active FROM pg_replication_slots WHERE database = %s "
            "AND (slot_name = %s OR slot_name LIKE 'pg\\_%%\\_sync\\_%%')",
            [warehouse.publisher, SLOT],
            dbname=warehouse.publisher,
        )  # fmt: skip
        for name, active in slots:
            if not active:
                warehouse.execute("SELECT pg_drop_replication_slot(%s)", [name], dbname=warehouse.publisher)
        return all(not active for _, active in slots)

    wait_for(idle_slots_dropped, timeout=REPLICATION_TIMEOUT_S, message="the replication slots to be idle")


@pytest.fixture
def warehouse(transactional_db):
    """Steps: check the server can decode logically; create the subscriber database with the
    published tables; create the slot on the publisher (CREATE SUBSCRIPTION cannot create it
    itself on the same server: it would wait for its own transaction); subscribe. Teardown
    drops the subscription, the slot and the database."""
    publisher = connection.settings_dict["NAME"]
    warehouse = Warehouse(publisher=publisher, subscriber=f"{publisher}_warehouse")
    ((wal_level,),) = warehouse.execute("SHOW wal_level", dbname=publisher)
    assert wal_level == "logical", "the server needs wal_level=logical (scripts/setup.sh starts it so)"

    if warehouse.execute("SELECT 1 FROM pg_database WHERE datname = %s", [warehouse.subscriber], dbname=publisher):
        subscription_drop(warehouse=warehouse)  # left by an interrupted run
    warehouse.execute(f"DROP DATABASE IF EXISTS {warehouse.subscriber} WITH (FORCE)", dbname=publisher)
    warehouse.execute(f"CREATE DATABASE {warehouse.subscriber}", dbname=publisher)
    try:
        warehouse.execute("CREATE EXTENSION postgis", dbname=warehouse.subscriber)
        warehouse.tables_create()
        warehouse.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [SLOT], dbname=publisher)
        warehouse.execute(
            f"CREATE SUBSCRIPTION {SUBSCRIPTION} CONNECTION '{conninfo(dbname=publisher)}' "
            f"PUBLICATION {PUBLICATION} WITH (create_slot = false, slot_name = '{SLOT}')",
            dbname=warehouse.subscriber,
        )
        yield warehouse
    finally:
        subscription_drop(warehouse=warehouse)
        warehouse.execute(f"DROP DATABASE IF EXISTS {warehouse.subscriber} WITH (FORCE)", dbname=publisher)


@pytest.mark.django_db(transaction=True)
def test_pings_order_changes_and_last_locations_arrive_intact_updates_included(warehouse):
    courier = CourierFactory()
    order = OrderFactory()
    order_act(order, courier, "assigned", seconds_ago=120)
    order_act(order, courier, "started", seconds_ago=90)
    pings_record(courier, [ping(seconds_ago=60, lat=-23.58), ping(seconds_ago=45, lat=-23.575)])
    warehouse.wait_in_sync()

    # Updates: the last locations move, the order is delivered.
    pings_record(courier, [ping(seconds_ago=30, lat=-23.5620)])
    order_act(order, courier, "delivered", seconds_ago=10, lat=SAO_PAULO[0])
    warehouse.wait_in_sync()

    sub = warehouse.subscriber
    delivered = warehouse.execute(
        "SELECT status, delivered_at IS NOT NULL FROM orders_order WHERE id = %s", [order.id], dbname=sub
    )
    assert delivered == [("delivered", True)]
    events = warehouse.execute(
        "SELECT type FROM orders_orderevent WHERE order_id = %s ORDER BY recorded_at", [order.id], dbname=sub
    )
    assert events == [("assigned",), ("started",), ("delivered",)]
    # Three pings plus the three events' positions (tracking records each as a ping).
    assert warehouse.execute("SELECT count(*) FROM tracking_ping", dbname=sub) == [(6,)]
    ((last_lat,),) = warehouse.execute(
        "SELECT round(ST_Y(location::geometry)::numeric, 4) FROM tracking_orderlastlocation WHERE order_id = %s",
        [order.id],
        dbname=sub,
    )
    assert float(last_lat) == SAO_PAULO[0]
    # Personal data stays upstream.
    columns = warehouse.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name IN ('orders_order', 'couriers_courier')",
        dbname=sub,
    )
    assert not {"consumer_name", "tracking_code", "name", "user_id"} & {c for (c,) in columns}


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
    warehouse.wait_in_sync()
    expired = f"(recorded_at AT TIME ZONE 'UTC')::date = '{expired_day}'"
    kept = warehouse.rows("tracking_ping", dbname=warehouse.subscriber, where=expired)
    assert len(kept) == 3

    dropped = ping_partitions_drop_expired()
    assert ping_partition_name(day=expired_day) in dropped
    assert warehouse.rows("tracking_ping", dbname=warehouse.publisher, where=expired) == []
    # A ping written after the drop reaches the subscriber after anything the drop caused.
    marker = ping(seconds_ago=5)
    pings_record(courier, [marker])
    wait_for(
        lambda: warehouse.execute(
            "SELECT 1 FROM tracking_ping WHERE event_id = %s", [marker["event_id"]], dbname=warehouse.subscriber
        ),
        timeout=REPLICATION_TIMEOUT_S,
        message="the ping written after the drop",
    )
    assert warehouse.rows("tracking_ping", dbname=warehouse.subscriber, where=expired) == kept


@pytest.mark.django_db
def test_the_event_identity_table_is_not_published():
    """It only serves the writers' deduplication for the acceptance window; the warehouse
    has every ping with its event id already."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = %s", [PUBLICATION])
        published = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT to_regclass('tracking_pingevent') IS NOT NULL")
        exists = cursor.fetchone()[0]

    assert exists and "tracking_pingevent" not in published and "tracking_ping" in published
