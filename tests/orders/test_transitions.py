from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from orders.models import Notification, Order, OrderEvent
from orders.signals import order_event_recorded
from tests.support.api import client_for
from tests.support.builders import CourierFactory, OrderFactory, order_act, order_event
from tracking.models import OrderLastLocation, Ping


def event(api, order, type_, *, event_id=None, lat=-23.56, lon=-46.65):
    body = order_event(type_, event_id=event_id, lat=lat, lon=lon, accuracy_m=8)
    return api.post(f"/api/v1/orders/{order.id}/events", body, format="json")


def test_courier_takes_starts_and_delivers_an_order(courier_api, courier, order):
    assert event(courier_api, order, "assigned").json()["status"] == "assigned"
    assert event(courier_api, order, "started").json()["status"] == "in_transit"
    response = event(courier_api, order, "delivered", lat=-23.5614, lon=-46.6559)

    assert response.status_code == 201
    order.refresh_from_db()
    assert order.status == "delivered" and order.courier == courier
    assert order.assigned_at and order.started_at and order.delivered_at
    assert OrderEvent.objects.filter(order=order).count() == 3


def test_event_location_is_stored_as_a_ping_of_the_order(courier_api, courier, order):
    event_id = uuid.uuid4()

    event(courier_api, order, "assigned", event_id=event_id, lat=-23.57, lon=-46.66)

    stored = Ping.objects.get(event_id=event_id)
    assert stored.order_id == order.id and stored.attributes == {"order_event": "assigned"}
    assert OrderLastLocation.objects.get(order=order).location.y == pytest.approx(-23.57)


def test_a_listener_that_fails_rolls_the_whole_action_back(courier, order):
    """Listeners run inside the action's transaction: nothing of it commits without them."""

    def failing_listener(**kwargs):
        raise RuntimeError("listener failed")

    order_event_recorded.connect(failing_listener, dispatch_uid="test-failing-listener")
    try:
        with pytest.raises(RuntimeError):
            order_act(order, courier, "assigned")
    finally:
        order_event_recorded.disconnect(dispatch_uid="test-failing-listener")

    order.refresh_from_db()
    assert order.status == "pending" and order.courier_id is None
    assert not OrderEvent.objects.filter(order=order).exists()
    assert not Notification.objects.filter(order=order).exists()
    assert not Ping.objects.filter(courier_id=courier.id).exists()


def test_impossible_transition_is_409_with_the_current_status(courier_api, order):
    response = event(courier_api, order, "delivered")

    assert response.status_code == 409
    assert response.json()["status"] == "pending"


def test_another_couriers_order_is_404(courier_api, other_courier_api, order):
    event(courier_api, order, "assigned")

    assert event(other_courier_api, order, "started").status_code == 404
    assert other_courier_api.get(f"/api/v1/orders/{order.id}/location").status_code == 404
    assert other_courier_api.get(f"/api/v1/orders/{order.id}").status_code == 404


def test_taking_an_order_another_courier_already_took_is_404(courier_api, other_courier_api, order):
    """Once taken, the order is the other courier's: it is not revealed, even to a stale
    app screen that still shows it pending (a race while it is pending is a 409, below)."""
    event(courier_api, order, "assigned")
    order.status = "pending"  # what a stale app screen believes
    assert event(other_courier_api, order, "assigned").status_code == 404


def test_same_event_id_gets_the_same_answer_and_is_applied_once(courier_api, order):
    event_id = uuid.uuid4()
    first = event(courier_api, order, "assigned", event_id=event_id)

    again = event(courier_api, order, "assigned", event_id=event_id)

    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert OrderEvent.objects.filter(order=order).count() == 1


def test_two_couriers_events_with_the_same_event_id_both_apply(courier_api, other_courier_api, courier, other_courier):
    first_order, second_order = OrderFactory(), OrderFactory()
    event_id = uuid.uuid4()

    assert event(courier_api, first_order, "assigned", event_id=event_id).status_code == 201
    assert event(other_courier_api, second_order, "assigned", event_id=event_id).status_code == 201

    first_order.refresh_from_db()
    second_order.refresh_from_db()
    assert (first_order.courier, second_order.courier) == (courier, other_courier)
    assert OrderEvent.objects.filter(event_id=event_id).count() == 2
    assert Ping.objects.filter(event_id=event_id).count() == 2


