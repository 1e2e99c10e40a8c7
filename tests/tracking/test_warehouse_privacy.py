"""The warehouse's privacy rule (deploy/warehouse/privacy.sql), run on PostGIS against the
warehouse's own tables (deploy/warehouse/migrations/), with a trip 95 days old:
after it, no column of the trip places the consumer's door better than its rounded point.

The Redshift SQL runs as it is, in a schema of its own, with four spellings PostgreSQL
lacks provided as SQL functions (GETDATE, DATEADD, ROUND of a double, ST_GeomFromEWKB of
hex text) and the table layout clauses (DISTKEY, SORTKEY) left out."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

from tests.support.warehouse import warehouse_users_statements
from tracking.geo import EARTH_RADIUS_M, haversine_m

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
from ze_infra import analytics_tables as tables  # noqa: E402  (plain data, no CDK import)

SCHEMA = "warehouse_privacy"
FUNCTIONS = f"""
CREATE FUNCTION {SCHEMA}.getdate() RETURNS timestamp LANGUAGE sql
    AS $$ SELECT (now() AT TIME ZONE 'UTC')::timestamp(0) $$;
CREATE FUNCTION {SCHEMA}.dateadd(unit text, n integer, ts timestamp) RETURNS timestamp LANGUAGE sql
    AS $$ SELECT ts + (n || ' ' || unit)::interval $$;
CREATE FUNCTION {SCHEMA}.round(x double precision, places integer) RETURNS double precision LANGUAGE sql
    AS $$ SELECT pg_catalog.round(x::numeric, places)::double precision $$;
CREATE FUNCTION {SCHEMA}.st_geomfromewkb(hex text) RETURNS geometry LANGUAGE sql
    AS $$ SELECT hex::geometry $$;
