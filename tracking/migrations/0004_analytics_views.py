"""The analytics views (tracking/sql/analytics_views.sql, documented in docs/ANALYTICS.md).

The file is the views' single source and every statement in it is CREATE OR REPLACE VIEW:
a later change to a view edits the file and adds a migration that runs it again.
"""

from pathlib import Path

from django.db import migrations

VIEWS_SQL = Path(__file__).resolve().parents[1] / "sql" / "analytics_views.sql"

# Dependants first: analytics_eta_accuracy reads analytics_eta_error.
VIEWS = (
    "analytics_eta_accuracy",
    "analytics_eta_error",
    "analytics_gps_accuracy_daily",
    "analytics_ping_timeliness_daily",
    "analytics_order_arriving_to_delivered",
    "analytics_order_longest_transit_gap",
    "analytics_order_ping_count",
    "analytics_courier_activity_daily",
    "analytics_delivery_funnel_daily",
)


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0003_analytics_publication"),
    ]

    operations = [
        migrations.RunSQL(
            VIEWS_SQL.read_text(),
            ";".join(f"DROP VIEW IF EXISTS {view}" for view in VIEWS),
        ),
    ]
