"""The API token check: django-rest-knox's rules in one query per request."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from couriers.models import ApiToken
from infra.db.queries import OneRowQueries, OneRowQuery

# The token with its user and the user's courier profile (staff have none: a LEFT JOIN).
INVALID = _("Invalid token.")
_TOKEN = OneRowQuery(lambda: ApiToken.objects.select_related("user", "user__courier"), field="digest")


class ReadWithToken:
    """A view's one-row read, keyed by one of its URL arguments, made in the statement of the
    token check: one round trip per request instead of two. The view names it in its
    `token_read_with` attribute and gets the row (None when there is none) from `get`. The
    read is the same whoever asks (it happens before the permission checks): the view still
    decides who may see the row. Nothing is kept between requests."""

    def __init__(self, query: OneRowQuery, *, argument: str):
        self.query = query
        self.argument = argument
        self.with_token = OneRowQueries(_TOKEN, query)

    def get(self, request) -> Any:
        """The row read with the request's token, or read now when the request was not
        authenticated by a token (a session)."""
        authenticator = request.successful_authenticator
        if isinstance(authenticator, ApiTokenAuthentication) and authenticator.read_with is self:
            return authenticator.read
        return self.query.get(request.parser_context["kwargs"][self.argument])


class ApiTokenAuthentication(TokenAuthentication):
    """knox's `TokenAuthentication` (same header, expiry, sliding renewal at most once a
    minute, inactive users refused), with one query: the token found by its digest (the
    primary key) with its user and the user's courier profile, so that the permission
    checks and `request.user.courier` cost nothing more. A view's `token_read_with` (a
    `ReadWithToken`) is read in that same query, whatever the token turns out to be.

    knox also reads every other token of the user on each request to delete the expired
    ones; expired tokens are refused by their own expiry whatever happens, and deleted at
    the user's next login (`api_token_create`) and by the hourly `api_tokens_expired_delete`.
    Nothing is cached between requests: a deleted (revoked) token fails its next request."""

    # The view's read made with the token, its URL argument's value, and what it found.
    read_with: ReadWithToken | None = None
    read_value: Any = None
    read: Any = None

    def authenticate(self, request):
        context = request.parser_context or {}
        self.read_with = getattr(context.get("view"), "token_read_with", None)
        self.read_value = context.get("kwargs", {}).get(self.read_with.argument) if self.read_with else None
        return super().authenticate(request)

    def authenticate_credentials(self, token: bytes):
        try:
            # The header arrives as ISO-8859-1 bytes; a token is ASCII hex.
            text = token.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID) from None
        # A lookup by the SHA-512 of the whole token: the time it takes says nothing about
        # any stored token (knox looks up a prefix, then compares digests in constant time).
        if self.read_with is None:
            found = _TOKEN.get(hash_token(text))
        else:
            found, self.read = self.read_with.with_token.get(hash_token(text), self.read_value)
        if found is None:
            raise exceptions.AuthenticationFailed(INVALID)
        if found.expiry is not None and found.expiry < timezone.now():
            username = found.user.get_username()
            found.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            raise exceptions.AuthenticationFailed(INVALID)
        if knox_settings.AUTO_REFRESH and found.expiry:
            self.renew_token(found)
        return self.validate_user(found)


class ApiTokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of knox's check (`knoxApiToken`), for this subclass of it."""

    target_class = ApiTokenAuthentication
