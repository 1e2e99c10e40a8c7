"""dbt against the test database: the service's own tables are the sources (schema public),
as they are in the local warehouse that logical replication feeds, and the models are built
into a schema of their own."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "analytics_test"
DBT_TIMEOUT_S = 600


def dbt(*args: str, target: str = "local", check: bool = True) -> subprocess.CompletedProcess:
    """`scripts/warehouse.sh dbt ARGS` on the test database; output kept for the assertion."""
    db = connection.settings_dict
    env = os.environ | {
        "WAREHOUSE_TARGET": target,
        "WAREHOUSE_HOST": db["HOST"] or "127.0.0.1",
        "WAREHOUSE_PORT": str(db["PORT"] or 5432),
        "WAREHOUSE_USER": db["USER"],
        "WAREHOUSE_PASSWORD": db.get("PASSWORD") or "",
        "WAREHOUSE_DBNAME": db["NAME"],
        "WAREHOUSE_SCHEMA": SCHEMA,
        "DBT_TARGET_PATH": str(ROOT / ".local" / "warehouse" / f"target-test-{target}"),
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "warehouse.sh"), "dbt", *args],
        env=env, capture_output=True, text=True, timeout=DBT_TIMEOUT_S,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done


def rows(sql: str, params: list | None = None) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def stored_pings_insert(rows: list[dict]) -> None:
    """Pings written as the service stores them (the warehouse reads stored rows): each row a
    dict of tracking_ping columns; `event_id` is new and `received_at` is `recorded_at`
    unless given."""
    with connection.cursor() as cursor:
        for given in rows:
            row = {"event_id": uuid.uuid4(), "received_at": given["recorded_at"], **given}
            placeholders = ", ".join(["%s"] * len(row))
            cursor.execute(f"INSERT INTO tracking_ping ({', '.join(row)}) VALUES ({placeholders})", list(row.values()))


@pytest.fixture
def models_schema_dropped(transactional_db):
    """The models' schema is dropped after the test (the tables' rows are flushed by pytest-django)."""
    yield SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
