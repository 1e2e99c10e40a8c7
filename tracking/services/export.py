"""Pings of a time range written to daily Parquet or CSV files, for ad-hoc analysis.

Memory stays flat whatever the range: rows come from a server-side cursor a chunk at a
time, and each chunk is written out (one Parquet row group) before the next is fetched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.db import connection, transaction

from tracking.columns import PING_COLUMNS, ping_export_select

FORMATS = ("parquet", "csv")
CHUNK_ROWS = 50_000

# The ping's columns (`tracking.columns`); positions as plain lat/lon degrees (WGS84), as
# stored: every tool reads them, no GIS library needed.
ARROW_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "int32": pa.int32(),
}
SCHEMA = pa.schema([(column.name, ARROW_TYPES[column.export_type]) for column in PING_COLUMNS])

# One day at a time, in a stable order (a file's content depends only on the data).
DAY_SQL = f"""
SELECT {ping_export_select()}
FROM tracking_ping
WHERE recorded_at >= %s AND recorded_at < %s
ORDER BY recorded_at, event_id
"""


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    pings: int


def export_days(*, since: dt.datetime, until: dt.datetime) -> Iterator[tuple[dt.date, dt.datetime, dt.datetime]]:
    """The UTC days the range touches, each with its part of the range."""
    day = since.astimezone(dt.UTC).date()
    while True:
        start = max(since, dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
        end = min(until, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))
        if start >= until:
            return
        yield day, start, end
        day += dt.timedelta(days=1)


def pings_count(*, since: dt.datetime, until: dt.datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracking_ping WHERE recorded_at >= %s AND recorded_at < %s", [since, until]
        )
        count: int = cursor.fetchone()[0]
        return count


def pings_export(
    *,
    since: dt.datetime,
    until: dt.datetime,
    file_format: str,
    out_dir: Path,
    on_rows: Callable[[int], None] = lambda rows: None,
) -> list[ExportedFile]:
    """Steps, for each UTC day of [since, until): open a server-side cursor on the day's pings;
    write each fetched chunk as a record batch; move the finished file into place (a file named
    pings-YYYY-MM-DD.<format> is always complete). Days without pings get a file with the
    columns and no rows, so a script can count on one file per day. `on_rows` hears of every
    chunk written (a progress bar)."""
    if file_format not in FORMATS:
        raise ValueError(f"unknown format {file_format!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for day, start, end in export_days(since=since, until=until):
        path = out_dir / f"pings-{day.isoformat()}.{file_format}"
        partial = path.with_name(f".{path.name}.partial")
        pings = 0
        try:
            with _writer(path=partial, file_format=file_format) as writer:
                for batch in _day_batches(start=start, end=end):
                    writer.write_batch(batch)
                    pings += batch.num_rows
                    on_rows(batch.num_rows)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        written.append(ExportedFile(path=path, pings=pings))
    return written


def _writer(*, path: Path, file_format: str) -> Any:
    if file_format == "parquet":
        return pq.ParquetWriter(path, SCHEMA, compression="zstd")
    return pa_csv.CSVWriter(path, SCHEMA)


def _day_batches(*, start: dt.datetime, end: dt.datetime) -> Iterator[pa.RecordBatch]:
    # Django's server-side cursor (as `QuerySet.iterator()` reads), inside a transaction: the
    # rows stay on the server until fetched, a chunk at a time. The export only reads.
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(DAY_SQL, [start, end])
        while rows := cursor.fetchmany(CHUNK_ROWS):
            columns = zip(*rows, strict=True)
            yield pa.RecordBatch.from_arrays(
                [pa.array(column, type=field.type) for column, field in zip(columns, SCHEMA, strict=True)],
                schema=SCHEMA,
            )
