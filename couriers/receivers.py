"""What the couriers app does when Django saves a user."""

from __future__ import annotations

from couriers.services import user_tokens_revoke


def user_password_changed_tokens_revoke(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """pre_save of the user model: a new password hash logs the user out of the API (every
    token). One place for every path that changes a password (the admin's forms, the
    self-service form, `manage.py changepassword`, `set_password()` + `save()` in a shell):
    each ends in this save. Django itself ends the user's other browser sessions (their
    stored hash no longer matches). A hash that Django upgrades at login (a new hasher or
    more iterations) is a new hash too: the user's other devices log in again once."""
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and stored != instance.password:
        user_tokens_revoke(user_id=instance.pk)
