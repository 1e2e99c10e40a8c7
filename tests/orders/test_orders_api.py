from __future__ import annotations

import base64

from orders.models import Order


def create(api, **extra):
    return api.post(
        "/api/v1/orders",
        {"consumer_name": "Maria", "destination": {"lat": -23.56, "lon": -46.65}, **extra},
        format="json",
    )


def test_staff_creates_an_order_with_an_unguessable_tracking_code(staff_api):
    response = create(staff_api, external_id="ZE-1")

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending" and body["destination"] == {"lat": -23.56, "lon": -46.65}
    assert len(base64.urlsafe_b64decode(body["tracking_code"] + "==")) * 8 >= 128
    assert Order.objects.get(id=body["id"]).external_id == "ZE-1"


def test_duplicate_external_id_is_409_naming_the_existing_order(staff_api):
    first = create(staff_api, external_id="ZE-2").json()

    response = create(staff_api, external_id="ZE-2")

    assert response.status_code == 409
    assert response.json()["order_id"] == first["id"]


def test_order_with_bad_destination_is_400(staff_api):
    response = staff_api.post(
        "/api/v1/orders", {"consumer_name": "M", "destination": {"lat": 95, "lon": 0}}, format="json"
    )

    assert response.status_code == 400
    assert "destination" in response.json()


def test_couriers_cannot_create_orders(courier_api):
    assert create(courier_api).status_code == 403


def test_courier_lists_pending_orders_and_its_own_but_never_sees_tracking_codes(courier_api, other_courier, order):
    from tests.support.builders import OrderFactory

    theirs = OrderFactory(courier=other_courier, status="assigned")

    ids = [o["id"] for o in courier_api.get("/api/v1/orders").json()["results"]]

    assert str(order.id) in ids and str(theirs.id) not in ids
    assert "tracking_code" not in courier_api.get(f"/api/v1/orders/{order.id}").json()


def test_unknown_status_filter_is_400(staff_api):
    response = staff_api.get("/api/v1/orders", {"status": "teleported\x00"})

    assert response.status_code == 400
    assert "status" in response.json()