"""

# The door, chosen away from the 0.001-degree grid: its rounded point is ~56 m off.
DOOR = (-23.56137, -46.65562)
ROUNDED_DOOR = (-23.561, -46.656)
NEXT_DESTINATION = (-23.5480, -46.6400)


def _postgres(statement: str) -> str:
    statement = statement.replace("public.", f"{SCHEMA}.")
    statement = re.sub(r"DATEADD\((\w+),", r"DATEADD('\1',", statement)
    return re.sub(r"^(DISTKEY|DISTSTYLE|COMPOUND SORTKEY|SORTKEY)\b.*$", "", statement, flags=re.M)


def _privacy_rule_run(cursor) -> int:
    """Every statement of the rule, in order; the number of rows they changed."""
    changed = 0
    for statement in tables.sql_statements(path=tables.WAREHOUSE_SQL / "privacy.sql"):
        cursor.execute(_postgres(statement))
        changed += cursor.rowcount
    return changed


def _offset(origin: tuple[float, float], *, north_m: float, east_m: float) -> tuple[float, float]:
    lat = origin[0] + math.degrees(north_m / EARTH_RADIUS_M)
    lon = origin[1] + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(origin[0]))))
    return lat, lon


def _trilaterate(pings: list[tuple[float, float, float]]) -> tuple[float, float] | None:
    """The point at the given distances from three positions (lat, lon, distance_m), on a
    local plane; None when the positions are (nearly) on one line."""
    lat0, lon0 = pings[0][0], pings[0][1]
    k = math.radians(1) * EARTH_RADIUS_M
    (x1, y1, r1), (x2, y2, r2), (x3, y3, r3) = [
        ((lon - lon0) * k * math.cos(math.radians(lat0)), (lat - lat0) * k, r) for lat, lon, r in pings
    ]
    a, b, c = 2 * (x2 - x1), 2 * (y2 - y1), r1**2 - r2**2 + x2**2 - x1**2 + y2**2 - y1**2
    d, e, f = 2 * (x3 - x1), 2 * (y3 - y1), r1**2 - r3**2 + x3**2 - x1**2 + y3**2 - y1**2
    det = a * e - b * d
    if abs(det) < 1e4:
        return None
    x, y = (c * e - b * f) / det, (a * f - c * d) / det
    return lat0 + y / k, lon0 + x / (k * math.cos(math.radians(lat0)))


def _trilateration_spread_m(pings: list[tuple[float, float, float]], point: tuple[float, float]) -> float:
    """How far the point moves when each distance is off by its rounding (half a metre):
    a triple nearly on one line places nothing precisely."""
    moved = 0.0
    for signs in itertools.product((-0.5, 0.5), repeat=3):
        other = _trilaterate([(lat, lon, r + s) for (lat, lon, r), s in zip(pings, signs, strict=True)])
        moved = max(moved, math.inf if other is None else haversine_m(*point, *other))
    return moved


def _point(cursor, lat: float, lon: float) -> str:
    cursor.execute("SELECT ST_AsHEXEWKB(ST_SetSRID(ST_MakePoint(%s, %s), 4326))", [lon, lat])
    return cursor.fetchone()[0]


def _trip_insert(cursor) -> dict:
    """A delivery 95 days ago: the approach along two streets (an L, so three of its
    pings are not on one line), a minute at the door, the delivery, then the way out: first
    with no order, then carrying the next one."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    assigned = now - dt.timedelta(days=95)
    courier, order, next_order = (str(uuid.uuid4()) for _ in range(3))
    corner = _offset(DOOR, north_m=-1000, east_m=0)
    trail = [_offset(corner, north_m=0, east_m=-1200 + 40 * i) for i in range(30)]
    trail += [_offset(corner, north_m=40 * i, east_m=0) for i in range(25)]
    trail += [DOOR] * 12
    delivered_index = len(trail)
    trail += [_offset(DOOR, north_m=0, east_m=40 * i) for i in range(10)]
    next_assigned_index = len(trail)
    trail += [_offset(DOOR, north_m=20 * i, east_m=360 + 20 * i) for i in range(1, 40)]
    pings = []
    for i, (lat, lon) in enumerate(trail):
        at = assigned + dt.timedelta(minutes=1, seconds=5 * i)
        carried = order if i < delivered_index else (next_order if i >= next_assigned_index else None)
        target = {order: DOOR, next_order: NEXT_DESTINATION}.get(carried)
        distance = round(haversine_m(lat, lon, *target)) if target else None
        eta = round(distance * 1.3 / 6.0) if target else None
        event = str(uuid.uuid4())
        pings.append({"event_id": event, "index": i, "lat": lat, "lon": lon, "distance": distance, "at": at})
        cursor.execute(
            f"INSERT INTO {SCHEMA}.tracking_ping (recorded_at, received_at, lat, lon, accuracy_m, speed_mps,"
            " distance_to_destination_m, eta_seconds, courier_id, event_id, order_id)"
            " VALUES (%s, %s, %s, %s, 5, 8, %s, %s, %s, %s, %s)",
            [at, at, lat, lon, distance, eta, courier, event, carried],
        )
    delivered_at = pings[delivered_index]["at"]
    next_assigned_at = pings[next_assigned_index]["at"]
    door = _point(cursor, *DOOR)
    for id_, destination, created, assigned_at, delivered in (
        (order, door, assigned, assigned, delivered_at),
        (next_order, _point(cursor, *NEXT_DESTINATION), next_assigned_at, next_assigned_at, None),
    ):
        cursor.execute(
            f"INSERT INTO {SCHEMA}.orders_order (id, destination, status, created_at, updated_at, assigned_at,"
            " started_at, delivered_at, courier_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                id_,
                destination,
                "delivered" if delivered else "in_transit",
                created,
                delivered or created,
                assigned_at,
                assigned_at,
                delivered,
                courier,
            ],
        )
    cursor.execute(
        f"INSERT INTO {SCHEMA}.orders_orderevent (id, event_id, type, status_after, recorded_at, received_at,"
        " location, accuracy_m, courier_id, order_id) VALUES (1, %s, 'delivered', 'delivered', %s, %s, %s, 5, %s, %s)",
        [str(uuid.uuid4()), delivered_at, delivered_at, door, courier, order],
    )
    cursor.execute(
        f"INSERT INTO {SCHEMA}.tracking_orderlastlocation (location, recorded_at, updated_at, order_id,"
        " distance_to_destination_m, eta_seconds, courier_id) VALUES (%s, %s, %s, %s, 0, 0, %s)",
        [door, delivered_at, delivered_at, order, courier],
    )
    cursor.execute(
        f"INSERT INTO {SCHEMA}.tracking_courierlastlocation (location, recorded_at, updated_at, courier_id)"
        " VALUES (%s, %s, %s, %s)",
        [door, delivered_at, delivered_at, courier],
    )
    return {"pings": pings, "delivered_index": delivered_index, "order": order}


@pytest.fixture
def warehouse(db):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {SCHEMA}")
        cursor.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
        cursor.execute(FUNCTIONS)
        for statement in warehouse_users_statements():
            cursor.execute(statement)
        for migration in sorted((tables.WAREHOUSE_SQL / "migrations").glob("*.sql")):
            for statement in tables.sql_statements(path=migration):
                cursor.execute(_postgres(statement))
        yield cursor


