"""Every way a password changes logs the user out of the API: the self-service form, the
admin's form, `manage.py changepassword`, and plain `set_password()` + `save()` in a shell."""

from __future__ import annotations

import pytest
from django.contrib.auth.management.commands import changepassword
from django.core.management import CommandError, call_command

from couriers.models import ApiToken
from couriers.services import api_token_create
from tests.support.builders import UserFactory

NEW_PASSWORD = "another-long-pass-456"


def tokens_of(user) -> int:
    return ApiToken.objects.filter(user=user).count()


@pytest.mark.django_db
def test_set_password_and_save_in_a_shell_revokes_every_token(courier):
    api_token_create(user=courier.user, device="phone")
    api_token_create(user=courier.user, device="tablet")

    courier.user.set_password(NEW_PASSWORD)
    courier.user.save()

    assert tokens_of(courier.user) == 0


@pytest.mark.django_db
def test_a_save_that_keeps_the_password_keeps_the_tokens(courier):
    api_token_create(user=courier.user, device="phone")

    courier.user.first_name = "Ana"
    courier.user.save()
    courier.user.set_password("s3cret-pass-123")  # a new hash (new salt) is a new password too
    courier.user.save(update_fields=["first_name"])  # ... unless it is not written

    assert tokens_of(courier.user) == 1


@pytest.mark.django_db
def test_an_unusable_password_revokes_every_token(courier):
    api_token_create(user=courier.user)

    courier.user.set_unusable_password()
    courier.user.save()

    assert tokens_of(courier.user) == 0


@pytest.mark.django_db
def test_the_self_service_password_form_revokes_every_token(client):
    user = UserFactory(is_staff=True)
    api_token_create(user=user)
    client.force_login(user)

    response = client.post(
        "/admin/password_change/",
        {"old_password": "s3cret-pass-123", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert tokens_of(user) == 0


@pytest.mark.django_db
def test_manage_py_changepassword_revokes_every_token(courier, monkeypatch):
    api_token_create(user=courier.user)
    # The command reads the password twice from the terminal.
    monkeypatch.setattr(changepassword.getpass, "getpass", lambda *args, **kwargs: NEW_PASSWORD)

    call_command("changepassword", courier.user.username, stdout=open("/dev/null", "w"))  # noqa: SIM115

    courier.user.refresh_from_db()
    assert courier.user.check_password(NEW_PASSWORD)
    assert tokens_of(courier.user) == 0


@pytest.mark.django_db
def test_createsuperuser_cannot_take_over_an_existing_user(courier):
    """So it cannot change a password either: it refuses a username that exists."""
    api_token_create(user=courier.user)

    with pytest.raises(CommandError, match="already taken"):
        call_command("createsuperuser", username=courier.user.username, email="", interactive=False)

    assert tokens_of(courier.user) == 1
