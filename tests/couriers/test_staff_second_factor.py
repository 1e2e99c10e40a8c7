"""The staff second factor (django-otp): with STAFF_OTP_REQUIRED, every way staff get in
(the admin, the backoffice map, the fleet socket, the token login) needs a TOTP code or a
recovery code; staff sessions and tokens last hours. Without it, the password alone."""

from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from couriers.models import ApiToken
from tests.support.builders import UserFactory
from tests.support.roles import role_user

PASSWORD = "s3cret-pass-123"
otp_required = override_settings(STAFF_OTP_REQUIRED=True)


def totp_device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def code_of(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def recovery_codes(user, *codes: str) -> StaticDevice:
    device = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    for value in codes:
        device.token_set.create(token=value)
    return device


def verified_client(user, device) -> Client:
    """A browser session of `user` that passed the second factor with `device`."""
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def token_login(username: str, **extra):
    return APIClient().post("/api/v1/auth/token", {"username": username, "password": PASSWORD, **extra}, format="json")


@pytest.fixture
def staff(db):
    return UserFactory(username="ops", is_staff=True, is_superuser=True)


# --- The admin


@otp_required
def test_admin_login_with_the_password_alone_is_refused_when_the_second_factor_is_required(staff):
    totp_device(staff)
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": PASSWORD})
    assert response.status_code == 200  # the form again
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


@otp_required
def test_admin_login_with_the_password_and_a_totp_code_opens_the_admin(staff):
    device = totp_device(staff)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "ops", "password": PASSWORD, "otp_device": device.persistent_id, "otp_token": code_of(device)},
    )
    assert response.status_code == 302, response.content
    assert client.get("/admin/").status_code == 200


@otp_required
def test_a_staff_session_not_verified_by_the_second_factor_is_not_let_into_the_admin(staff):
    totp_device(staff)
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/").status_code == 302


def test_without_the_setting_the_admin_takes_the_password_alone(staff):
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


@otp_required
def test_staff_enrol_a_totp_device_and_recovery_codes_in_the_admin(staff):
    device = totp_device(staff)
    client = verified_client(staff, device)
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 200
    assert client.get("/admin/otp_static/staticdevice/add/").status_code == 200


# --- The backoffice map and the fleet socket


@otp_required
def test_backoffice_map_refuses_a_staff_session_not_verified_by_the_second_factor(staff):
    device = totp_device(staff)
    unverified = Client()
    unverified.force_login(staff)
    response = unverified.get("/backoffice/")
    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)
    assert verified_client(staff, device).get("/backoffice/").status_code == 200


@otp_required
def test_the_backoffice_login_asks_for_the_code(staff):
    device = totp_device(staff)
    client = Client()
    without = client.post(settings.LOGIN_URL, {"username": "ops", "password": PASSWORD})
    assert without.status_code == 200
    assert client.get("/backoffice/").status_code == 302
    with_code = client.post(
        settings.LOGIN_URL,
        {"username": "ops", "password": PASSWORD, "otp_device": device.persistent_id, "otp_token": code_of(device)},
    )
    assert with_code.status_code == 302, with_code.content
    assert client.get("/backoffice/").status_code == 200


def fleet_connects(client: Client) -> bool:
    from ze_tracking.asgi import application

    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]

    async def scenario():
        ws = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
        connected, _ = await ws.connect()
        await ws.disconnect()
        return connected

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@otp_required
def test_fleet_socket_refuses_a_staff_session_not_verified_by_the_second_factor():
    staff = role_user("Support")  # a support agent: watches the fleet, behind the second factor
    device = totp_device(staff)
    unverified = Client()
    unverified.force_login(staff)
    assert not fleet_connects(unverified)
    assert fleet_connects(verified_client(staff, device))


# --- The token login


@otp_required
def test_staff_token_login_is_refused_without_a_valid_code(staff):
    device = totp_device(staff)
    wrong = "000000" if code_of(device) != "000000" else "111111"
    assert token_login("ops").status_code == 400
    assert token_login("ops", otp_token=wrong).status_code == 400
    assert not ApiToken.objects.filter(user=staff).exists()


@otp_required
def test_staff_token_login_with_a_totp_code_answers_a_token(staff):
    device = totp_device(staff)
    assert token_login("ops", otp_token=code_of(device)).status_code == 200


@otp_required
def test_a_recovery_code_logs_staff_in_once(staff):
    recovery_codes(staff, "rescue42")
    assert token_login("ops", otp_token="rescue42").status_code == 200
    assert token_login("ops", otp_token="rescue42").status_code == 400


@otp_required
def test_couriers_log_in_without_a_code(courier):
    assert token_login(courier.user.username).status_code == 200


def test_staff_token_ends_hours_after_login_and_use_does_not_extend_it(staff, courier):
    staff_body = token_login("ops").json()
    courier_body = token_login(courier.user.username).json()
    now = timezone.now()
    staff_expiry = dt.datetime.fromisoformat(staff_body["expiry"])
    assert staff_expiry - now <= dt.timedelta(hours=settings.STAFF_API_TOKEN_TTL_H)
    assert dt.datetime.fromisoformat(courier_body["expiry"]) - now > dt.timedelta(hours=settings.STAFF_API_TOKEN_TTL_H)

    stored = ApiToken.objects.get(user=staff)
    ApiToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() + dt.timedelta(minutes=10))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {staff_body['token']}")
    assert client.get("/api/v1/couriers").status_code == 200
    stored.refresh_from_db()
    assert stored.expiry - timezone.now() <= dt.timedelta(minutes=10)


# --- The staff session


def test_a_staff_browser_session_lasts_hours_not_weeks(staff):
    client = Client()
    assert client.post(settings.LOGIN_URL, {"username": "ops", "password": PASSWORD}).status_code == 302
    assert client.session.get_expiry_age() == settings.STAFF_SESSION_AGE_S < settings.SESSION_COOKIE_AGE
