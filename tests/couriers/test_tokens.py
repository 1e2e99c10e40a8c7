"""API tokens: hashed at rest, one per device, expiring with sliding renewal, revocable
(logout, logout everywhere, the admin's reset, a password change)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone
from knox.crypto import hash_token

from couriers.models import ApiToken
from tests.support.api import token_client, token_login


def orders_status(token: str) -> int:
    return token_client(token).get("/api/v1/orders").status_code


@pytest.mark.django_db
def test_login_answers_a_token_and_its_expiry_and_the_database_keeps_only_a_digest(courier):
    body = token_login(courier.user.username)

    assert set(body) == {"token", "expiry"} and body["expiry"]
    stored = ApiToken.objects.get(user=courier.user)
    assert body["token"] not in {stored.digest, stored.token_key}
    assert body["token"] not in str(ApiToken.objects.filter(user=courier.user).values().first())
    assert orders_status(body["token"]) == 200


@pytest.mark.django_db
def test_each_login_is_a_new_token_and_a_device_name_replaces_that_devices_old_one(courier):
    first, second = token_login(courier.user.username)["token"], token_login(courier.user.username)["token"]
    phone = token_login(courier.user.username, device="Ana's phone")["token"]
    phone_again = token_login(courier.user.username, device="Ana's phone")["token"]

    assert len({first, second, phone, phone_again}) == 4
    assert [orders_status(t) for t in (first, second, phone, phone_again)] == [200, 200, 401, 200]
    assert ApiToken.objects.filter(user=courier.user).count() == 3


@pytest.mark.django_db
def test_logout_revokes_only_this_token_and_logout_all_revokes_every_one(courier):
    one, two, three = (token_login(courier.user.username)["token"] for _ in range(3))

    assert token_client(one).post("/api/v1/auth/logout").status_code == 204
    assert [orders_status(t) for t in (one, two, three)] == [401, 200, 200]

    assert token_client(two).post("/api/v1/auth/logout-all").status_code == 204
    assert [orders_status(t) for t in (one, two, three)] == [401, 401, 401]


@pytest.mark.django_db
def test_logout_needs_a_token(anonymous_api):
    assert anonymous_api.post("/api/v1/auth/logout").status_code == 401
    assert anonymous_api.post("/api/v1/auth/logout-all").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Token caf\u00e9", "Token " + "0" * 64, "Token", "Token a b"])
def test_a_malformed_or_unknown_token_is_401(anonymous_api, header):
    anonymous_api.credentials(HTTP_AUTHORIZATION=header)

    assert anonymous_api.get("/api/v1/orders").status_code == 401


@pytest.mark.django_db
def test_a_token_expires_unless_used_and_each_use_pushes_the_expiry(courier):
    with override_settings(REST_KNOX={**_knox(), "TOKEN_TTL": dt.timedelta(hours=1), "MIN_REFRESH_INTERVAL": 0}):
        token = token_login(courier.user.username)["token"]
        stored = ApiToken.objects.get(user=courier.user)
        ApiToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() + dt.timedelta(minutes=1))

        assert orders_status(token) == 200  # used: renewed for another hour
        assert ApiToken.objects.get(pk=stored.pk).expiry > timezone.now() + dt.timedelta(minutes=59)

        ApiToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))
        assert orders_status(token) == 401


@pytest.mark.django_db
def test_expired_tokens_are_deleted_at_the_next_login_or_by_the_hourly_task(courier, other_courier):
    from django.conf import settings

    from couriers.tasks import api_tokens_expired_delete

    live = token_login(courier.user.username)["token"]
    for user in (courier.user, other_courier.user):
        for _ in range(2):
            token_login(user.username)
    expired = ApiToken.objects.exclude(digest=hash_token(live)).filter(user=courier.user)
    ApiToken.objects.filter(pk__in=[t.pk for t in expired]).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    ApiToken.objects.filter(user=other_courier.user).update(expiry=timezone.now() - dt.timedelta(seconds=1))

    assert orders_status(live) == 200
    assert ApiToken.objects.count() == 5  # a request leaves the user's other tokens alone
    token_login(courier.user.username)
    assert ApiToken.objects.filter(user=courier.user).count() == 2  # the live one and the new one

    assert api_tokens_expired_delete.delay().get() == 2
    assert ApiToken.objects.filter(user=other_courier.user).count() == 0
    assert orders_status(live) == 200
    assert settings.CELERY_BEAT_SCHEDULE["api-tokens-expired-delete"]["schedule"] == 3600.0


@pytest.mark.django_db
def test_changing_the_password_revokes_every_token(courier):
    tokens = [token_login(courier.user.username)["token"] for _ in range(2)]

    courier.user.set_password("another-long-pass-456")
    courier.user.save()

    assert [orders_status(t) for t in tokens] == [401, 401]


@pytest.mark.django_db
def test_the_admins_password_form_revokes_every_token(client, staff, courier):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    token = token_login(courier.user.username)["token"]

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
    token = token_login(courier.user.username)["token"]

    pages = [client.get(url).content.decode() for url in ("/admin/couriers/apitoken/", "/admin/couriers/courier/")]
    stored = ApiToken.objects.get(user=courier.user)
    pages.append(client.get(f"/admin/couriers/apitoken/{stored.pk}/change/").content.decode())

    assert all(token not in page and token[15:] not in page for page in pages)


def _knox() -> dict:
    from django.conf import settings

    return settings.REST_KNOX
