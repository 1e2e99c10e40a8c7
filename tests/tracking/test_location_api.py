from __future__ import annotations

import pytest
from django.utils import timezone

from tests.conftest import ping
from tracking.services.ingest import ping_batch_record


def record(courier, pings):
    ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=pings)


def test_order_location_shows_the_newest_position_with_distance_and_eta(staff_api, courier, in_transit_order):
    record(courier, [ping(seconds_ago=20, lat=-23.5700), ping(seconds_ago=10, lat=-23.5690)])

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
    record(courier, [ping(lat=-23.58)])

    body = staff_api.get(f"/api/v1/couriers/{courier.id}/location").json()

    assert body["courier_id"] == str(courier.id) and body["location"]["lat"] == pytest.approx(-23.58)
    assert courier_api.get(f"/api/v1/couriers/{courier.id}/location").status_code == 403


def test_track_is_geojson_in_device_time_order_without_suspect_pings(staff_api, courier_api, courier, in_transit_order):
    pings = [ping(seconds_ago=s, lat=-23.56 - s * 0.00001, speed_mps=4.0) for s in (30, 90, 60)]
    record(courier, pings)
    record(courier, [ping(seconds_ago=45, lat=-20.0)])  # hundreds of km away: flagged

    track = staff_api.get(f"/api/v1/orders/{in_transit_order.id}/track").json()

    assert track["type"] == "FeatureCollection"
    times = [f["properties"]["recorded_at"] for f in track["features"]]
    assert times == sorted(times) and len(times) == 3
    first = track["features"][0]
    assert first["geometry"]["type"] == "Point"
    assert first["geometry"]["coordinates"][1] == pytest.approx(-23.56 - 90 * 0.00001)
    assert first["properties"]["speed_mps"] == 4.0 and first["properties"]["accuracy_m"] == 5.0
    assert courier_api.get(f"/api/v1/orders/{in_transit_order.id}/track").status_code == 403
