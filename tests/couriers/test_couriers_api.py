from __future__ import annotations

from tests.support.api import token_login, token_post


def test_staff_creates_a_courier_who_then_logs_in(staff_api):
    response = staff_api.post(
        "/api/v1/couriers", {"name": "Carla Dias", "username": "carla", "password": "long-enough-pass-1"}, format="json"
    )

    assert response.status_code == 201
    assert set(response.json()) == {"id", "name", "username"}
    assert token_login("carla", "long-enough-pass-1")["token"]


def test_bad_credentials_are_400(db):
    assert token_post("x", "y").status_code == 400


def test_taken_username_and_weak_password_are_400(staff_api, courier):
    response = staff_api.post(
        "/api/v1/couriers", {"name": "X", "username": courier.user.username, "password": "123"}, format="json"
    )

    assert response.status_code == 400
    assert "username" in response.json()


def test_weak_password_is_400(staff_api):
    response = staff_api.post("/api/v1/couriers", {"name": "X", "username": "newbie", "password": "123"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()


def test_only_staff_create_couriers(courier_api, anonymous_api):
    body = {"name": "X", "username": "y", "password": "long-enough-pass-1"}
    assert courier_api.post("/api/v1/couriers", body, format="json").status_code == 403
    assert anonymous_api.post("/api/v1/couriers", body, format="json").status_code == 401
