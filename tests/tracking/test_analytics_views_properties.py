"""The two trickiest analytics rules hold for any pings, checked against a plain Python
statement of the rule: out-of-order pings (uploads never count against themselves) and the
longest gap of a trip (its start and end are bounds)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.builders import SAO_PAULO, CourierFactory, OrderFactory

NOON = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)
# Each example rolls its rows back; the fixture's courier stays.
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def courier(db):
    return CourierFactory()


def pings_insert(*, courier_id, order_id=None, pings: list[tuple[dt.datetime, dt.datetime]]) -> None:
    with connection.cursor() as cursor:
        for recorded, received in pings:
            cursor.execute(
                "INSERT INTO tracking_ping (event_id, recorded_at, received_at, courier_id, order_id, lat, lon) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [uuid.uuid4(), recorded, received, courier_id, order_id, SAO_PAULO[0], SAO_PAULO[1]],
            )


# Uploads in the order the server received them, each a list of recording times (seconds
# after noon); upload i arrives at noon + 20 min + i seconds, so received times differ.
uploads_strategy = st.lists(st.lists(st.integers(0, 600), min_size=1, max_size=4), min_size=1, max_size=8)


@PROPERTY
@given(uploads=uploads_strategy)
def test_a_ping_is_out_of_order_iff_an_earlier_upload_had_a_newer_ping(courier, uploads):
    expected, newest = 0, None
    for upload in uploads:
        expected += sum(1 for recorded in upload if newest is not None and recorded < newest)
        newest = max([*upload, *([newest] if newest is not None else [])])

    with transaction.atomic():
        pings_insert(
            courier_id=courier.id,
            pings=[
                (NOON + dt.timedelta(seconds=recorded), NOON + dt.timedelta(minutes=20, seconds=i))
                for i, upload in enumerate(uploads)
                for recorded in upload
            ],
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pings, out_of_order FROM analytics_ping_timeliness_daily")
            assert cursor.fetchall() == [(sum(map(len, uploads)), expected)]
        transaction.set_rollback(True)


@PROPERTY
@given(
    trip_s=st.integers(1, 3600),
    ping_s=st.lists(st.integers(-600, 4200), max_size=12),
)
def test_longest_transit_gap_is_the_longest_wait_between_start_pings_and_end(courier, trip_s, ping_s):
    inside = sorted({s for s in ping_s if 0 < s < trip_s})
    moments = [0, *inside, trip_s]
    expected = max(b - a for a, b in zip(moments, moments[1:], strict=False))

    with transaction.atomic():
        order = OrderFactory(courier=courier, status="delivered")
        type(order).objects.filter(pk=order.pk).update(
            started_at=NOON, delivered_at=NOON + dt.timedelta(seconds=trip_s)
        )
        # Pings before the start and after the end belong to other trips: not counted.
        pings_insert(
            courier_id=courier.id,
            pings=[(NOON + dt.timedelta(seconds=s), NOON + dt.timedelta(seconds=s)) for s in sorted(set(ping_s))],
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT longest_gap_s, pings_in_transit FROM analytics_order_longest_transit_gap WHERE order_id = %s",
                [order.id],
            )
            assert cursor.fetchall() == [(float(expected), len(inside))]
        transaction.set_rollback(True)
