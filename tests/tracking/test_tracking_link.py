"""The consumer's tracking link (`/api/v1/track/{code}`) and page (`/t/{code}`): no login,
and the courier's position only while the order is in transit."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from django.conf import settings
from django.contrib.gis.geos import Point
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.test import APIClient

from orders.models import Order
from tests.support.builders import SAO_PAULO, OrderFactory
from tracking.models import OrderLastLocation
from tracking.tracking_link import (
    PublicOrderState,
    PublicOrderStateSerializer,
    order_public_state_build,
    order_public_state_get,
)

STATUS_LABELS = {
    "pending": "Pedido recebido",
    "assigned": "Entregador a caminho da loja",
    "in_transit": "Saiu para entrega",
    "delivered": "Pedido entregue",
    "cancelled": "Pedido cancelado",
}


def order_in(status: str, courier):
    now = timezone.now()
    stamps = {
        "pending": {},
        "assigned": {"assigned_at": now},
        "in_transit": {"assigned_at": now, "started_at": now},
        "delivered": {"assigned_at": now, "started_at": now, "delivered_at": now},
        "cancelled": {"assigned_at": now, "cancelled_at": now},
    }[status]
    order = OrderFactory(status=status, courier=None if status == "pending" else courier, **stamps)
    if status != "pending":
        # The courier has a last position for every order it ever carried.
        OrderLastLocation.objects.create(
            order=order, courier=courier, location=Point(SAO_PAULO[1], SAO_PAULO[0] - 0.01, srid=4326),
            recorded_at=now - dt.timedelta(seconds=5), updated_at=now, distance_to_destination_m=1100,
            eta_seconds=238,
        )  # fmt: skip
    return order


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["pending", "assigned", "in_transit", "delivered", "cancelled"])
def test_the_tracking_link_shows_the_courier_only_while_in_transit(anonymous_api, courier, status):
    order = order_in(status, courier)

    response = anonymous_api.get(f"/api/v1/track/{order.tracking_code}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "status", "status_label", "eta_seconds", "courier_first_name", "location", "destination", "updated_at",
    }  # fmt: skip
    assert body["status"] == status and body["status_label"] == STATUS_LABELS[status]
    assert body["destination"] == {"lat": pytest.approx(SAO_PAULO[0]), "lon": pytest.approx(SAO_PAULO[1])}
    if status == "in_transit":
        assert body["location"]["lat"] == pytest.approx(SAO_PAULO[0] - 0.01)
        assert body["location"]["recorded_at"]
        assert body["eta_seconds"] == 238
    else:
        assert body["location"] is None and body["eta_seconds"] is None
    assert body["courier_first_name"] == ("Ana" if status in ("assigned", "in_transit") else None)
    # Never the courier's full name, id or account, whatever the status.
    text = response.content.decode()
    assert "Souza" not in text and str(courier.id) not in text and courier.user.username not in text
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_an_unknown_code_is_404_after_the_same_queries_as_a_known_one(anonymous_api, courier):
    order = order_in("in_transit", courier)
    with CaptureQueriesContext(connection) as known:
        assert anonymous_api.get(f"/api/v1/track/{order.tracking_code}").status_code == 200
    with CaptureQueriesContext(connection) as unknown:
        assert anonymous_api.get(f"/api/v1/track/{order.tracking_code[:-1]}x").status_code == 404

    assert len(known) == len(unknown) == 1
    assert anonymous_api.get("/api/v1/track/" + "a" * 300).status_code == 404


@pytest.mark.django_db
def test_the_tracking_link_ignores_credentials(courier_api, staff_api, courier):
    order = order_in("assigned", courier)
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    for client in (courier_api, staff_api, bad):
        assert client.get(f"/api/v1/track/{order.tracking_code}").json()["courier_first_name"] == "Ana"


@pytest.mark.django_db
@override_settings(THROTTLE_RATES={**settings.THROTTLE_RATES, "tracking_link_address": "3/min"})
def test_the_tracking_link_is_rate_limited_per_client(courier):
    order = order_in("assigned", courier)
    one, other = APIClient(REMOTE_ADDR="203.0.113.7"), APIClient(REMOTE_ADDR="203.0.113.8")

    codes = [one.get(f"/api/v1/track/{order.tracking_code}").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    # Guessing codes counts too.
    limited = one.get("/api/v1/track/guess")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert other.get(f"/api/v1/track/{order.tracking_code}").status_code == 200


# --- The page ---------------------------------------------------------------------------


def initial_state(html: str) -> dict:
    return json.loads(re.search(r'<script id="initial-state" type="application/json">(.*?)</script>', html).group(1))


@pytest.mark.django_db
def test_the_tracking_page_shows_status_eta_and_map_without_login(client, courier):
    order = order_in("in_transit", courier)

    response = client.get(f"/t/{order.tracking_code}")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="pt-BR">' in html and 'name="viewport"' in html
    assert "Saiu para entrega" in html
    state = initial_state(html)
    assert state["eta_seconds"] == 238 and state["location"]["lat"] == pytest.approx(SAO_PAULO[0] - 0.01)
    assert f"/api/v1/track/{order.tracking_code}" in html
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in html
    # Leaflet is served by us, never from a CDN.
    assert "/static/vendor/leaflet/leaflet.js" in html and "/static/tracking/track.js" in html
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html)
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_the_tracking_page_never_carries_the_courier_position_after_delivery(client, courier):
    order = order_in("delivered", courier)

    html = client.get(f"/t/{order.tracking_code}").content.decode()

    state = initial_state(html)
    assert state["location"] is None and state["courier_first_name"] is None
    assert "Pedido entregue" in html and "Souza" not in html


@pytest.mark.django_db
@override_settings(MAP_TILE_URL="https://tiles.example.test/{z}/{x}/{y}.png")
def test_the_map_tiles_come_from_the_setting(client, courier):
    html = client.get(f"/t/{order_in('assigned', courier).tracking_code}").content.decode()

    assert "https://tiles.example.test/{z}/{x}/{y}.png" in html


@pytest.mark.django_db
def test_an_unknown_tracking_page_is_404(client):
    assert client.get("/t/no-such-code").status_code == 404


@pytest.mark.django_db
@override_settings(THROTTLE_RATES={**settings.THROTTLE_RATES, "tracking_link_address": "2/min"})
def test_the_tracking_page_shares_the_links_rate_limit(client, courier):
    code = order_in("assigned", courier).tracking_code

    assert [client.get(f"/t/{code}").status_code for _ in range(2)] == [200, 200]
    limited = client.get("/t/guess")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert client.get(f"/api/v1/track/{code}").status_code == 429


def test_the_page_assets_are_vendored():
    for path in ("vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css", "vendor/leaflet/images/marker-icon.png",
                 "tracking/track.js"):  # fmt: skip
        assert finders.find(path), path
    assert "function applyState(state)" in open(finders.find("tracking/track.js")).read()


@pytest.mark.parametrize("code", ["ab%00cd", "ab%20cd", "%E2%9C%93", "a.b"])
def test_codes_outside_the_tracking_code_alphabet_are_404(client, code):
    assert client.get(f"/api/v1/track/{code}").status_code == 404
    assert client.get(f"/t/{code}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["pending", "assigned", "in_transit", "delivered", "cancelled"])
@pytest.mark.parametrize("ended_long_ago", [False, True])
def test_the_link_shows_what_the_live_updates_show(courier, status, ended_long_ago):
    """The link reads plain values by code; the live updates build the state from the
    orders they hold: the same rules give the same state."""
    order = order_in(status, courier)
    if ended_long_ago and status in ("delivered", "cancelled"):
        ended = timezone.now() - dt.timedelta(seconds=settings.TRACKING_LINK_TTL_AFTER_END_S + 60)
        Order.objects.filter(id=order.id).update(**{f"{status}_at": ended})
    held = Order.objects.select_related("courier", "last_location").get(id=order.id)

    state = order_public_state_get(tracking_code=order.tracking_code)

    assert state == order_public_state_build(order=held)


WHEN = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.sampled_from([dt.UTC, ZoneInfo("America/Sao_Paulo")]),
)
COORDINATES = st.fixed_dictionaries({"lat": st.floats(-90, 90), "lon": st.floats(-180, 180)})
STATES = st.builds(
    PublicOrderState,
    order_id=st.uuids(),
    status=st.sampled_from(list(STATUS_LABELS)),
    status_label=st.sampled_from(list(STATUS_LABELS.values())),
    eta_seconds=st.none() | st.integers(0, 10**6),
    courier_first_name=st.none() | st.text(max_size=20),
    location=st.none() | st.builds(lambda c, at: {**c, "recorded_at": at}, COORDINATES, WHEN),
    destination=st.none() | COORDINATES,
    updated_at=st.none() | WHEN,
)


@hypothesis.given(state=STATES)
@hypothesis.settings(max_examples=300, deadline=None)
def test_the_public_state_is_written_out_as_drf_would_walk_its_fields(state):
    serializer = PublicOrderStateSerializer()

    assert serializer.to_representation(state) == serializers.Serializer.to_representation(serializer, state)
