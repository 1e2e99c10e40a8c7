from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone

from couriers.models import ApiToken, Courier, User, name_first_word
from couriers.staff_access import token_lifetime_fixed


def courier_create(*, name: str, username: str, password: str) -> Courier:
    """A courier is a Django user (who logs in with the token endpoint) plus this profile."""
    user_model = get_user_model()
    user = user_model(username=username, first_name=name_first_word(name))
    validate_password(password, user)
    user.set_password(password)
    with transaction.atomic():
        user.save()
        return Courier.objects.create(user=user, name=name)


def api_token_create(*, user: User, device: str = "") -> tuple[ApiToken, str]:
    """Steps: drop the user's expired tokens, and the old token of this device if it is
    named; keep at most API_TOKENS_PER_USER_MAX live tokens (the oldest go); create the new
    one (a staff token lives STAFF_API_TOKEN_TTL_H, a courier's knox's TOKEN_TTL). Returns
    the row and the token, which exists only in this answer."""
    with transaction.atomic():
        tokens = ApiToken.objects.filter(user=user)
        tokens.filter(expiry__lt=timezone.now()).delete()
        if device:
            tokens.filter(device=device).delete()
        keep = settings.API_TOKENS_PER_USER_MAX - 1
        oldest = tokens.order_by("-created").values_list("digest", flat=True)[keep:]
        ApiToken.objects.filter(digest__in=list(oldest)).delete()
        # knox's manager (untyped) returns the row and the token.
        created: tuple[ApiToken, str]
        if token_lifetime_fixed(user):
            staff_ttl = dt.timedelta(hours=settings.STAFF_API_TOKEN_TTL_H)
            created = ApiToken.objects.create(user, expiry=staff_ttl, device=device)
        else:
            created = ApiToken.objects.create(user, device=device)
        return created


def api_tokens_expired_delete() -> int:
    """Every expired token, whoever it belongs to (a token is refused once expired anyway;
    this keeps the table to the live ones). Returns how many were deleted."""
    deleted: int
    deleted, _ = ApiToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted


def user_tokens_revoke(*, user_id: int) -> int:
    """Log the user out of every device: the next API request needs a new login."""
    deleted: int
    deleted, _ = ApiToken.objects.filter(user_id=user_id).delete()
    return deleted


def courier_token_reset(*, courier: Courier) -> None:
    user_tokens_revoke(user_id=courier.user_id)
