from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.support.builders import SAO_PAULO, OrderFactory, ping, pings_record
from tests.support.database import database_connect, lock_waiters_wait
from tracking.models import CourierLastLocation, OrderLastLocation


def batch(n: int, *, start_seconds_ago: float = 600) -> list[dict]:
    return [ping(seconds_ago=start_seconds_ago - i, lat=-23.55 - i * 0.00005) for i in range(n)]


@pytest.mark.django_db
def test_queries_per_batch_do_not_grow_with_the_batch_size(courier, in_transit_order):
    counts = []
    for size in (1, 50, 500):
        with CaptureQueriesContext(connection) as queries:
            pings_record(courier, batch(size))
        counts.append(len(queries))

    assert counts[0] == counts[1] == counts[2]
    assert counts[0] <= 6


@pytest.mark.django_db
def test_queries_per_batch_near_the_destination_do_not_grow_with_the_batch_size(courier):
    """Near the destination a batch adds one statement, the "arriving" outbox insert, for
    all its orders at once, whether or not the row already exists."""
    counts = []
    for size in (1, 50, 500):
        OrderFactory(courier=courier, status="in_transit", started_at=timezone.now() - dt.timedelta(hours=1))
        near = [ping(seconds_ago=600 - i, lat=SAO_PAULO[0], lon=SAO_PAULO[1]) for i in range(size)]
        with CaptureQueriesContext(connection) as queries:
            pings_record(courier, near)
        counts.append(len(queries))

    assert counts[0] == counts[1] == counts[2]
    assert counts[0] <= 7


@pytest.mark.django_db(transaction=True)
def test_two_racing_batches_leave_the_newest_location(courier, in_transit_order):
    """Both batches wait on a lock held on the last-location rows, then race; whichever
    commits last, the newer device time must win."""
    pings_record(courier, [ping(seconds_ago=300)])
    newer = [ping(seconds_ago=10, lat=-23.5600)]
    older = [ping(seconds_ago=20, lat=-23.5601)]
    with database_connect() as blocker:
        blocker.execute("SELECT 1 FROM tracking_orderlastlocation FOR UPDATE")
        blocker.execute("SELECT 1 FROM tracking_courierlastlocation FOR UPDATE")

        def record(pings):
            pings_record(courier, pings)
            connection.close()

        threads = [threading.Thread(target=record, args=(p,)) for p in (newer, older)]
        for t in threads:
            t.start()
        lock_waiters_wait(blocker, count=2, timeout=10, message="both batches to be blocked on the row lock")
        blocker.commit()
    for t in threads:
        t.join(timeout=30)

    assert OrderLastLocation.objects.get(order=in_transit_order).location.y == pytest.approx(-23.5600)
    assert CourierLastLocation.objects.get(courier=courier).location.y == pytest.approx(-23.5600)


@pytest.mark.django_db
def test_demotion_override_matches_only_the_fix_the_row_came_from(courier, in_transit_order):
    real = ping(seconds_ago=10, lat=-23.5600)
    # A second ping of the same instant, without a fix: flagged, but not the row's fix.
    null_twin = ping(lat=0.0, lon=0.0) | {"recorded_at": real["recorded_at"]}
    older = ping(seconds_ago=20, lat=-23.5601)

    for pings in ([real], [null_twin], [older]):
        pings_record(courier, pings)

    assert CourierLastLocation.objects.get(courier=courier).location.y == pytest.approx(-23.5600)
    assert OrderLastLocation.objects.get(order=in_transit_order).location.y == pytest.approx(-23.5600)


@pytest.mark.django_db
def test_a_last_location_remembers_the_fix_it_came_from(courier, in_transit_order):
    pings = batch(3)

    pings_record(courier, pings)

    assert str(CourierLastLocation.objects.get(courier=courier).event_id) == pings[-1]["event_id"]
    assert str(OrderLastLocation.objects.get(order=in_transit_order).event_id) == pings[-1]["event_id"]


@pytest.mark.django_db
def test_retried_batch_stores_nothing_twice_and_keeps_the_location(courier, in_transit_order):
    pings = batch(5)
    assert pings_record(courier, pings) == 5

    assert pings_record(courier, pings) == 0
    assert OrderLastLocation.objects.get(order=in_transit_order).location.y == pytest.approx(pings[-1]["lat"])


@pytest.mark.django_db
def test_each_active_order_of_the_courier_gets_the_position(courier, in_transit_order):
    from tests.support.builders import OrderFactory

    second = OrderFactory(courier=courier, status="assigned", assigned_at=timezone.now())

    pings_record(courier, batch(3))

    assert OrderLastLocation.objects.filter(order__in=[in_transit_order, second]).count() == 2
