"""An order's last location (`GET /api/v1/orders/{id}/location`, polled by courier apps
and the backoffice), a courier's, and an order's trail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from couriers.models import ApiToken
from couriers.services import api_token_create
from infra.http.renderers import JSONRenderer
from orders.models import Order
from tests.support.api import token_client
from tests.support.builders import UserFactory, ping, pings_record
from tracking.models import OrderLastLocation
from tracking.serializers import OrderLocationSerializer


def test_order_location_shows_the_newest_position_with_distance_and_eta(staff_api, courier, in_transit_order):
    pings_record(courier, [ping(seconds_ago=20, lat=-23.5700), ping(seconds_ago=10, lat=-23.5690)])

    body = staff_api.get(f"/api/v1/orders/{in_transit_order.id}/location").json()

    assert body["order_id"] == str(in_transit_order.id) and body["status"] == "in_transit"
    assert body["courier"] == {"id": str(courier.id), "name": "Ana Souza"}
    assert body["location"]["lat"] == pytest.approx(-23.5690)
    assert body["distance_to_destination_m"] > 0 and body["eta_seconds"] > 0 and body["updated_at"]


def test_order_without_any_position_has_null_location(staff_api, order):
    body = staff_api.get(f"/api/v1/orders/{order.id}/location").json()

    assert body["location"] is None and body["courier"] is None and body["eta_seconds"] is None


def test_assigned_courier_reads_its_order_location_and_others_cannot(
    courier_api, other_courier_api, anonymous_api, in_transit_order
):
    assert courier_api.get(f"/api/v1/orders/{in_transit_order.id}/location").status_code == 200
    assert other_courier_api.get(f"/api/v1/orders/{in_transit_order.id}/location").status_code == 404
    assert anonymous_api.get(f"/api/v1/orders/{in_transit_order.id}/location").status_code == 401


def test_unknown_order_is_404(staff_api):
    assert staff_api.get("/api/v1/orders/00000000-0000-0000-0000-000000000000/location").status_code == 404


def test_courier_location_is_staff_only(staff_api, courier_api, courier):
    pings_record(courier, [ping(lat=-23.58)])

    body = staff_api.get(f"/api/v1/couriers/{courier.id}/location").json()

    assert body["courier_id"] == str(courier.id) and body["location"]["lat"] == pytest.approx(-23.58)
    assert courier_api.get(f"/api/v1/couriers/{courier.id}/location").status_code == 403


def test_track_is_geojson_in_device_time_order_without_suspect_pings(staff_api, courier_api, courier, in_transit_order):
    pings = [ping(seconds_ago=s, lat=-23.56 - s * 0.00001, speed_mps=4.0) for s in (30, 90, 60)]
    pings_record(courier, pings)
    pings_record(courier, [ping(seconds_ago=45, lat=-20.0)])  # hundreds of km away: flagged

    track = staff_api.get(f"/api/v1/orders/{in_transit_order.id}/track").json()

    assert track["type"] == "FeatureCollection"
    times = [f["properties"]["recorded_at"] for f in track["features"]]
    assert times == sorted(times) and len(times) == 3
    first = track["features"][0]
    assert first["geometry"]["type"] == "Point"
    assert first["geometry"]["coordinates"][1] == pytest.approx(-23.56 - 90 * 0.00001)
    assert first["properties"]["speed_mps"] == 4.0 and first["properties"]["accuracy_m"] == 5.0
    assert courier_api.get(f"/api/v1/orders/{in_transit_order.id}/track").status_code == 403


def serializer_bytes(order_id) -> bytes:
    """What `OrderLocationSerializer` makes of the order, as the API renders it."""
    order = Order.objects.select_related("courier", "last_location").get(id=order_id)
    return JSONRenderer().render(OrderLocationSerializer(order).data)


def last_location_set(order, **values) -> None:
    now = timezone.now()
    OrderLastLocation.objects.update_or_create(
        order=order,
        defaults={"courier": order.courier, "recorded_at": now - dt.timedelta(seconds=3), "updated_at": now, **values},
    )


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["pinged", "pending", "assigned_unseen", "nulls"])
def test_the_location_is_the_serializers_payload_byte_for_byte(staff_api, courier_api, courier, case):
    """The route renders plain values without the serializer's field walk: the same bytes."""
    order = {
        "pending": lambda: Order.objects.create(consumer_name="C", destination=Point(-46.6, -23.5, srid=4326)),
        "assigned_unseen": lambda: Order.objects.create(
            consumer_name="C", destination=Point(-46.61, -23.51, srid=4326), courier=courier, status="assigned"
        ),
    }.get(case, lambda: Order.objects.create(
        consumer_name="C", destination=Point(-46.62, -23.52, srid=4326), courier=courier, status="in_transit"
    ))()  # fmt: skip
    if case == "pinged":
        pings_record(courier, [ping(lat=-23.5601, order_id=str(order.id))])
    if case == "nulls":
        last_location_set(order, location=Point(-46.6, -23.55, srid=4326), accuracy_m=None)

    response = staff_api.get(f"/api/v1/orders/{order.id}/location")

    assert response.status_code == 200
    assert response.content == serializer_bytes(order.id)
    if case == "pinged":
        assert response.json()["location"]["lat"] == pytest.approx(-23.5601) and response.json()["eta_seconds"]
    if order.courier_id:
        assert courier_api.get(f"/api/v1/orders/{order.id}/location").content == response.content


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    destination=st.tuples(st.floats(-180, 180), st.floats(-90, 90)),
    position=st.tuples(st.floats(-180, 180), st.floats(-90, 90)),
    accuracy=st.none() | st.floats(0, 100_000),
)
def test_coordinates_are_the_stored_floats_exactly(staff_api, in_transit_order, destination, position, accuracy):
    """The route reads coordinates as PostgreSQL computes them, not through geometry objects."""
    Order.objects.filter(id=in_transit_order.id).update(destination=Point(*destination, srid=4326))
    last_location_set(in_transit_order, location=Point(*position, srid=4326), accuracy_m=accuracy)

    assert staff_api.get(f"/api/v1/orders/{in_transit_order.id}/location").content == serializer_bytes(
        in_transit_order.id
    )


