"""The login throttle counts guesses per account, whatever the spelling of the username:
spellings that normalize (NFKC) to one name share one budget, and a username that is not
text is refused before it reaches the password check."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from couriers.models import ApiToken
from tests.support.builders import CourierFactory, UserFactory

PASSWORD = "s3cret-pass-123"


def login(username, password: str = "wrong-password", address: str = "198.51.100.1"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/v1/auth/token", {"username": username, "password": password}, format="json"
    )


def username_rate(rate: str) -> override_settings:
    return override_settings(THROTTLE_RATES={**settings.THROTTLE_RATES, "login_username": rate})


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spellings",
    [
        ["ａｄｍｉｎ", "ａｄｍｉｎ", "ａｄｍｉｎ"],  # fullwidth
        ["𝐚𝐝𝐦𝐢𝐧", "𝒂𝒅𝒎𝒊𝒏", "𝗮𝗱𝗺𝗶𝗻"],  # mathematical bold, bold italic, sans bold
        ["ⓐⓓⓜⓘⓝ", "ａｄｍｉｎ", "𝐚𝐝𝐦𝐢𝐧"],  # circled, mixed
    ],
)
def test_spellings_of_one_username_share_its_budget(spellings):
    UserFactory(username="admin")
    with username_rate("3/min"):
        statuses = [login(s, address=f"198.51.100.{n}").status_code for n, s in enumerate(spellings)]
        assert statuses == [400, 400, 400]

        assert login("admin", PASSWORD, address="198.51.100.99").status_code == 429


@pytest.mark.django_db
def test_spellings_of_an_unknown_username_share_one_budget(db):
    with username_rate("2/min"):
        assert [login("ｎｏｂｏｄｙ").status_code, login("𝐧𝐨𝐛𝐨𝐝𝐲", address="198.51.100.2").status_code] == [400, 400]
        assert login("nobody", address="198.51.100.3").status_code == 429


@pytest.mark.django_db
@pytest.mark.parametrize("username", [12345, 12345.0, True, ["12345"], {"u": "12345"}, None])
def test_a_username_that_is_not_text_is_refused(username):
    courier = CourierFactory(user__username="12345")

    response = login(username, PASSWORD)

    assert response.status_code == 400
    assert "username" in response.json()
    assert not ApiToken.objects.filter(user=courier.user).exists()


@pytest.mark.django_db
def test_a_numeric_username_cannot_dodge_the_username_budget(db):
    CourierFactory(user__username="12345")
    with username_rate("2/min"):
        [login("12345", address=f"198.51.100.{n}") for n in range(2)]

        assert login(12345, PASSWORD, address="198.51.100.50").status_code in (400, 429)
        assert login("12345", PASSWORD, address="198.51.100.51").status_code == 429
