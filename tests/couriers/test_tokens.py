"""API tokens: hashed at rest, one per device, expiring with sliding renewal, revocable
(logout, logout everywhere, the admin's reset, a password change)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from couriers.models import ApiToken
from couriers.services import user_password_set

PASSWORD = "s3cret-pass-123"


def login(username: str, **extra) -> dict:
    response = APIClient().post(
        "/api/v1/auth/token", {"username": username, "password": PASSWORD, **extra}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def orders_status(token: str) -> int:
    return api(token).get("/api/v1/orders").status_code


@pytest.mark.django_db
def test_login_answers_a_token_and_its_expiry_and_the_database_keeps_only_a_digest(courier):
    body = login(courier.user.username)

    assert set(body) == {"token", "expiry"} and body["expiry"]
    stored = ApiToken.objects.get(user=courier.user)
    assert body["token"] not in {stored.digest, stored.token_key}
    assert body["token"] not in str(ApiToken.objects.filter(user=courier.user).values().first())
    assert orders_status(body["token"]) == 200


@pytest.mark.django_db
def test_each_login_is_a_new_token_and_a_device_name_replaces_that_devices_old_one(courier):
    first, second = login(courier.user.username)["token"], login(courier.user.username)["token"]
    phone = login(courier.user.username, device="Ana's phone")["token"]
    phone_again = login(courier.user.username, device="Ana's phone")["token"]

    assert len({first, second, phone, phone_again}) == 4
    assert [orders_status(t) for t in (first, second, phone, phone_again)] == [200, 200, 401, 200]
    assert ApiToken.objects.filter(user=courier.user).count() == 3


@pytest.mark.django_db
def test_logout_revokes_only_this_token_and_logout_all_revokes_every_one(courier):
    one, two, three = (login(courier.user.username)["token"] for _ in range(3))

    assert api(one).post("/api/v1/auth/logout").status_code == 204
    assert [orders_status(t) for t in (one, two, three)] == [401, 200, 200]

    assert api(two).post("/api/v1/auth/logout-all").status_code == 204
    assert [orders_status(t) for t in (one, two, three)] == [401, 401, 401]


@pytest.mark.django_db
def test_logout_needs_a_token(anonymous_api):
    assert anonymous_api.post("/api/v1/auth/logout").status_code == 401
    assert anonymous_api.post("/api/v1/auth/logout-all").status_code == 401


@pytest.mark.django_db
def test_a_token_expires_unless_used_and_each_use_pushes_the_expiry(courier):
    with override_settings(REST_KNOX={**_knox(), "TOKEN_TTL": dt.timedelta(hours=1), "MIN_REFRESH_INTERVAL": 0}):
        token = login(courier.user.username)["token"]
        stored = ApiToken.objects.get(user=courier.user)
        ApiToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() + dt.timedelta(minutes=1))

        assert orders_status(token) == 200  # used: renewed for another hour
        assert ApiToken.objects.get(pk=stored.pk).expiry > timezone.now() + dt.timedelta(minutes=59)

        ApiToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))
        assert orders_status(token) == 401


@pytest.mark.django_db
def test_changing_the_password_revokes_every_token(courier):
    tokens = [login(courier.user.username)["token"] for _ in range(2)]

    user_password_set(user=courier.user, password="another-long-pass-456")

    assert [orders_status(t) for t in tokens] == [401, 401]


@pytest.mark.django_db
def test_the_admins_password_form_revokes_every_token(client, staff, courier):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    token = login(courier.user.username)["token"]

    response = client.post(
        f"/admin/couriers/user/{courier.user.id}/password/",
        {"password1": "another-long-pass-456", "password2": "another-long-pass-456", "usable_password": "true"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert orders_status(token) == 401


@pytest.mark.django_db
def test_the_admin_shows_no_usable_token(client, staff, courier):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    token = login(courier.user.username)["token"]

    pages = [client.get(url).content.decode() for url in ("/admin/couriers/apitoken/", "/admin/couriers/courier/")]
    stored = ApiToken.objects.get(user=courier.user)
    pages.append(client.get(f"/admin/couriers/apitoken/{stored.pk}/change/").content.decode())

    assert all(token not in page and token[15:] not in page for page in pages)


def _knox() -> dict:
    from django.conf import settings

    return settings.REST_KNOX
