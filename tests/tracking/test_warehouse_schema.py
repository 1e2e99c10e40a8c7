"""The Redshift tables DMS loads into (deploy/warehouse/migrations/) have exactly
Aurora's columns, in Aurora's order, minus the ones DMS holds back. The DMS task never
creates or alters them (TargetTablePrepMode DO_NOTHING, source ALTERs not replayed), so a
migration that adds, drops or reorders a replicated column needs a warehouse migration too."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from django.db import connection

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
from ze_infra import analytics_tables as tables  # noqa: E402  (plain data, no CDK import)


def _redshift_columns() -> dict[str, list[str]]:
    """The replicated tables' columns once every warehouse migration has run, in order."""
    columns: dict[str, list[str]] = {}
    for path in sorted((tables.WAREHOUSE_SQL / "migrations").glob("*.sql")):
        for statement in tables.sql_statements(path=path):
            if created := re.search(r"CREATE TABLE IF NOT EXISTS public\.(\w+)", statement):
                body = statement[statement.index("(") + 1 :]
                columns[created.group(1)] = [
                    m.group(1) for m in re.finditer(r"^\s+(\w+)\s+[A-Z]", body, re.M) if m.group(1) != "PRIMARY"
                ]
            elif added := re.search(r"ALTER TABLE public\.(\w+) ADD COLUMN (\w+)", statement):
                columns[added.group(1)].append(added.group(2))
            elif dropped := re.search(r"ALTER TABLE public\.(\w+) DROP COLUMN (\w+)", statement):
                columns[dropped.group(1)].remove(dropped.group(2))
    return columns


@pytest.mark.django_db
@pytest.mark.parametrize("table", [*tables.TABLES, tables.PING_PARENT])
def test_warehouse_table_has_the_replicated_columns_of_aurora_in_order(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
            "ORDER BY ordinal_position",
            [table],
        )
        aurora = [row[0] for row in cursor.fetchall()]
    held_back = set(tables.EXCLUDED_COLUMNS.get(table, ()))
    assert aurora, f"{table} is not in the database"
    assert _redshift_columns()[table] == [c for c in aurora if c not in held_back]


@pytest.mark.django_db
def test_the_publication_sends_exactly_the_warehouse_tables_and_columns():
    """What logical replication sends (the `ze_analytics` publication, migration tracking
    0002) is what the warehouse stores: no personal column leaves, none is missing."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename, attnames FROM pg_publication_tables WHERE pubname = 'ze_analytics'")
        published = dict(cursor.fetchall())
        cursor.execute("SELECT pubviaroot FROM pg_publication WHERE pubname = 'ze_analytics'")
        (via_root,) = cursor.fetchone()
    assert via_root, "partitions must be published as tracking_ping"
    assert published == _redshift_columns()


@pytest.mark.django_db
@pytest.mark.parametrize("table", [*tables.TABLES, tables.PING_PARENT])
def test_every_replicated_table_has_a_primary_key(table):
    # Without one, an UPDATE or DELETE on a published table fails (no replica identity).
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'", [table])
        assert cursor.fetchone(), f"{table} has no primary key"
