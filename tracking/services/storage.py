"""Raw ping storage: one statement per batch into the day-partitioned `tracking_ping`."""

from __future__ import annotations

import psycopg
from django.db import connection
from psycopg.types.json import Jsonb

from tracking.services.enrichment import EnrichedPing

# Arrays go as binary parameters (%b): psycopg builds text arrays in a slow Python loop.
# ON CONFLICT DO NOTHING makes a resent ping (same event_id and recorded_at), a retried
# task or a batch redelivered after a worker died a no-op instead of a duplicate.
INSERT_SQL = """
INSERT INTO tracking_ping (
    event_id, recorded_at, received_at, courier_id, order_id, location, accuracy_m, speed_mps,
    heading_deg, distance_to_destination_m, eta_seconds, suspect_reason, attributes)
SELECT e, r, rc, c, o, ST_SetSRID(ST_MakePoint(lo, la), 4326)::geography, a, s, h, d, eta, sr, x
FROM unnest(%b::uuid[], %b::timestamptz[], %b::timestamptz[], %b::uuid[], %b::uuid[], %b::float8[],
            %b::float8[], %b::float8[], %b::float8[], %b::float8[], %b::float8[], %b::int4[], %b::text[],
            %b::jsonb[])
     AS t(e, r, rc, c, o, lo, la, a, s, h, d, eta, sr, x)
ON CONFLICT DO NOTHING
"""


def pings_store(*, pings: list[EnrichedPing]) -> int:
    """Insert the batch; return how many pings were new."""
    if not pings:
        return 0
    legs = [p.primary_leg for p in pings]
    columns = [
        [p.event_id for p in pings],
        [p.recorded_at for p in pings],
        [p.received_at for p in pings],
        [p.courier_id for p in pings],
        [leg.order_id if leg else None for leg in legs],
        [p.lon for p in pings],
        [p.lat for p in pings],
        [p.accuracy_m for p in pings],
        [p.speed_mps for p in pings],
        [p.heading_deg for p in pings],
        [leg.distance_to_destination_m if leg else None for leg in legs],
        [leg.eta_seconds if leg else None for leg in legs],
        [p.suspect_reason for p in pings],
        [Jsonb(p.attributes) for p in pings],
    ]
    return binary_execute(INSERT_SQL, columns).rowcount


def binary_execute(sql: str, params: list | dict):
    """Run one statement with server-side binding on Django's connection (and so inside its
    transaction): Django's own cursors bind on the client, where %b is not allowed. The
    cursor is wrapped like Django's, so query counting and execute wrappers still see it."""
    connection.ensure_connection()
    cursor = connection._prepare_cursor(psycopg.Cursor(connection.connection))
    cursor.execute(sql, params)
    return cursor
