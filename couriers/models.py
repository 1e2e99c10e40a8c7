from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from knox.models import AbstractAuthToken


class User(AbstractUser):
    """The project's user (AUTH_USER_MODEL): staff, and couriers through their profile.
    A model of our own from the start, as Django recommends, so it can grow fields later."""


def name_first_word(name: str) -> str:
    """What a consumer and a notification call the courier: the first word of the name."""
    return (name.split() or [""])[0]


class Courier(models.Model):
    """A courier is a Django user with this profile; it logs in like any user."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="courier")
    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [("revoke_courier_tokens", "Can log a courier out of the app")]
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        return self.name

    @property
    def first_name(self) -> str:
        return name_first_word(self.name)


class ApiToken(AbstractAuthToken):
    """An API token of one device (django-rest-knox keeps only the SHA-512 digest of the
    token and its first 15 characters to find it; the rest, 196 random bits, is never stored).
    `device` is the name the app gave at login: a new login from it replaces its old token."""

    device = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["user", "device"])]

    def __str__(self) -> str:
        return f"{self.user} {self.device or 'device'} ({self.token_key[:4]}…)"
