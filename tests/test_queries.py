"""`OneRowQuery` builds what the ORM builds from the same queryset, in one query per call;
`OneRowQueries` runs several such reads in one statement."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from couriers.models import ApiToken
from infra.db.queries import OneRowQueries, OneRowQuery
from orders.models import Order
from tests.support.builders import UserFactory, ping, pings_record
from tracking.geo import Latitude, Longitude

ORDER = OneRowQuery(lambda: Order.objects.select_related("courier", "last_location"), field="id")


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


@pytest.mark.django_db
def test_it_reads_what_the_orm_reads_with_the_related_rows(courier, in_transit_order):
    pings_record(courier, [ping(lat=-23.57)])
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

    assert pings_record(courier, batch) == 6
    stored = list(Ping.objects.values_list("event_id", flat=True))
    assert sorted(str(e) for e in stored) == sorted(p["event_id"] for i, p in enumerate(batch) if i != 3)
    assert PingDeadLetter.objects.count() == 1
    ORDER.get(in_transit_order.id)


# The token a request carries and an order, in one statement (the location route's read).
TOKEN = OneRowQuery(lambda: ApiToken.objects.select_related("user", "user__courier"), field="digest")
TOKEN_AND_ORDER = OneRowQueries(TOKEN, ORDER)


@pytest.mark.django_db
def test_several_reads_in_one_statement_read_what_each_reads_alone(courier, in_transit_order):
    pings_record(courier, [ping(lat=-23.57)])
    token = ApiToken.objects.create(user=courier.user)[0]

    with CaptureQueriesContext(connection) as queries:
        found_token, order = TOKEN_AND_ORDER.get(token.digest, in_transit_order.id)

    assert len(queries.captured_queries) == 1
    alone = TOKEN.get(token.digest)
    assert fields(found_token) == fields(alone) and fields(found_token.user) == fields(alone.user)
    assert found_token.user.courier.id == courier.id
    expected = ORDER.get(in_transit_order.id)
    assert fields(order) == fields(expected) and fields(order.last_location) == fields(expected.last_location)


@pytest.mark.django_db
def test_a_missing_row_in_one_read_leaves_the_others(courier, order):
    token = ApiToken.objects.create(user=courier.user)[0]

    assert TOKEN_AND_ORDER.get(token.digest, uuid.uuid4())[1] is None
    assert TOKEN_AND_ORDER.get(token.digest, uuid.uuid4())[0].digest == token.digest
    assert TOKEN_AND_ORDER.get("0" * 128, order.id)[0] is None
    assert TOKEN_AND_ORDER.get("0" * 128, order.id)[1].id == order.id
    assert TOKEN_AND_ORDER.get("0" * 128, uuid.uuid4()) == (None, None)


ORDER_VALUES = OneRowQuery(
    lambda: Order.objects.values("id", "status", "courier__name", "last_location__recorded_at").annotate(
        lat=Latitude("last_location__location"), lon=Longitude("last_location__location")
    ),
    field="id",
)


@pytest.mark.django_db
def test_a_values_read_is_a_dict_of_converted_columns_and_plain_coordinates(courier, in_transit_order):
    pings_record(courier, [ping(lat=-23.5712345678901)])
    expected = ORDER.get(in_transit_order.id)

    row = ORDER_VALUES.get(in_transit_order.id)

    assert row == {
        "id": in_transit_order.id,
        "status": "in_transit",
        "courier__name": "Ana Souza",
        "last_location__recorded_at": expected.last_location.recorded_at,
        # The very floats the geometry holds, not approximations.
        "lat": expected.last_location.location.y,
        "lon": expected.last_location.location.x,
    }
    assert row["last_location__recorded_at"].tzinfo is not None
    assert OneRowQueries(ORDER_VALUES).get(in_transit_order.id) == (row,)


@pytest.mark.django_db
def test_a_values_read_of_an_order_without_related_rows_has_nulls_and_a_missing_one_is_none(order):
    assert ORDER_VALUES.get(order.id) == {
        "id": order.id, "status": "pending", "courier__name": None, "last_location__recorded_at": None,
        "lat": None, "lon": None,
    }  # fmt: skip
    assert ORDER_VALUES.get(uuid.uuid4()) is None
    assert OneRowQueries(TOKEN, ORDER_VALUES).get("0" * 128, uuid.uuid4()) == (None, None)


def test_a_values_read_must_select_the_primary_key(db):
    # In one statement, a NULL primary key is what tells a missing row.
    with pytest.raises(ValueError, match="primary key"):
        OneRowQuery(lambda: Order.objects.values("status"), field="id").get(uuid.uuid4())
