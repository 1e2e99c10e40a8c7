"""A ping's stored columns are defined once (`tracking.columns.PING_COLUMNS`): the model,
the table the migrations built, the worker's insert and the export all agree with it."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from tracking.columns import PING_COLUMN_NAMES, PING_COLUMNS, PingColumn, ping_insert_sql
from tracking.models import Ping
from tracking.services import export, storage
from tracking.services.enrichment import EnrichedPing


def model_mismatches(columns: tuple[PingColumn, ...]) -> list[str]:
    """What differs between the columns and `Ping`'s concrete fields. Names only: the model
    says FloatField for the `real` columns (the table's types are checked below)."""
    fields = [field.column for field in Ping._meta.concrete_fields]
    wrong = [f"{c.name}: not a field of Ping" for c in columns if c.name not in fields]
    listed = {c.name for c in columns}
    return wrong + [f"{name}: a field of Ping, not a column" for name in fields if name not in listed]


def test_the_columns_are_the_models_fields():
    assert model_mismatches(PING_COLUMNS) == []


def test_a_column_added_without_the_model_is_caught():
    extra = PingColumn("battery_pct", "int2", "int2", "int32")

    assert model_mismatches((*PING_COLUMNS, extra)) == ["battery_pct: not a field of Ping"]
    assert model_mismatches(PING_COLUMNS[:-1]) == ["attributes: a field of Ping, not a column"]


@pytest.mark.django_db
def test_the_columns_are_the_tables_as_the_migrations_built_it():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, atttypid::regtype::text FROM pg_attribute"
            " WHERE attrelid = 'tracking_ping'::regclass AND attnum > 0 AND NOT attisdropped"
        )
        table = dict(cursor.fetchall())
        cursor.execute("SELECT " + ", ".join(f"'{c.sql_type}'::regtype::text" for c in PING_COLUMNS))
        listed = dict(zip(PING_COLUMN_NAMES, cursor.fetchone(), strict=True))

    assert listed == table


def test_the_insert_sends_one_array_per_column_and_inserts_every_column_in_order():
    sql = ping_insert_sql()
    arrays = re.findall(r"%b::(\w+)\[\]", sql)
    inserted = re.search(r"INSERT INTO tracking_ping \(([^)]*)\)", sql).group(1).split(", ")

    assert arrays == [c.array_type for c in PING_COLUMNS]
    assert tuple(inserted) == PING_COLUMN_NAMES
    assert storage.INSERT_SQL == sql


def test_the_export_writes_every_column_in_order():
    selected = re.search(r"SELECT (.*?)\s+FROM tracking_ping", export.DAY_SQL, re.S).group(1)

    assert tuple(export.SCHEMA.names) == PING_COLUMN_NAMES
    assert [name.split("::")[0].strip() for name in selected.split(",")] == list(PING_COLUMN_NAMES)


def test_an_enriched_ping_has_a_value_for_every_column():
    missing = [name for name in PING_COLUMN_NAMES if not hasattr(EnrichedPing, name)]
    fields = set(EnrichedPing.__dataclass_fields__)

    assert [name for name in missing if name not in fields] == []
