"""Formerly the analytics views in the service's database. The metrics now live in the
warehouse's dbt project (warehouse/, docs/ANALYTICS.md); migration 0009 drops the views
from databases that have them, and this migration creates nothing."""

from django.db import migrations

# Dependants first: analytics_eta_accuracy read analytics_eta_error.
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

    operations = []
