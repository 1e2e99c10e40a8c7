"""The publication the warehouse's change data capture reads (logical replication).

Every replicated table has a primary key, so updates and deletes carry it as the replica
identity. `publish_via_partition_root` sends the changes of every daily partition of
`tracking_ping` as changes of `tracking_ping` itself: a subscriber sees one table, and
detaching or dropping a partition is not a row change, so nothing is deleted downstream.
Column lists hold back what never leaves the operational database (the consumer's name, the
tracking code that opens the live map, the courier's name and login); they match
deploy/ze_infra/analytics_tables.py, which tests/tracking/test_warehouse_schema.py checks.

On a server with wal_level below `logical` the publication is created all the same
(PostgreSQL only warns); nothing can subscribe until the level is raised.
"""

from django.db import migrations

CREATE_PUBLICATION = """
CREATE PUBLICATION ze_analytics FOR TABLE
    tracking_ping,
    tracking_orderlastlocation,
    tracking_courierlastlocation,
    orders_order (
        id, external_id, destination, status, created_at, updated_at,
        assigned_at, started_at, delivered_at, cancelled_at, courier_id
    ),
    orders_orderevent,
    orders_notification,
    couriers_courier (id, created_at)
WITH (publish_via_partition_root = true)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0002_ping_dead_letter"),
    ]

    operations = [
        migrations.RunSQL(CREATE_PUBLICATION, "DROP PUBLICATION IF EXISTS ze_analytics"),
    ]
