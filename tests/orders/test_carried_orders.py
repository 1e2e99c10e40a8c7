"""What the ping worker asks `orders` about a batch's couriers: their active orders and the
orders their pings name, in one query per batch."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.selectors import couriers_carried_orders
from tests.support.builders import CourierFactory, OrderFactory


@pytest.mark.django_db
def test_carried_orders_are_the_active_ones_and_the_named_ones_of_the_couriers_in_one_query(courier, other_courier):
    assigned = OrderFactory(courier=courier, status="assigned")
    in_transit = OrderFactory(courier=other_courier, status="in_transit", destination=Point(-46.61, -23.52, srid=4326))
    delivered_named = OrderFactory(courier=courier, status="delivered")
    delivered_unnamed = OrderFactory(courier=courier, status="delivered")
    elsewhere_named = OrderFactory(courier=CourierFactory(), status="delivered")
    elsewhere_active = OrderFactory(courier=CourierFactory(), status="assigned")

    with CaptureQueriesContext(connection) as queries:
        carried = couriers_carried_orders(
            courier_ids=[courier.id, other_courier.id], named_ids=[delivered_named.id, elsewhere_named.id]
        )

    assert len(queries.captured_queries) == 1
    assert {o.id for o in carried} == {assigned.id, in_transit.id, delivered_named.id}
    assert {o.id: o.active for o in carried} == {assigned.id: True, in_transit.id: True, delivered_named.id: False}
    row = next(o for o in carried if o.id == in_transit.id)
    assert (row.courier_id, row.status) == (other_courier.id, "in_transit")
    assert (row.destination_lat, row.destination_lon) == pytest.approx((-23.52, -46.61))
    assert delivered_unnamed.id not in {o.id for o in carried} and elsewhere_active.id not in {o.id for o in carried}