@pytest.mark.django_db
def test_a_session_reads_the_location_as_a_token_does(client, staff, courier, courier_api, in_transit_order):
    """The backoffice's pages send the session cookie, not a token: the order is read on its own."""
    pings_record(courier, [ping(lat=-23.5611)])
    client.force_login(staff)

    response = client.get(f"/api/v1/orders/{in_transit_order.id}/location")

    assert response.status_code == 200
    assert response.content == courier_api.get(f"/api/v1/orders/{in_transit_order.id}/location").content
    client.force_login(courier.user)
    assert client.get(f"/api/v1/orders/{in_transit_order.id}/location").status_code == 200
    client.force_login(UserFactory())
    assert client.get(f"/api/v1/orders/{in_transit_order.id}/location").status_code == 403


def location_status(token: str, order) -> int:
    return token_client(token).get(f"/api/v1/orders/{order.id}/location").status_code


@pytest.mark.django_db
def test_the_location_refuses_an_expired_token_and_deletes_it(courier, in_transit_order):
    stored, token = api_token_create(user=courier.user)
    ApiToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))

    assert location_status(token, in_transit_order) == 401
    assert not ApiToken.objects.filter(pk=stored.pk).exists()


@pytest.mark.django_db
def test_the_location_refuses_a_revoked_token_on_its_next_request(courier, in_transit_order):
    stored, token = api_token_create(user=courier.user)
    assert location_status(token, in_transit_order) == 200

    stored.delete()

    assert location_status(token, in_transit_order) == 401


@pytest.mark.django_db
def test_the_location_refuses_an_inactive_user(courier, in_transit_order):
    _, token = api_token_create(user=courier.user)
    type(courier.user).objects.filter(pk=courier.user.pk).update(is_active=False)

    assert location_status(token, in_transit_order) == 401


@pytest.mark.django_db
def test_the_location_is_403_for_a_user_neither_staff_nor_courier_even_for_a_real_order(in_transit_order):
    _, token = api_token_create(user=UserFactory())

    assert location_status(token, in_transit_order) == 403
    assert location_status(token, Order(id="00000000-0000-0000-0000-000000000000")) == 403


@pytest.mark.django_db
def test_reading_the_location_renews_the_token(courier, in_transit_order):
    stored, token = api_token_create(user=courier.user)
    soon = timezone.now() + dt.timedelta(minutes=1)
    ApiToken.objects.filter(pk=stored.pk).update(expiry=soon)

    assert location_status(token, in_transit_order) == 200
    assert ApiToken.objects.get(pk=stored.pk).expiry > soon + dt.timedelta(minutes=30)


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Token caf\u00e9", "Token " + "0" * 64, "Token", "Token a b"])
def test_the_location_answers_a_malformed_or_unknown_token_401_with_the_scheme_to_use(in_transit_order, header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get(f"/api/v1/orders/{in_transit_order.id}/location")

    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_the_location_without_credentials_is_401(in_transit_order):
    response = APIClient().get(f"/api/v1/orders/{in_transit_order.id}/location")

    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
