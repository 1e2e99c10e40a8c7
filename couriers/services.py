from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from rest_framework.authtoken.models import Token

from couriers.models import Courier, name_first_word


def courier_create(*, name: str, username: str, password: str) -> Courier:
    """A courier is a Django user (who logs in with the token endpoint) plus this profile."""
    user_model = get_user_model()
    user = user_model(username=username, first_name=name_first_word(name))
    validate_password(password, user)
    user.set_password(password)
    with transaction.atomic():
        user.save()
        return Courier.objects.create(user=user, name=name)


def courier_token_reset(*, courier: Courier) -> None:
    """Log the courier out of every device: the next request needs a new login."""
    Token.objects.filter(user_id=courier.user_id).delete()
