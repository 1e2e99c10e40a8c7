from __future__ import annotations

import pytest

from couriers.models import ApiToken
from couriers.services import api_token_create
from orders.models import Order
from tests.support.builders import ping, pings_record


@pytest.fixture
def admin_client_(client, staff):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def test_support_lists_and_searches_every_model(admin_client_, courier, in_transit_order):
    pings_record(courier, [ping()])

    for url in [
        "couriers/courier",
        "orders/order",
        "tracking/ping",
        "tracking/orderlastlocation",
        "tracking/courierlastlocation",
    ]:
        assert admin_client_.get(f"/admin/{url}/").status_code == 200, url
    found = admin_client_.get("/admin/orders/order/", {"q": in_transit_order.tracking_code})
    assert str(in_transit_order.id) in found.content.decode()
    assert (
        admin_client_.get("/admin/tracking/ping/", {"recorded_at__gte": "2000-01-01 00:00:00+00:00"}).status_code == 200
    )


def test_order_page_draws_the_trail_and_destination_on_a_map(admin_client_, courier, in_transit_order):
    pings_record(courier, [ping(lat=-23.5701)])

    page = admin_client_.get(f"/admin/orders/order/{in_transit_order.id}/change/").content.decode()

    assert 'id="trail-map"' in page and "-23.5701" in page and "vendor/leaflet/leaflet.js" in page


def test_cancel_action_and_token_reset_action(admin_client_, courier, in_transit_order):
    api_token_create(user=courier.user, device="phone")
    api_token_create(user=courier.user, device="tablet")

    admin_client_.post("/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [in_transit_order.id]})
    admin_client_.post("/admin/couriers/courier/", {"action": "reset_tokens", "_selected_action": [courier.id]})

    assert Order.objects.get(id=in_transit_order.id).status == "cancelled"
    assert not ApiToken.objects.filter(user=courier.user).exists()


def test_admin_needs_staff(client, courier):
    client.force_login(courier.user)

    assert client.get("/admin/orders/order/").status_code == 302


def test_raw_pings_list_shows_the_last_hour_unless_narrowed_by_date_or_search(admin_client_, courier):
    old, new = ping(seconds_ago=2 * 3600), ping()
    pings_record(courier, [old, new])

    default = admin_client_.get("/admin/tracking/ping/").content.decode()
    by_date = admin_client_.get(
        "/admin/tracking/ping/", {"recorded_at__gte": "2000-01-01 00:00:00+00:00"}
    ).content.decode()
    by_id = admin_client_.get("/admin/tracking/ping/", {"q": old["event_id"]}).content.decode()

    assert new["event_id"] in default and old["event_id"] not in default
    assert old["event_id"] in by_date and old["event_id"] in by_id
