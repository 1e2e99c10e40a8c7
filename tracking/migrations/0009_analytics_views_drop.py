"""The analytics views leave the service's database: the warehouse's dbt project
(warehouse/) is the one definition of every metric. The service keeps only what the apps
read. Backwards there is nothing to recreate."""

import importlib

from django.db import migrations

views = importlib.import_module("tracking.migrations.0004_analytics_views")


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0008_ping_event_identity"),
    ]

    operations = [
        migrations.RunSQL(";".join(f"DROP VIEW IF EXISTS {view}" for view in views.VIEWS), migrations.RunSQL.noop),
    ]
