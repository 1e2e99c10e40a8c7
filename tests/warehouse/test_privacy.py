"""After 90 days nothing the warehouse's models show can place a consumer's door: the test
tries what an analyst could, from every position and every distance to the destination
the models expose for an old trip, and fails if any guess lands within 100 m of the door."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from orders.models import Order
from tests.support.builders import SAO_PAULO, CourierFactory, OrderFactory
from tests.warehouse.conftest import SCHEMA, dbt, rows, stored_pings_insert

# dbt runs as a process of its own.
pytestmark = pytest.mark.processes

DOOR = (SAO_PAULO[0] + 0.00437, SAO_PAULO[1] - 0.00291)
M_PER_DEG_LAT = 110_750.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(DOOR[0]))


def to_xy(lat: float, lon: float) -> tuple[float, float]:
    """Metres east and north of the door (a plane is exact enough over a few kilometres)."""
    return ((lon - DOOR[1]) * M_PER_DEG_LON, (lat - DOOR[0]) * M_PER_DEG_LAT)


def trilaterate(circles: list[tuple[float, float, float]]) -> list[tuple[float, float]]:
    """Every point three circles (x, y, r) agree on, by the linearised least squares an
    analyst would write."""
    guesses = []
    for (x1, y1, r1), (x2, y2, r2), (x3, y3, r3) in itertools.combinations(circles, 3):
        a, b = 2 * (x2 - x1), 2 * (y2 - y1)
        c = r1**2 - r2**2 - x1**2 + x2**2 - y1**2 + y2**2
        d, e = 2 * (x3 - x1), 2 * (y3 - y1)
        f = r1**2 - r3**2 - x1**2 + x3**2 - y1**2 + y3**2
        det = a * e - b * d
        if abs(det) > 1e-6:
            guesses.append(((c * e - b * f) / det, (a * f - c * d) / det))
    return guesses


@pytest.mark.django_db(transaction=True)
def test_an_old_trip_cannot_place_the_consumers_door(models_schema_dropped):
    courier = CourierFactory()
    order = OrderFactory(courier=courier, status="delivered", destination=Point(DOOR[1], DOOR[0], srid=4326))
    delivered = timezone.now() - dt.timedelta(days=100)
    Order.objects.filter(pk=order.pk).update(
        created_at=delivered - dt.timedelta(minutes=30), assigned_at=delivered - dt.timedelta(minutes=25),
        started_at=delivered - dt.timedelta(minutes=20), delivered_at=delivered,
    )  # fmt: skip
    # The way in from the south-west, at the door, and the way out to the east (no order).
    trail = [(-2000, -1500, order.id), (-1200, -900, order.id), (-700, -300, order.id), (-250, 80, order.id),
             (-60, 30, order.id), (5, 3, order.id), (120, 40, None), (600, 100, None), (1500, 200, None)]  # fmt: skip
    pings = []
    for i, (east, north, order_id) in enumerate(trail):
        distance = math.hypot(east, north) if order_id else None
        pings.append({
            "recorded_at": delivered + dt.timedelta(minutes=i - 6), "courier_id": courier.id, "order_id": order_id,
            "lat": DOOR[0] + north / M_PER_DEG_LAT, "lon": DOOR[1] + east / M_PER_DEG_LON,
            "distance_to_destination_m": distance, "eta_seconds": distance / 8 if distance else None,
        })  # fmt: skip
    stored_pings_insert(pings)
    dbt("build")

    seen = rows(f"SELECT lat, lon, distance_to_destination_m FROM {SCHEMA}.stg_pings")
    positions = [to_xy(r["lat"], r["lon"]) for r in seen if r["lat"] is not None]
    circles = [(*to_xy(r["lat"], r["lon"]), r["distance_to_destination_m"])
               for r in seen if r["lat"] is not None and r["distance_to_destination_m"] is not None]  # fmt: skip
    guesses = positions + trilaterate(circles)
    assert positions, "the trail far from the door stays"
    assert min(math.hypot(x, y) for x, y in guesses) > 100
    # Nothing the marts hold is a distance to the door either.
    assert rows(f"SELECT count(*) AS n FROM {SCHEMA}.analytics_eta_error")[0]["n"] == 0
