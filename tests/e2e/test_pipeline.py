"""The whole flow of the README, over HTTP, through a real Celery worker and broker."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.support.api import token_client, token_login
from tests.support.builders import order_event, ping
from tests.support.waiting import wait_for


def login(username: str, password: str) -> APIClient:
    return token_client(token_login(username, password)["token"])


def test_staff_courier_and_order_flow_end_to_end(worker, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "boss")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "boss-pass-123456")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "boss@example.com")
    call_command("createsuperuser", "--noinput")
    staff = login("boss", "boss-pass-123456")

    courier = staff.post(
        "/api/v1/couriers", {"name": "Ana Souza", "username": "ana", "password": "ana-pass-123456"}, format="json"
    ).json()
    order = staff.post(
        "/api/v1/orders", {"consumer_name": "Maria", "destination": {"lat": -23.5614, "lon": -46.6559}}, format="json"
    ).json()
    app = login("ana", "ana-pass-123456")

    def act(kind, lat, seconds_ago=0):
        body = order_event(kind, lat=lat, lon=-46.6559, seconds_ago=seconds_ago)
        response = app.post(f"/api/v1/orders/{order['id']}/events", body, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    act("assigned", -23.5750, seconds_ago=120)
    assert act("started", -23.5740, seconds_ago=60)["status"] == "in_transit"
    batch = [ping(seconds_ago=3 - i, lat=-23.5700 + i * 0.0001, lon=-46.6559) for i in range(3)]
    assert app.post("/api/v1/locations", {"pings": batch}, format="json").status_code == 202

    location = wait_for(
        lambda: (
            (body := staff.get(f"/api/v1/orders/{order['id']}/location").json())["location"]
            and body["location"]["lat"] == pytest.approx(-23.5698)
            and body
        ),
        timeout=5,
        message="the order location to reach the newest ping",
    )
    assert location["courier"]["id"] == courier["id"]
    assert 0 < location["distance_to_destination_m"] < 1500
    assert app.get(f"/api/v1/orders/{order['id']}/location").status_code == 200

    act("delivered", -23.5697)
    track = staff.get(f"/api/v1/orders/{order['id']}/track").json()
    assert len(track["features"]) == 6  # three actions and three pings
    assert staff.get(f"/api/v1/orders/{order['id']}").json()["status"] == "delivered"
