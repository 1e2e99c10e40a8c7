"""`manage.py export_pings`: exact files for a known range, and the exit status and message a
script relies on."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import uuid

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.support import ROOT
from tests.support.builders import CourierFactory
from tests.support.database import database_url
from tests.support.network import free_port
from tracking.services.export import pings_export

COURIER = uuid.UUID("00000000-0000-4000-8000-00000000000c")
ORDER = uuid.UUID("00000000-0000-4000-8000-0000000000a1")


def event(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.fixture
def pings(db):
    """Four pings in the range [2026-01-10, 2026-01-12), two just outside it."""
    CourierFactory(id=COURIER)
    rows = [
        # event, recorded, lat, lon, accuracy, order, eta, suspect, attributes
        (1, "2026-01-09 23:59:59.999999", -23.5, -46.6, 5, None, None, None, "{}"),
        (2, "2026-01-10 00:00:00", -23.5614, -46.6559, 4.5, ORDER, 300, None, '{"battery": 80}'),
        (3, "2026-01-10 12:30:15.250000", -23.5600, -46.6500, None, ORDER, 240, None, "{}"),
        (4, "2026-01-10 12:30:15.250000", -22.0, -45.0, 3, None, None, "implied_speed", "{}"),
        (5, "2026-01-11 23:59:59", -23.55, -46.64, 12.25, None, None, None, "{}"),
        (6, "2026-01-12 00:00:00", -23.5, -46.6, 5, None, None, None, "{}"),
    ]
    with connection.cursor() as cursor:
        for n, recorded, lat, lon, accuracy, order, eta, suspect, attributes in rows:
            cursor.execute(
                "INSERT INTO tracking_ping (event_id, recorded_at, received_at, courier_id, order_id, lat, lon, "
                "accuracy_m, eta_seconds, suspect_reason, attributes) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [event(n), at(recorded), at(recorded) + dt.timedelta(seconds=2), COURIER, order, lat, lon,
                 accuracy, eta, suspect, attributes],
            )  # fmt: skip


def export(*args: str) -> str:
    out = io.StringIO()
    call_command("export_pings", *args, verbosity=0, stdout=out, stderr=io.StringIO())
    return out.getvalue()


HEADER = (
    '"event_id","recorded_at","received_at","courier_id","order_id","lat","lon","accuracy_m","speed_mps",'
    '"heading_deg","distance_to_destination_m","eta_seconds","suspect_reason","attributes"\n'
)


def test_csv_export_writes_one_exact_file_per_day_of_the_range(pings, tmp_path):
    listing = export("--since", "2026-01-10", "--until", "2026-01-12", "--format", "csv", "--out", str(tmp_path))

    assert listing == f"{tmp_path}/pings-2026-01-10.csv\t3\n{tmp_path}/pings-2026-01-11.csv\t1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pings-2026-01-10.csv", "pings-2026-01-11.csv"]
    assert (tmp_path / "pings-2026-01-10.csv").read_text() == HEADER + (
        f'"{event(2)}",2026-01-10 00:00:00.000000Z,2026-01-10 00:00:02.000000Z,"{COURIER}","{ORDER}",'
        '-23.5614,-46.6559,4.5,,,,300,,"{""battery"": 80}"\n'
        f'"{event(3)}",2026-01-10 12:30:15.250000Z,2026-01-10 12:30:17.250000Z,"{COURIER}","{ORDER}",'
        '-23.56,-46.65,,,,,240,,"{}"\n'
        f'"{event(4)}",2026-01-10 12:30:15.250000Z,2026-01-10 12:30:17.250000Z,"{COURIER}",,'
        '-22,-45,3,,,,,"implied_speed","{}"\n'
    )
    assert (tmp_path / "pings-2026-01-11.csv").read_text() == HEADER + (
        f'"{event(5)}",2026-01-11 23:59:59.000000Z,2026-01-12 00:00:01.000000Z,"{COURIER}",,'
        '-23.55,-46.64,12.25,,,,,,"{}"\n'
    )


def test_parquet_export_holds_the_same_rows_with_typed_columns(pings, tmp_path):
    export("--since", "2026-01-10T12:00:00", "--until", "2026-01-12", "--format", "parquet", "--out", str(tmp_path))

    first = pq.read_table(tmp_path / "pings-2026-01-10.parquet")
    assert str(first.schema.field("recorded_at").type) == "timestamp[us, tz=UTC]"
    assert first.to_pylist() == [
        {
            "event_id": str(event(n)),
            "recorded_at": at("2026-01-10 12:30:15.250000"),
            "received_at": at("2026-01-10 12:30:17.250000"),
            "courier_id": str(COURIER),
            "order_id": order,
            "lat": lat,
            "lon": lon,
            "accuracy_m": accuracy,
            "speed_mps": None,
            "heading_deg": None,
            "distance_to_destination_m": None,
            "eta_seconds": eta,
            "suspect_reason": suspect,
            "attributes": "{}",
        }
        for n, order, lat, lon, accuracy, eta, suspect in [
            (3, str(ORDER), -23.56, -46.65, None, 240, None),
            (4, None, -22.0, -45.0, 3.0, None, "implied_speed"),
        ]
    ]
    assert [r["event_id"] for r in pq.read_table(tmp_path / "pings-2026-01-11.parquet").to_pylist()] == [str(event(5))]


def test_each_day_is_read_through_djangos_cursor_a_chunk_at_a_time(pings, tmp_path):
    """The day's read is a query like any other (logged, counted, wrapped by Django), and its
    rows come from a server-side cursor, still open while a chunk is written."""
    open_cursors = []

    def on_rows(rows: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_cursors WHERE statement LIKE %s", ["%ORDER BY recorded_at, event_id%"]
            )
            open_cursors.append(cursor.fetchone()[0])

    with CaptureQueriesContext(connection) as queries:
        pings_export(
            since=at("2026-01-10"), until=at("2026-01-12"), file_format="csv", out_dir=tmp_path, on_rows=on_rows
        )

    day_reads = [
        q for q in queries.captured_queries if "FROM tracking_ping" in q["sql"] and "pg_cursors" not in q["sql"]
    ]
    assert len(day_reads) == 2, queries.captured_queries
    assert open_cursors == [1, 1]


def test_a_day_without_pings_still_gets_its_file(db, tmp_path):
    export("--since", "2026-01-10", "--until", "2026-01-11", "--format", "csv", "--out", str(tmp_path))

    assert (tmp_path / "pings-2026-01-10.csv").read_text() == HEADER


def run_command(*args: str, database: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database or database_url()}
    command = [sys.executable, "manage.py", "export_pings", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.processes
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--until", "2026-01-11", "--format", "csv"], "the following arguments are required: --since"),
        (["--since", "yesterday", "--until", "2026-01-11", "--format", "csv"], "'yesterday' is not a date"),
        (["--since", "2026-01-10", "--until", "2026-01-11", "--format", "xlsx"], "invalid choice: 'xlsx'"),
        (["--since", "2026-01-11", "--until", "2026-01-10", "--format", "csv"], "--since must be before --until"),
        (["--since", "2026-01-10", "--until", "2026-01-10", "--format", "csv"], "--since must be before --until"),
    ],
)
def test_bad_arguments_exit_with_2_and_say_why_on_stderr(db, tmp_path, args, message):
    result = run_command(*args, "--out", str(tmp_path))

    assert (result.returncode, result.stdout) == (2, "")
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.processes
def test_out_must_be_a_folder(db, tmp_path):
    (tmp_path / "file").write_text("")
    out = str(tmp_path / "file")
    result = run_command("--since", "2026-01-10", "--until", "2026-01-11", "--format", "csv", "--out", out)

    assert result.returncode == 2
    assert "is not a folder" in result.stderr


@pytest.mark.processes
def test_a_failed_export_exits_with_1_and_leaves_no_file(db, tmp_path):
    unreachable = f"postgis://postgres@127.0.0.1:{free_port()}/nowhere"
    args = ["--since", "2026-01-10", "--until", "2026-01-11", "--format", "parquet", "--out", str(tmp_path)]
    result = run_command(*args, database=unreachable)

    assert (result.returncode, result.stdout) == (1, "")
    assert "export failed" in result.stderr
    assert list(tmp_path.iterdir()) == []
