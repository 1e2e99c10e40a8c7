"""Migration tracking 0005 brings a ping table created before the float columns (the
position as a geography `location`) to migration 0001's layout: every row and partition
kept, the same float8 coordinates, the table published again."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import uuid
from types import SimpleNamespace

import pytest
from django.db import connection

from tests.support.builders import SAO_PAULO

rebuild = importlib.import_module("tracking.migrations.0005_ping_position_floats")

# tracking_ping as migration 0001 created it before the float columns.
GEOGRAPHY_TABLE_SQL = """
CREATE TABLE tracking_ping (
    recorded_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    accuracy_m real NULL,
    speed_mps real NULL,
    distance_to_destination_m integer NULL,
    eta_seconds integer NULL,
    heading_deg smallint NULL,
    location geography(Point, 4326) NOT NULL,
    courier_id uuid NOT NULL,
    event_id uuid NOT NULL,
    order_id uuid NULL,
    suspect_reason varchar(32) NULL,
    attributes jsonb NULL,
    PRIMARY KEY (courier_id, recorded_at, event_id)
) PARTITION BY RANGE (recorded_at);
CREATE INDEX tracking_ping_times_brin ON tracking_ping USING brin (recorded_at, received_at);
CREATE TABLE tracking_ping_default PARTITION OF tracking_ping DEFAULT;
CREATE TABLE tracking_ping_p20260110 PARTITION OF tracking_ping
    FOR VALUES FROM ('2026-01-10 00:00:00+00') TO ('2026-01-11 00:00:00+00');
ALTER PUBLICATION ze_analytics ADD TABLE tracking_ping;
"""

DAY = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)


def fetch(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def layout() -> list[tuple]:
    return fetch(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull, attisdropped FROM pg_attribute "
        "WHERE attrelid = 'tracking_ping'::regclass AND attnum > 0 ORDER BY attnum"
    )


def table_state() -> dict:
    return {
        "layout": layout(),
        "checks": fetch(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'tracking_ping'::regclass AND contype IN ('c', 'p') ORDER BY conname"
        ),
        "indexes": fetch("SELECT indexdef FROM pg_indexes WHERE tablename = 'tracking_ping' ORDER BY indexname"),
        "published": fetch("SELECT attnames FROM pg_publication_tables WHERE tablename = 'tracking_ping'"),
    }


@pytest.mark.django_db
def test_a_geography_ping_table_is_rebuilt_with_its_rows_in_the_float_layout():
    fresh = table_state()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE tracking_ping")
        cursor.execute(GEOGRAPHY_TABLE_SQL)
        courier, order = uuid.uuid4(), uuid.uuid4()
        # (seconds after noon, lat, lon): a walk north, a null-island fix, and one ping
        # no day partition holds (the default partition's).
        pings = [(0, SAO_PAULO[0], SAO_PAULO[1]), (10, SAO_PAULO[0] + 0.001, SAO_PAULO[1]),
                 (20, SAO_PAULO[0] + 0.0021234567, SAO_PAULO[1] - 1e-7), (30, 0.0, 0.0),
                 (86_400 * 3, -89.9999999, 179.9999999)]  # fmt: skip
        for seconds, lat, lon in pings:
            recorded = DAY + dt.timedelta(seconds=seconds)
            cursor.execute(
                "INSERT INTO tracking_ping (recorded_at, received_at, accuracy_m, speed_mps, "
                "distance_to_destination_m, eta_seconds, heading_deg, location, courier_id, event_id, order_id, "
                "suspect_reason, attributes) "
                "VALUES (%s, %s, 4.5, 3.25, 1200, 300, 90, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, "
                "%s, %s, %s, %s, %s)",
                [recorded, recorded + dt.timedelta(seconds=1), lon, lat, courier, uuid.uuid4(), order,
                 "null_island" if lat == 0 else None, json.dumps({"battery": seconds})],
            )  # fmt: skip
    before = fetch(
        "SELECT tableoid::regclass::text, recorded_at, received_at, float8send(ST_Y(location::geometry)), "
        "float8send(ST_X(location::geometry)), accuracy_m, speed_mps, distance_to_destination_m, eta_seconds, "
        "heading_deg, courier_id, event_id, order_id, suspect_reason, attributes::text FROM tracking_ping ORDER BY 2"
    )

    rebuild.ping_table_rebuild(None, SimpleNamespace(connection=connection))

    assert table_state() == fresh
    after = fetch(
        "SELECT tableoid::regclass::text, recorded_at, received_at, float8send(lat), float8send(lon), accuracy_m, "
        "speed_mps, distance_to_destination_m, eta_seconds, heading_deg, courier_id, event_id, order_id, "
        "suspect_reason, attributes::text FROM tracking_ping ORDER BY 2"
    )
    assert after == before  # the same float8 bits, in the same partitions
    assert [row[0] for row in after] == ["tracking_ping_p20260110"] * 4 + ["tracking_ping_default"]


@pytest.mark.django_db
def test_a_float_ping_table_is_left_as_it_is():
    before = table_state()
    rebuild.ping_table_rebuild(None, SimpleNamespace(connection=connection))
    assert table_state() == before
