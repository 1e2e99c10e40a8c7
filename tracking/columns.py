"""The stored columns of a ping (`tracking_ping`), defined once: the worker's insert
(`tracking.services.storage`), its arrays and the export's columns
(`tracking.services.export`) are generated from this list. A test holds it equal to the
model (`tracking.models.Ping`) and to the table the migrations built.

Adding a column: the model field and a migration, an entry here, and the value on
`tracking.services.enrichment.EnrichedPing` under the same name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PingColumn:
    name: str
    # The column's type in the table, as PostgreSQL names it (`::regtype`).
    sql_type: str
    # The array a batch sends it in (binary parameters); when it differs from `sql_type`,
    # the insert casts it (a heading to the degree, a distance to the metre; `real` where
    # the model says FloatField: the compact types of the biggest table, see the model).
    array_type: str
    # Its type in an export file: "string" (uuid and jsonb as text), "timestamp",
    # "float64", "float32", "int32".
    export_type: str


PING_COLUMNS: tuple[PingColumn, ...] = (
    PingColumn("event_id", "uuid", "uuid", "string"),
    PingColumn("recorded_at", "timestamptz", "timestamptz", "timestamp"),
    PingColumn("received_at", "timestamptz", "timestamptz", "timestamp"),
    PingColumn("courier_id", "uuid", "uuid", "string"),
    PingColumn("order_id", "uuid", "uuid", "string"),
    PingColumn("lat", "float8", "float8", "float64"),
    PingColumn("lon", "float8", "float8", "float64"),
    PingColumn("accuracy_m", "float4", "float8", "float32"),
    PingColumn("speed_mps", "float4", "float8", "float32"),
    PingColumn("heading_deg", "int2", "float8", "float32"),
    PingColumn("distance_to_destination_m", "int4", "float8", "float32"),
    PingColumn("eta_seconds", "int4", "int4", "int32"),
    PingColumn("suspect_reason", "varchar", "text", "string"),
    PingColumn("attributes", "jsonb", "jsonb", "string"),
)
PING_COLUMN_NAMES = tuple(column.name for column in PING_COLUMNS)


def ping_insert_sql() -> str:
    """The worker's insert of a batch (see `tracking.services.storage.INSERT_SQL`): one array
    parameter per column, in `PING_COLUMNS` order."""
    arrays = ", ".join(f"%b::{column.array_type}[]" for column in PING_COLUMNS)
    names = ", ".join(PING_COLUMN_NAMES)
    values = ", ".join(
        column.name if column.array_type == column.sql_type else f"{column.name}::{column.sql_type}"
        for column in PING_COLUMNS
    )
    return f"""
WITH batch AS (
    SELECT * FROM unnest({arrays}) AS t({names})
), claimed AS (
    INSERT INTO tracking_pingevent (courier_id, event_id, recorded_at)
    SELECT courier_id, event_id, recorded_at FROM batch ORDER BY courier_id, event_id, recorded_at
    ON CONFLICT DO NOTHING
    RETURNING courier_id, event_id, recorded_at
)
INSERT INTO tracking_ping ({names})
SELECT {values}
FROM batch JOIN claimed USING (courier_id, event_id, recorded_at)
ORDER BY recorded_at
ON CONFLICT DO NOTHING
RETURNING courier_id, event_id, recorded_at
"""


def ping_export_select() -> str:
    """The export's select list: uuid and jsonb as text, the rest as stored."""
    return ", ".join(
        f"{column.name}::text" if column.sql_type in ("uuid", "jsonb") else column.name for column in PING_COLUMNS
    )
