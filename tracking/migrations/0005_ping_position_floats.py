"""A ping's position as two float8 columns, `lat` and `lon`, instead of a geography point.

Migration 0001 now creates `tracking_ping` that way. A database migrated before it holds
the table with `location`: this rebuilds that table in 0001's layout, keeping every row
and every partition. A column added with ALTER TABLE would land after the variable-width
columns (alignment padding in every row) and the dropped `location` would keep its place
in each row's null bitmap, so the table is rebuilt rather than altered. On a database
created with the float columns it does nothing.

Steps, in one transaction: copy the rows (the point's coordinates read out as floats, the
same float8 values) and the daily partitions' bounds aside; drop the analytics views that
read the table (they are gone for good since 0009) and the table (the publication forgets
it); create it again from 0001's DDL with the same partitions; put the rows back in time
order (as the BRIN index expects); publish the table again. Closed days' keys are packed
again by `ping_partitions_pack`, as for any day.
"""

import importlib

from django.db import migrations

initial = importlib.import_module("tracking.migrations.0001_initial")
views = importlib.import_module("tracking.migrations.0004_analytics_views")

COLUMNS = """recorded_at, received_at, lat, lon, accuracy_m, speed_mps, distance_to_destination_m,
    eta_seconds, heading_deg, courier_id, event_id, order_id, suspect_reason, attributes"""

ROWS_ASIDE_SQL = """
CREATE TEMPORARY TABLE tracking_ping_rows ON COMMIT DROP AS
SELECT recorded_at, received_at, ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon, accuracy_m,
       speed_mps, distance_to_destination_m, eta_seconds, heading_deg, courier_id, event_id, order_id,
       suspect_reason, attributes
FROM tracking_ping
"""

PARTITIONS_SQL = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'tracking_ping'::regclass AND c.relname <> 'tracking_ping_default'
ORDER BY c.relname
"""


def ping_table_rebuild(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = 'tracking_ping'::regclass AND attname = 'location' "
            "AND NOT attisdropped"
        )
        if cursor.fetchone() is None:
            return
        cursor.execute(PARTITIONS_SQL)
        partitions = cursor.fetchall()
        cursor.execute(ROWS_ASIDE_SQL)
        for view in views.VIEWS:
            cursor.execute(f"DROP VIEW IF EXISTS {view}")
        cursor.execute("DROP TABLE tracking_ping")
        cursor.execute(initial.PING_TABLE_SQL)
        for name, bound in partitions:
            cursor.execute(f'CREATE TABLE "{name}" PARTITION OF tracking_ping {bound}')
        cursor.execute(
            f"INSERT INTO tracking_ping ({COLUMNS}) SELECT {COLUMNS} FROM tracking_ping_rows ORDER BY recorded_at"
        )
        cursor.execute("DROP TABLE tracking_ping_rows")
        cursor.execute("ALTER PUBLICATION ze_analytics ADD TABLE tracking_ping")


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0004_analytics_views"),
    ]

    operations = [
        # Backwards there is nothing to undo: 0001 creates the same layout.
        migrations.RunPython(ping_table_rebuild, migrations.RunPython.noop),
    ]
