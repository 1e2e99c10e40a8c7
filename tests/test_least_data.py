"""Least data: bounded pages, a courier sees of an order it may take only what taking it
needs, and a tracking link shows only the status some time after the order ended."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.support.builders import OrderFactory, order_act


@pytest.mark.django_db
def test_no_page_is_larger_than_the_maximum(staff_api, courier_api):
    OrderFactory.create_batch(7)

    with override_settings(API_PAGE_MAX=5):
        for api in (staff_api, courier_api):
            body = api.get("/api/v1/orders", {"limit": 1_000_000}).json()
            assert len(body["results"]) == 5 and body["count"] == 7 and body["next"]


@pytest.mark.django_db
def test_a_courier_sees_of_an_order_it_may_take_only_the_area_not_the_consumer(courier_api, courier):
    order = OrderFactory(consumer_name="Maria Secreta", external_id="ext-42")

    listed = next(o for o in courier_api.get("/api/v1/orders").json()["results"] if o["id"] == str(order.id))
    single = courier_api.get(f"/api/v1/orders/{order.id}").json()

    for body in (listed, single):
        assert body["consumer_name"] is None and body["destination"] is None and body["external_id"] is None
        assert body["destination_area"] == {"lat": -23.56, "lon": -46.66}  # about 1 km, rounded
        assert "Secreta" not in str(body) and "-23.5614" not in str(body)

    order_act(order, courier, "assigned")
    mine = courier_api.get(f"/api/v1/orders/{order.id}").json()
    assert mine["consumer_name"] == "Maria Secreta"
    assert mine["destination"] == {"lat": pytest.approx(-23.5614), "lon": pytest.approx(-46.6559)}


@pytest.mark.django_db
def test_staff_see_the_whole_order(staff_api):
    order = OrderFactory(consumer_name="Maria Secreta")

    body = staff_api.get(f"/api/v1/orders/{order.id}").json()

    assert body["consumer_name"] == "Maria Secreta" and body["destination"]["lat"] == pytest.approx(-23.5614)


@pytest.mark.django_db
@pytest.mark.parametrize("ending", ["delivered", "cancelled"])
def test_a_tracking_link_shows_only_the_status_some_time_after_the_order_ended(anonymous_api, courier, ending):
    ended = timezone.now() - dt.timedelta(hours=2)
    stamps = {"delivered_at": ended} if ending == "delivered" else {"cancelled_at": ended}
    order = OrderFactory(status=ending, courier=courier, assigned_at=ended, **stamps)

    with override_settings(TRACKING_LINK_TTL_AFTER_END_S=3 * 3600):
        fresh = anonymous_api.get(f"/api/v1/track/{order.tracking_code}").json()
    with override_settings(TRACKING_LINK_TTL_AFTER_END_S=3600):
        late = anonymous_api.get(f"/api/v1/track/{order.tracking_code}").json()
        page = anonymous_api.get(f"/t/{order.tracking_code}").content.decode()

    assert fresh["destination"] is not None
    assert late["status"] == ending and late["status_label"]
    assert {k for k, v in late.items() if v is not None} == {"status", "status_label"}
    assert "-46.6559" not in page and "-23.5614" not in page
