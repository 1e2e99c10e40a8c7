"""The Redshift warehouse's users on PostgreSQL, for tests that apply the warehouse
migrations (deploy/warehouse/migrations/): the release creates them before it applies the
migrations (deploy/warehouse/release.py), whose grants name them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
from ze_infra import analytics_tables as tables  # noqa: E402  (plain data, no CDK import)

WAREHOUSE_USERS = (tables.REDSHIFT_DMS_USER, tables.REDSHIFT_PRIVACY_USER, tables.REDSHIFT_DBT_USER)


def warehouse_users_statements() -> list[str]:
    """One statement per user, each a no-op when the role exists: roles belong to the server,
    not to a test's database, so they outlive it, and concurrent tests may create them at
    once (the second one's insert then fails on the unique name instead)."""
    return [
        f"DO $$ BEGIN CREATE ROLE {user} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        for user in WAREHOUSE_USERS
    ]
