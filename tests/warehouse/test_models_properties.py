"""The two trickiest metric rules hold for any pings, checked against a plain Python
statement of the rule: out-of-order pings (an upload never counts against itself) and the
longest gap of a trip (its start and end are bounds). dbt builds once per example, so each
example holds many couriers, each with its own drawn case."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order
from tests.support.builders import SAO_PAULO, CourierFactory, OrderFactory
from tests.warehouse.conftest import SCHEMA, dbt, rows, stored_pings_insert

# dbt runs as a process of its own.
pytestmark = pytest.mark.processes

NOON = dt.datetime.combine(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=10), dt.time(12), tzinfo=dt.UTC)
CASES = 15
PROPERTY = settings(
    max_examples=3, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip


def pings_insert(*, courier_id, pings: list[tuple[dt.datetime, dt.datetime]]) -> None:
    """Pings as (recorded, received), all at one place."""
    stored_pings_insert([
        {"recorded_at": recorded, "received_at": received, "courier_id": courier_id, "lat": SAO_PAULO[0],
         "lon": SAO_PAULO[1]}
        for recorded, received in pings
    ])  # fmt: skip


def pings_delete() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tracking_ping")


# Uploads in the order the server received them, each a list of recording times (seconds
# after noon); upload i arrives at noon + 20 min + i seconds, so received times differ.
uploads_strategy = st.lists(st.lists(st.integers(0, 600), min_size=1, max_size=4), min_size=1, max_size=8)


@PROPERTY
@given(cases=st.lists(uploads_strategy, min_size=CASES, max_size=CASES))
def test_a_ping_is_out_of_order_iff_an_earlier_upload_had_a_newer_ping(models_schema_dropped, cases):
    pings_delete()
    expected = {}
    for uploads in cases:
        courier = CourierFactory()
        out_of_order, newest = 0, None
        for upload in uploads:
            out_of_order += sum(1 for recorded in upload if newest is not None and recorded < newest)
            newest = max([*upload, *([newest] if newest is not None else [])])
        expected[str(courier.id)] = (sum(map(len, uploads)), out_of_order)
        pings_insert(
            courier_id=courier.id,
            pings=[
                (NOON + dt.timedelta(seconds=recorded), NOON + dt.timedelta(minutes=20, seconds=i))
                for i, upload in enumerate(uploads)
                for recorded in upload
            ],
        )
    dbt("run", "--select", "+int_ping_arrivals")
    found = rows(
        f"SELECT courier_id, count(*) AS pings, sum(CASE WHEN is_out_of_order THEN 1 ELSE 0 END) AS out_of_order "
        f"FROM {SCHEMA}.int_ping_arrivals GROUP BY courier_id"
    )
    assert {r["courier_id"]: (r["pings"], r["out_of_order"]) for r in found} == expected


@PROPERTY
@given(
    cases=st.lists(
        st.tuples(st.integers(1, 3600), st.lists(st.integers(-600, 4200), max_size=12)),
        min_size=CASES, max_size=CASES,
    )
)  # fmt: skip
def test_longest_transit_gap_is_the_longest_wait_between_start_pings_and_end(models_schema_dropped, cases):
    pings_delete()
    expected = {}
    for trip_s, ping_s in cases:
        courier = CourierFactory()
        inside = sorted({s for s in ping_s if 0 < s < trip_s})
        moments = [0, *inside, trip_s]
        order = OrderFactory(courier=courier, status="delivered")
        Order.objects.filter(pk=order.pk).update(started_at=NOON, delivered_at=NOON + dt.timedelta(seconds=trip_s))
        expected[str(order.id)] = (float(max(b - a for a, b in zip(moments, moments[1:], strict=False))), len(inside))
        # Pings before the start and after the end belong to other trips: not counted.
        pings_insert(
            courier_id=courier.id,
            pings=[(NOON + dt.timedelta(seconds=s), NOON + dt.timedelta(seconds=s)) for s in sorted(set(ping_s))],
        )
    dbt("run", "--select", "+fct_deliveries")
    found = rows(f"SELECT order_id, longest_gap_s, pings_in_transit FROM {SCHEMA}.fct_deliveries")
    got = {r["order_id"]: (r["longest_gap_s"], r["pings_in_transit"]) for r in found}
    assert {order_id: got[order_id] for order_id in expected} == expected
