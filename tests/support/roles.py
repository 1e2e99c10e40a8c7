"""The backoffice roles as the tests meet them: a staff user in one role's group."""

from __future__ import annotations

import importlib

from django.apps import apps
from django.contrib.auth.models import Group

from tests.support.builders import UserFactory

ROLES_MIGRATION = importlib.import_module("tracking.migrations.0010_roles")


def role_group(role: str) -> Group:
    """The role's group. A transactional test's flush empties the groups the migration
    made: made again here."""
    if not Group.objects.filter(name=role).exists():
        ROLES_MIGRATION.roles_create(apps, None)
    return Group.objects.get(name=role)


def role_user(role: str):
    """A backoffice account (is_staff: it may open the admin) whose rights are its group's."""
    user = UserFactory(is_staff=True)
    user.groups.add(role_group(role))
    return user
