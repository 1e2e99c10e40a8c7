"""`OneRowQuery` builds what the ORM builds from the same queryset, in one query per call."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order
from tests.conftest import ping
from tests.factories import UserFactory
from tracking.services.ingest import ping_batch_record
from ze_tracking.queries import OneRowQuery

ORDER = OneRowQuery(lambda: Order.objects.select_related("courier", "last_location"), field="id")


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


@pytest.mark.django_db
def test_it_reads_what_the_orm_reads_with_the_related_rows(courier, in_transit_order):
    ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(lat=-23.57)])
    expected = Order.objects.select_related("courier", "last_location").get(id=in_transit_order.id)

    with CaptureQueriesContext(connection) as queries:
        order = ORDER.get(str(in_transit_order.id))  # the value is converted as a filter would
        assert fields(order) == fields(expected)
        assert fields(order.courier) == fields(expected.courier)
        assert fields(order.last_location) == fields(expected.last_location)
        assert order.destination.srid == 4326 and order.last_location.location.y == pytest.approx(-23.57)

    assert len(queries.captured_queries) == 1


@pytest.mark.django_db
def test_a_missing_related_row_is_known_missing_and_a_missing_row_is_none(order):
    with CaptureQueriesContext(connection) as queries:
        found = ORDER.get(order.id)
        assert found.courier is None and not hasattr(found, "last_location")
        assert ORDER.get(uuid.uuid4()) is None

    assert len(queries.captured_queries) == 2


@pytest.mark.django_db
def test_each_call_reads_the_database_again(order):
    assert ORDER.get(order.id).status == "pending"
    Order.objects.filter(id=order.id).update(status="cancelled")

    assert ORDER.get(order.id).status == "cancelled"
    Order.objects.filter(id=order.id).delete()
    assert ORDER.get(order.id) is None


@pytest.mark.django_db
def test_a_reverse_one_to_one_is_cached_whether_or_not_it_exists(courier):
    from couriers.models import User

    users = OneRowQuery(lambda: User.objects.select_related("courier"), field="username")
    staff = UserFactory(username="someone-without-a-courier")

    with CaptureQueriesContext(connection) as queries:
        assert users.get(courier.user.username).courier.id == courier.id
        assert not hasattr(users.get(staff.username), "courier")

    assert len(queries.captured_queries) == 2


def executions_of_prepared_order_reads() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ['SELECT "orders_order"."id"%'],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_its_statement_is_prepared_once_per_connection_and_reused(order):
    ORDER.get(order.id)
    [before] = executions_of_prepared_order_reads()  # one statement on this connection
    for _ in range(3):
        ORDER.get(order.id)

    assert executions_of_prepared_order_reads() == [before + 3]


@pytest.mark.django_db
def test_a_batch_with_a_refused_ping_is_stored_once_after_a_prepared_read(courier, in_transit_order):
    """The worker's split-and-retry rolls back to savepoints on the same connection as the
    prepared reads: each good ping is stored once, the bad one dead-lettered once."""
    from tracking.models import Ping, PingDeadLetter

    ORDER.get(in_transit_order.id)
    batch = [ping(seconds_ago=10 - i, lat=-23.5700 + i * 0.0001) for i in range(7)]
    batch[3]["accuracy_m"] = 1e39  # outside float4: the database refuses it

    assert ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=batch) == 6
    stored = list(Ping.objects.values_list("event_id", flat=True))
    assert sorted(str(e) for e in stored) == sorted(p["event_id"] for i, p in enumerate(batch) if i != 3)
    assert PingDeadLetter.objects.count() == 1
    ORDER.get(in_transit_order.id)
