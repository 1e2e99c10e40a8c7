"""The event id of the ping each last location came from, on both last-location tables.

Steps: add the nullable column; fill it on the existing rows from the ping with the row's
courier, device time and position (the fix it was written from; NULL where that ping is
gone); publish both tables without it. The column is the position filter's bookkeeping, not
a fact for the warehouse: deploy/ze_infra/analytics_tables.py holds it back from DMS too, so
the Redshift tables need no change. Backwards: the publication sends every column again
and the column is dropped.
"""

from django.db import migrations, models

BACKFILL_SQL = """
UPDATE {table} AS t SET event_id = (
    SELECT p.event_id FROM tracking_ping AS p
    WHERE p.courier_id = t.courier_id AND p.recorded_at = t.recorded_at
      AND p.lat = ST_Y(t.location::geometry) AND p.lon = ST_X(t.location::geometry)
    ORDER BY p.suspect_reason IS NOT NULL, p.event_id
    LIMIT 1
)
"""

# A publication's column list can only be set by adding the table again.
PUBLISH_WITHOUT_EVENT_ID_SQL = """
ALTER PUBLICATION ze_analytics DROP TABLE tracking_orderlastlocation, tracking_courierlastlocation;
ALTER PUBLICATION ze_analytics ADD TABLE
    tracking_orderlastlocation (
        location, accuracy_m, speed_mps, heading_deg, recorded_at, updated_at, order_id,
        distance_to_destination_m, eta_seconds, courier_id
    ),
    tracking_courierlastlocation (
        location, accuracy_m, speed_mps, heading_deg, recorded_at, updated_at, courier_id
    );
"""

PUBLISH_EVERY_COLUMN_SQL = """
ALTER PUBLICATION ze_analytics DROP TABLE tracking_orderlastlocation, tracking_courierlastlocation;
ALTER PUBLICATION ze_analytics ADD TABLE tracking_orderlastlocation, tracking_courierlastlocation;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0006_ping_batch_dead_letter"),
    ]

    operations = [
        migrations.AddField(
            model_name="courierlastlocation",
            name="event_id",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="orderlastlocation",
            name="event_id",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.RunSQL(
            [BACKFILL_SQL.format(table=t) for t in ("tracking_courierlastlocation", "tracking_orderlastlocation")],
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(PUBLISH_WITHOUT_EVENT_ID_SQL, PUBLISH_EVERY_COLUMN_SQL),
    ]
