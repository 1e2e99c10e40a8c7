"""The tables the analytics team receives in Redshift, and what is held back.

Plain data with no CDK import: `deploy/eb/db_bootstrap.py` (which runs on the
application instances) grants the DMS database user SELECT on exactly these tables,
and `ze_infra/analytics.py` builds the DMS table mappings from them. The Redshift side
of the same tables is in `deploy/warehouse/`.
"""

from __future__ import annotations

from pathlib import Path

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

# The schema of the source database where DMS creates its heartbeat table: DMS's login may
# create there and nowhere else (deploy/eb/db_bootstrap.py).
DMS_HEARTBEAT_SCHEMA = "awsdms_heartbeat"

# The warehouse's SQL: tables and views (applied by deploy/warehouse/release.py) and the
# privacy rule (run daily by the schedule in ze_infra/analytics.py).
WAREHOUSE_SQL = Path(__file__).resolve().parents[1] / "warehouse"


def sql_statements(*, path: Path) -> list[str]:
    """The statements of a SQL file, comment lines left out, one per entry of a Redshift
    Data API batch (which runs them in one transaction)."""
    code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]
