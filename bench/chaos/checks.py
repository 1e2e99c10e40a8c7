"""The invariants, read black-box from PostgreSQL after a scenario: every accepted ping of
the scenario's couriers is stored or dead-lettered (nothing lost), none is stored twice,
nothing stored was never accepted, and each order's last location is its courier's newest
accepted ping.

Only `tracking_ping`'s event_id, courier_id and recorded_at, `tracking_orderlastlocation`'s
order_id, recorded_at and location, and the dead-letter tables' courier and event ids (a
batch dead letter's are in its `kwargs`, the task's keyword arguments as JSON) are read.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

# The client writes 7 decimals; PostGIS stores float8. Well under a centimetre.
DEGREES_TOLERANCE = 1e-6


@dataclass
class Counts:
    accepted: int = 0
    stored: int = 0
    # Accepted pings found in either dead-letter table (kept for an operator, not lost).
    dead_lettered: int = 0
    lost: int = 0
    duplicated: int = 0
    # Stored, yet neither accepted nor of unknown outcome: rejected pings, or never sent.
    unexpected: int = 0
    last_location_wrong: int = 0
    examples: list[str] = field(default_factory=list)


def accepted_rows(*, out: Path, answered_before: float | None = None, leave_out: set[str] = frozenset()) -> list:
    """(courier_id, event_id, recorded_at, lat, lon) of the accepted pings, as answered so far."""
    rows = []
    with open(out / "accepted.csv", newline="") as accepted:
        for courier_id, event_id, recorded_at, lat, lon, answered in csv.reader(accepted):
            if event_id in leave_out or (answered_before is not None and float(answered) > answered_before):
                continue
            rows.append((courier_id, event_id, recorded_at, float(lat), float(lon)))
    return rows


def _temp_tables_fill(conn: psycopg.Connection, *, out: Path, leave_out: set[str], courier_ids: list[str]) -> None:
    conn.execute(
        "CREATE TEMP TABLE chaos_accepted (courier_id uuid, event_id uuid, recorded_at timestamptz, "
        "lat float8, lon float8) ON COMMIT DROP"
    )
    conn.execute("CREATE TEMP TABLE chaos_unknown (courier_id uuid, event_id uuid) ON COMMIT DROP")
    with conn.cursor().copy("COPY chaos_accepted FROM STDIN") as copy:
        for row in accepted_rows(out=out, leave_out=leave_out):
            copy.write_row(row)
    with conn.cursor().copy("COPY chaos_unknown FROM STDIN") as copy, open(out / "unknown.csv", newline="") as unknown:
        for row in csv.reader(unknown):
            copy.write_row(row)
    conn.execute("CREATE TEMP TABLE chaos_dead (courier_id uuid, event_id text) ON COMMIT DROP")
    dead = dead_letter_ids(conn=conn, courier_ids=courier_ids)
    with conn.cursor().copy("COPY chaos_dead FROM STDIN") as copy:
        for row in dead:
            copy.write_row(row)
    conn.execute("ANALYZE chaos_accepted")


def dead_letter_ids(*, conn: psycopg.Connection, courier_ids: list[str]) -> list[tuple[str, str]]:
    """(courier_id, event_id) of every ping of these couriers in either dead-letter table:
    refused one by one (tracking_pingdeadletter), or in a batch message dead-lettered whole
    (tracking_pingbatchdeadletter, whose kwargs hold the batch's pings)."""
    rows: list[tuple[str, str]] = []
    if conn.execute("SELECT to_regclass('tracking_pingdeadletter')").fetchone()[0]:
        rows += conn.execute(
            "SELECT courier_id::text, lower(event_id) FROM tracking_pingdeadletter WHERE courier_id = ANY(%s)",
            [courier_ids],
        ).fetchall()
    if conn.execute("SELECT to_regclass('tracking_pingbatchdeadletter')").fetchone()[0]:
        batches = conn.execute(
            "SELECT courier_id::text, kwargs FROM tracking_pingbatchdeadletter WHERE courier_id = ANY(%s)",
            [courier_ids],
        ).fetchall()
        for courier_id, kwargs in batches:
            try:
                pings = json.loads(kwargs)["pings"]
            except (ValueError, KeyError, TypeError):
                continue  # an undecodable message: no ping of it can be named
            rows += [(courier_id, str(p.get("event_id", "")).lower()) for p in pings if isinstance(p, dict)]
    return rows


def fleet_pings(*, dsn: str, courier_ids: list[str]) -> list[str]:
    """The event ids already stored for these couriers: the positions their order actions
    carried when the fleet was made. The checks leave them out."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT event_id FROM tracking_ping WHERE courier_id = ANY(%s)", [courier_ids]).fetchall()
    return [str(row[0]) for row in rows]


def counts_measure(
    *, dsn: str, out: Path, courier_ids: list[str], order_ids: list[str], leave_out: set[str], before: list[str]
) -> Counts:
    """`leave_out`: accepted pings that are not expected in the table yet (poison pings
    waiting in the dead-letter store). They must not be stored either. `before`: pings
    stored before the load (fleet_pings). Lost: accepted, neither stored nor dead-lettered."""
    counts = Counts()
    with psycopg.connect(dsn) as conn, conn.transaction():
        _temp_tables_fill(conn, out=out, leave_out=leave_out, courier_ids=courier_ids)
        counts.accepted = conn.execute("SELECT count(*) FROM chaos_accepted").fetchone()[0]
        counts.stored, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (courier_id, event_id)) FROM tracking_ping "
            "WHERE courier_id = ANY(%s) AND NOT event_id = ANY(%s::uuid[])",
            [courier_ids, before],
        ).fetchone()
        counts.duplicated = counts.stored - distinct
        counts.dead_lettered = conn.execute(
            "SELECT count(*) FROM chaos_accepted a WHERE EXISTS (SELECT 1 FROM chaos_dead d "
            "WHERE d.courier_id = a.courier_id AND d.event_id = a.event_id::text)"
        ).fetchone()[0]
        lost = conn.execute(
            "SELECT a.event_id FROM chaos_accepted a WHERE NOT EXISTS (SELECT 1 FROM tracking_ping p "
            "WHERE p.courier_id = a.courier_id AND p.recorded_at = a.recorded_at AND p.event_id = a.event_id) "
            "AND NOT EXISTS (SELECT 1 FROM chaos_dead d WHERE d.courier_id = a.courier_id "
            "AND d.event_id = a.event_id::text)"
        ).fetchall()
        counts.lost = len(lost)
        counts.examples += [f"lost {row[0]}" for row in lost[:3]]
        unexpected = conn.execute(
            "SELECT DISTINCT p.event_id FROM tracking_ping p WHERE p.courier_id = ANY(%s) "
            "AND NOT p.event_id = ANY(%s::uuid[]) "
            "AND NOT EXISTS (SELECT 1 FROM chaos_accepted a WHERE a.courier_id = p.courier_id "
            "AND a.event_id = p.event_id) "
            "AND NOT EXISTS (SELECT 1 FROM chaos_unknown u WHERE u.courier_id = p.courier_id "
            "AND u.event_id = p.event_id)",
            [courier_ids, before],
        ).fetchall()
        counts.unexpected = len(unexpected)
        counts.examples += [f"stored but never accepted {row[0]}" for row in unexpected[:3]]
        wrong = conn.execute(
            """
            WITH fleet AS (SELECT * FROM unnest(%s::uuid[], %s::uuid[]) AS f(order_id, courier_id)),
            newest AS (
                SELECT DISTINCT ON (courier_id) courier_id, recorded_at, lat, lon
                FROM chaos_accepted ORDER BY courier_id, recorded_at DESC)
            SELECT f.order_id, n.recorded_at, l.recorded_at
            FROM fleet f JOIN newest n USING (courier_id)
            LEFT JOIN tracking_orderlastlocation l ON l.order_id = f.order_id
            WHERE l.order_id IS NULL OR l.recorded_at <> n.recorded_at
               OR abs(ST_Y(l.location::geometry) - n.lat) > %s OR abs(ST_X(l.location::geometry) - n.lon) > %s
            """,
            [order_ids, courier_ids, DEGREES_TOLERANCE, DEGREES_TOLERANCE],
        ).fetchall()
        counts.last_location_wrong = len(wrong)
        counts.examples += [
            f"order {o}: last location at {got}, newest accepted ping at {want}" for o, want, got in wrong[:3]
        ]
    return counts


def stored_among(*, dsn: str, rows: list) -> int:
    """How many of `rows` (from accepted_rows) are in tracking_ping now; -1 when the
    database does not answer."""
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            return conn.execute(
                "SELECT count(*) FROM unnest(%s::uuid[], %s::uuid[], %s::timestamptz[]) AS a(c, e, r) "
                "WHERE EXISTS (SELECT 1 FROM tracking_ping p WHERE p.courier_id = a.c AND p.recorded_at = a.r "
                "AND p.event_id = a.e)",
                [list(columns[0]), list(columns[1]), list(columns[2])],
            ).fetchone()[0]
    except psycopg.OperationalError:
        return -1


def stored_count(*, dsn: str, courier_ids: list[str]) -> int:
    """The rows in tracking_ping of these couriers; -1 when the database does not answer."""
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            return conn.execute(
                "SELECT count(*) FROM tracking_ping WHERE courier_id = ANY(%s)", [courier_ids]
            ).fetchone()[0]
    except psycopg.OperationalError:
        return -1


def resumed_wait(
    *, dsn: str, courier_ids: list[str], out: Path, before: int, since: float, timeout_s: float, batch: int
) -> float | None:
    """Seconds from `since` until the worker stores pings again: the couriers' rows grow by a
    batch, or every ping accepted so far is stored (a load that ended has nothing more to
    flow). None if neither by the deadline. `before`: rows stored before the load."""
    deadline = since + timeout_s
    first = -1
    while time.time() < deadline:
        count = stored_count(dsn=dsn, courier_ids=courier_ids)
        if count >= 0 and first < 0:
            first = count
        if first >= 0 and (count >= first + batch or count - before >= _accepted_so_far(out=out)):
            return max(0.0, time.time() - since)
        time.sleep(0.25)
    return None


def _accepted_so_far(*, out: Path) -> int:
    with open(out / "accepted.csv", "rb") as accepted:
        return sum(1 for _ in accepted)


def caught_up_wait(
    *, dsn: str, rows: list, since: float, timeout_s: float, hopeless: Callable[[], bool] = lambda: False
) -> float | None:
    """Seconds from `since` until every one of `rows` is stored; None if not by the deadline
    (or as soon as `hopeless` says waiting longer is pointless)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and not hopeless():
        if stored_among(dsn=dsn, rows=rows) == len(rows):
            return max(0.0, time.time() - since)
        time.sleep(0.5)
    return None


def dead_letters_read(*, dsn: str, courier_ids: list[str]) -> tuple[dict[str, bool] | None, str]:
    """event_id -> replayed? of the scenario's dead letters, or None and why."""
    try:
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT event_id, replayed_at IS NOT NULL FROM tracking_pingdeadletter WHERE courier_id = ANY(%s)",
                [courier_ids],
            ).fetchall()
    except psycopg.errors.UndefinedTable:
        return None, "no dead-letter store (table tracking_pingdeadletter does not exist)"
    return {str(event_id): replayed for event_id, replayed in rows}, ""