def _stored_pings(cursor) -> dict[str, tuple[float, float, float | None]]:
    cursor.execute(f"SELECT event_id, lat, lon, distance_to_destination_m FROM {SCHEMA}.tracking_ping")
    return {event: (lat, lon, distance) for event, lat, lon, distance in cursor.fetchall()}


def _door_error_m(point: tuple[float, float]) -> float:
    return haversine_m(*point, *DOOR)


def test_three_pings_of_a_trip_no_longer_trilaterate_the_door(warehouse):
    trip = _trip_insert(warehouse)
    start, corner, on_the_way = (trip["pings"][i]["event_id"] for i in (0, 29, 45))
    stored = _stored_pings(warehouse)
    before = _trilaterate([stored[e] for e in (start, corner, on_the_way)])
    assert _door_error_m(before) < 3  # the attack works on exact distances

    _privacy_rule_run(warehouse)

    stored = _stored_pings(warehouse)
    rounding_m = _door_error_m(ROUNDED_DOOR)
    assert rounding_m > 50
    after = _trilaterate([stored[e] for e in (start, corner, on_the_way)])
    assert after is not None  # distances are kept, measured to the rounded point
    assert haversine_m(*after, *ROUNDED_DOOR) < 3
    assert _door_error_m(after) > rounding_m - 3
    # Any three of the trip's pings that still carry a distance to this order, however
    # chosen: each triple that places a point to within metres places the rounded one.
    with_distance = [stored[p["event_id"]] for p in trip["pings"][: trip["delivered_index"]]]
    sharp = 0
    for triple in itertools.combinations(with_distance[::3], 3):
        point = _trilaterate(list(triple))
        if point is None or _trilateration_spread_m(list(triple), point) > 3:
            continue
        sharp += 1
        assert haversine_m(*point, *ROUNDED_DOOR) < 5 and _door_error_m(point) > rounding_m - 5, triple
    assert sharp > 100


def test_no_ping_of_the_trip_nor_of_the_way_out_is_closer_to_the_door_than_its_rounded_point(warehouse):
    trip = _trip_insert(warehouse)
    departure = [p["event_id"] for p in trip["pings"][trip["delivered_index"] :]]
    assert min(_door_error_m(_stored_pings(warehouse)[e][:2]) for e in departure) < 1

    _privacy_rule_run(warehouse)

    stored = _stored_pings(warehouse)
    rounding_m = _door_error_m(ROUNDED_DOOR)
    assert min(_door_error_m(lat_lon[:2]) for lat_lon in stored.values()) > rounding_m - 0.5
    for event in departure:
        lat, lon, _ = stored[event]
        if haversine_m(lat, lon, *ROUNDED_DOOR) < 500:
            assert (round(lat, 3), round(lon, 3)) == (lat, lon), "a ping near the door after the delivery"


def test_the_trips_other_rows_place_the_door_no_better_than_its_rounded_point(warehouse):
    trip = _trip_insert(warehouse)

    _privacy_rule_run(warehouse)

    warehouse.execute(
        f"SELECT ST_Y(ST_GeomFromEWKB(location)), ST_X(ST_GeomFromEWKB(location)) FROM {SCHEMA}.orders_orderevent"
        f" UNION ALL SELECT ST_Y(ST_GeomFromEWKB(location)), ST_X(ST_GeomFromEWKB(location))"
        f" FROM {SCHEMA}.tracking_courierlastlocation"
        f" UNION ALL SELECT ST_Y(ST_GeomFromEWKB(destination)), ST_X(ST_GeomFromEWKB(destination))"
        f" FROM {SCHEMA}.orders_order WHERE id = %s",
        [trip["order"]],
    )
    assert [tuple(round(c, 6) for c in row) for row in warehouse.fetchall()] == [ROUNDED_DOOR] * 3
    warehouse.execute(
        f"SELECT ST_Y(ST_GeomFromEWKB(location)), ST_X(ST_GeomFromEWKB(location)), distance_to_destination_m"
        f" FROM {SCHEMA}.tracking_orderlastlocation"
    )
    lat, lon, distance = warehouse.fetchone()
    assert (round(lat, 6), round(lon, 6)) == ROUNDED_DOOR and distance == 0


def test_the_rule_is_idempotent(warehouse):
    _trip_insert(warehouse)
    assert _privacy_rule_run(warehouse) > 0

    assert _privacy_rule_run(warehouse) == 0
