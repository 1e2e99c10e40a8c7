"""The API token check: django-rest-knox's rules in one query per request."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import knox_settings
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from couriers.models import ApiToken
from couriers.staff_access import token_lifetime_fixed
from infra.db.queries import OneRowQuery

INVALID = _("Invalid token.")
# The token with its user and the user's courier profile (staff have none: a LEFT JOIN),
# by its digest. A hot route may read it in its own statement (tracking/order_location.py).
API_TOKEN = OneRowQuery(lambda: ApiToken.objects.select_related("user", "user__courier"), field="digest")


class ApiTokenAuthentication(TokenAuthentication):
    """knox's `TokenAuthentication` (same header, expiry, sliding renewal at most once a
    minute, inactive users refused), with one query: the token found by its digest (the
    primary key) with its user and the user's courier profile, so that the permission
    checks and `request.user.courier` cost nothing more.

    knox also reads every other token of the user on each request to delete the expired
    ones; expired tokens are refused by their own expiry whatever happens, and deleted at
    the user's next login (`api_token_create`) and by the hourly `api_tokens_expired_delete`.
    Nothing is cached between requests: a deleted (revoked) token fails its next request."""

    def authenticate(self, request):
        token = api_token_in_header(request)
        return None if token is None else self.authenticate_credentials(token)

    def authenticate_credentials(self, token: bytes):
        return self.token_accept(API_TOKEN.get(api_token_digest(token)))

    def token_accept(self, found: ApiToken | None) -> tuple:
        """(user, token) for the token read by its digest, by knox's rules: a missing or
        expired token is refused (an expired one deleted), an inactive user too; the expiry
        of a courier's token slides forward."""
        if found is None:
            raise exceptions.AuthenticationFailed(INVALID)
        if found.expiry is not None and found.expiry < timezone.now():
            username = found.user.get_username()
            found.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            raise exceptions.AuthenticationFailed(INVALID)
        # A backoffice token keeps the expiry of its login: they log in again, with their code.
        if knox_settings.AUTO_REFRESH and found.expiry and not token_lifetime_fixed(found.user):
            self.renew_token(found)
        return self.validate_user(found)


def api_token_digest(token: bytes) -> str:
    """The digest a token is stored under. A lookup by the SHA-512 of the whole token: the
    time it takes says nothing about any stored token (knox looks up a prefix, then compares
    digests in constant time)."""
    try:
        # The header arrives as ISO-8859-1 bytes; a token is ASCII hex.
        return hash_token(token.decode("ascii"))
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed(INVALID) from None


def api_token_in_header(request) -> bytes | None:
    """The token of an `Authorization: Token <token>` header, as knox reads it; None when the
    request carries no such header (another scheme, or a session)."""
    auth = get_authorization_header(request).split()
    if not auth or auth[0].lower() != knox_settings.AUTH_HEADER_PREFIX.encode().lower():
        return None
    if len(auth) == 1:
        raise exceptions.AuthenticationFailed(_("Invalid token header. No credentials provided."))
    if len(auth) > 2:
        raise exceptions.AuthenticationFailed(_("Invalid token header. Token string should not contain spaces."))
    return auth[1]


class ApiTokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of knox's check (`knoxApiToken`), for this subclass of it."""

    # drf-spectacular takes a class or its dotted path; knox's extension names it by path.
    target_class = ApiTokenAuthentication  # type: ignore[assignment]
