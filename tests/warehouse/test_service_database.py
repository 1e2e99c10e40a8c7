"""The service's database keeps only what the apps read: the metrics live in the warehouse."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection


def analytics_views() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT viewname FROM pg_views WHERE viewname LIKE 'analytics\\_%%'")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_a_database_that_had_the_analytics_views_loses_them_on_migrate():
    try:
        call_command("migrate", "tracking", "0008", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("CREATE VIEW analytics_eta_error AS SELECT 1 AS eta_seconds")
            cursor.execute("CREATE VIEW analytics_eta_accuracy AS SELECT * FROM analytics_eta_error")
        call_command("migrate", "tracking", verbosity=0)
    finally:
        call_command("migrate", verbosity=0)
    assert analytics_views() == set()