def test_staff_cancellations_record_an_event_without_a_courier(staff_api, courier_api, order):
    event(courier_api, order, "assigned")
    other = Order.objects.create(consumer_name="Zé", destination=order.destination)

    staff_api.post(f"/api/v1/orders/{order.id}/cancel")
    staff_api.post(f"/api/v1/orders/{other.id}/cancel")

    cancellations = OrderEvent.objects.filter(type="cancelled")
    assert cancellations.count() == 2 and not cancellations.filter(courier__isnull=False).exists()


def test_event_id_reused_for_another_action_is_409(courier_api, order):
    event_id = uuid.uuid4()
    event(courier_api, order, "assigned", event_id=event_id)

    assert event(courier_api, order, "started", event_id=event_id).status_code == 409


def test_bad_event_payload_is_400(courier_api, order):
    response = courier_api.post(
        f"/api/v1/orders/{order.id}/events",
        {"type": "teleported", "event_id": "x", "recorded_at": "yesterday", "location": {"lat": 200}},
        format="json",
    )

    assert response.status_code == 400
    assert {"type", "event_id", "recorded_at", "location"} <= set(response.json())


def test_staff_cannot_send_courier_events(staff_api, order):
    assert event(staff_api, order, "assigned").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_two_couriers_racing_for_one_order_only_one_gets_it(order):
    racers = [CourierFactory(), CourierFactory()]
    results = []
    barrier = threading.Barrier(2)

    def take(courier):
        barrier.wait()
        results.append(event(client_for(courier.user), order, "assigned").status_code)
        connection.close()

    threads = [threading.Thread(target=take, args=(c,)) for c in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sorted(results) == [201, 409]
    assert Order.objects.get(id=order.id).courier in racers


def test_staff_cancel_and_cannot_cancel_twice(staff_api, courier_api, order):
    event(courier_api, order, "assigned")

    assert staff_api.post(f"/api/v1/orders/{order.id}/cancel").json()["status"] == "cancelled"
    again = staff_api.post(f"/api/v1/orders/{order.id}/cancel")
    assert again.status_code == 409 and again.json()["status"] == "cancelled"


def test_couriers_cannot_cancel(courier_api, order):
    assert courier_api.post(f"/api/v1/orders/{order.id}/cancel").status_code == 403


def test_late_event_time_outside_the_window_is_400(courier_api, order):
    response = courier_api.post(
        f"/api/v1/orders/{order.id}/events",
        order_event("assigned", seconds_ago=8 * 86400),
        format="json",
    )

    assert response.status_code == 400
    assert "recorded_at" in response.json()


@pytest.mark.parametrize(
    "location, field",
    [
        ({"lat": -23.56, "lon": -46.65, "accuracy_m": 1e39}, "accuracy_m"),  # past single precision
        ({"lat": -23.56, "lon": -46.65, "accuracy_m": 1e6}, "accuracy_m"),  # not a GPS fix
        ({"lat": 1e39, "lon": -46.65}, "lat"),
    ],
)
def test_event_location_that_cannot_be_stored_is_400_and_changes_nothing(courier_api, order, location, field):
    response = courier_api.post(
        f"/api/v1/orders/{order.id}/events",
        {"type": "assigned", "event_id": str(uuid.uuid4()), "recorded_at": timezone.now().isoformat(),
         "location": location},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400, response.content
    assert field in response.json()["location"]
    order.refresh_from_db()
    assert order.status == "pending" and not OrderEvent.objects.exists()


def test_event_with_text_that_is_not_unicode_is_400_not_500(courier_api, order):
    response = courier_api.post(
        f"/api/v1/orders/{order.id}/events",
        '{"type": "\\ud800", "event_id": "\\udfff", "recorded_at": "\\ud800", "location": {"lat": 1, "lon": 1}}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "surrogate" in response.json()["detail"]


def test_event_location_accuracy_below_single_precision_is_stored_as_zero(courier_api, order):
    response = courier_api.post(
        f"/api/v1/orders/{order.id}/events",
        {"type": "assigned", "event_id": str(uuid.uuid4()), "recorded_at": timezone.now().isoformat(),
         "location": {"lat": -23.56, "lon": -46.65, "accuracy_m": 1e-50}},
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.content
    assert OrderEvent.objects.get().accuracy_m == 0
    assert Ping.objects.get().accuracy_m == 0
