"""The tables the analytics team receives in Redshift, and what is held back.

Plain data with no CDK import: `deploy/eb/db_bootstrap.py` (which runs on the
application instances) grants the DMS database user SELECT on exactly these tables,
and `table_mappings` below is the DMS task's table mappings (`ze_infra/analytics.py`). The Redshift side
of the same tables is in `deploy/warehouse/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCHEMA = "public"

# Replicated as they are (full load, then CDC).
TABLES: tuple[str, ...] = (
    "orders_order",
    "orders_orderevent",
    "orders_notification",
    "couriers_courier",
    "tracking_orderlastlocation",
    "tracking_courierlastlocation",
)

# `tracking_ping` is declaratively partitioned by day (`tracking_ping_pYYYYMMDD` plus
# `tracking_ping_default`). Logical decoding reports changes under the partition's own
# name, so DMS selects the partitions and renames each to the parent; the parent itself
# is excluded (a full load of the parent would read every partition a second time).
PING_PARENT = "tracking_ping"
PING_PARTITION_PATTERNS: tuple[str, ...] = ("tracking_ping_p%", "tracking_ping_default")

# Columns that never leave the operational database: consumer PII, the consumer's
# tracking code (it grants access to the live map), the link to the login account, and the
# position filter's bookkeeping (which ping a last location came from; the warehouse has
# the pings themselves).
EXCLUDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders_order": ("consumer_name", "tracking_code"),
    "couriers_courier": ("name", "user_id"),
    "tracking_orderlastlocation": ("event_id",),
    "tracking_courierlastlocation": ("event_id",),
}


def table_mappings() -> dict[str, Any]:
    """DMS table mappings: exactly TABLES, the partitions of `tracking_ping` folded into
    one target table, personal columns removed. tests/tracking/test_replication.py applies
    them to what test_decoding reports, as DMS does."""
    rules: list[dict[str, Any]] = []

    def add(rule: dict[str, Any]) -> None:
        rule["rule-id"] = str(len(rules) + 1)
        rule["rule-name"] = f"{rule['rule-type']}-{rule['rule-id']}"
        rules.append(rule)

    for table in TABLES:
        add(
            {
                "rule-type": "selection",
                "object-locator": {"schema-name": SCHEMA, "table-name": table},
                "rule-action": "include",
            }
        )
    for pattern in PING_PARTITION_PATTERNS:
        add(
            {
                "rule-type": "selection",
                "object-locator": {"schema-name": SCHEMA, "table-name": pattern},
                "rule-action": "include",
            }
        )
        add(
            {
                "rule-type": "transformation",
                "rule-target": "table",
                "object-locator": {"schema-name": SCHEMA, "table-name": pattern},
                "rule-action": "rename",
                "value": PING_PARENT,
            }
        )
    # Never the parent: its full load would read every partition a second time.
    add(
        {
            "rule-type": "selection",
            "object-locator": {"schema-name": SCHEMA, "table-name": PING_PARENT},
            "rule-action": "exclude",
        }
    )
    for table, columns in EXCLUDED_COLUMNS.items():
        for column in columns:
            add(
                {
                    "rule-type": "transformation",
                    "rule-target": "column",
                    "object-locator": {"schema-name": SCHEMA, "table-name": table, "column-name": column},
                    "rule-action": "remove-column",
                }
            )
    return {"rules": rules}


# The schema of the source database where DMS creates its heartbeat table: DMS's login may
# create there and nowhere else (deploy/eb/db_bootstrap.py).
DMS_HEARTBEAT_SCHEMA = "awsdms_heartbeat"

# Redshift users of their own, none a superuser: DMS writes the replicated tables, the
# privacy job rounds destinations, the warehouse build (dbt) reads the replicated tables
# and owns its schema. Their passwords are in Secrets Manager (ze_infra/analytics.py); the
# release step creates the users and the migrations grant them (deploy/warehouse/). The
# admin login is for the release and operators.
REDSHIFT_DMS_USER = "ze_dms"
REDSHIFT_PRIVACY_USER = "ze_privacy"
REDSHIFT_DBT_USER = "ze_dbt"
# Where the warehouse build writes its models (dbt's target schema on Redshift).
WAREHOUSE_BUILD_SCHEMA = "analytics"

# The warehouse's SQL: tables and views (applied by deploy/warehouse/release.py) and the
# privacy rule (run daily by the schedule in ze_infra/analytics.py).
WAREHOUSE_SQL = Path(__file__).resolve().parents[1] / "warehouse"


def sql_statements(*, path: Path) -> list[str]:
    """The statements of a SQL file, comment lines left out, one per entry of a Redshift
    Data API batch (which runs them in one transaction)."""
    code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]
