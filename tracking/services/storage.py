"""Raw ping storage: one statement per batch into the day-partitioned `tracking_ping`,
and the packing of a day's key once the day is over."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import connection
from psycopg.types.json import Jsonb

from tracking.services.enrichment import EnrichedPing
from tracking.services.partitions import DAILY_PARTITION, ping_partition_name
from ze_tracking.queries import binary_execute

logger = logging.getLogger(__name__)

# Arrays go as binary parameters (%b): psycopg builds text arrays in a slow Python loop.
# ON CONFLICT DO NOTHING on the key (courier_id, recorded_at, event_id) makes a resent ping,
# a retried task or a batch redelivered after a worker died a no-op instead of a duplicate,
# while another courier's ping that reuses the event id is still stored.
INSERT_SQL = """
INSERT INTO tracking_ping (
    event_id, recorded_at, received_at, courier_id, order_id, lat, lon, accuracy_m, speed_mps,
    heading_deg, distance_to_destination_m, eta_seconds, suspect_reason, attributes)
SELECT e, r, rc, c, o, la, lo, a, s, h::int2, d::int4, eta, sr, x
FROM unnest(%b::uuid[], %b::timestamptz[], %b::timestamptz[], %b::uuid[], %b::uuid[], %b::float8[],
            %b::float8[], %b::float8[], %b::float8[], %b::float8[], %b::float8[], %b::int4[], %b::text[],
            %b::jsonb[])
     AS t(e, r, rc, c, o, la, lo, a, s, h, d, eta, sr, x)
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
        [p.lat for p in pings],
        [p.lon for p in pings],
        [p.accuracy_m for p in pings],
        [p.speed_mps for p in pings],
        [p.heading_deg for p in pings],
        [leg.distance_to_destination_m if leg else None for leg in legs],
        [leg.eta_seconds if leg else None for leg in legs],
        [p.suspect_reason for p in pings],
        [Jsonb(p.attributes) if p.attributes else None for p in pings],
    ]
    return binary_execute(INSERT_SQL, columns).rowcount


# The primary key of each closed day not packed yet. The mark is a comment written once the
# rebuild succeeded: the fillfactor must be set before the rebuild (which reads it), so a
# run killed in between leaves it set on a key that was never rebuilt.
PACKED = "packed"
UNPACKED_KEYS_SQL = """
SELECT c.relname, i.indexrelid::regclass::text
FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE h.inhparent = 'tracking_ping'::regclass AND c.relname < %s
  AND obj_description(i.indexrelid, 'pg_class') IS DISTINCT FROM %s
ORDER BY c.relname
"""
# What a REINDEX CONCURRENTLY killed half-way leaves: an invalid copy of the index named
# <index>_ccnew (or _ccnew1 ...), still updated by every insert into its partition.
LEFTOVER_REBUILDS_SQL = """
SELECT i.indexrelid::regclass::text
FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE h.inhparent = 'tracking_ping'::regclass AND NOT i.indisvalid AND ic.relname ~ '_ccnew[0-9]*$'
"""


def ping_partitions_pack(*, today: dt.date | None = None) -> list[str]:
    """Rebuild the primary key of each day before `today` (UTC), full to the brim; return
    the partitions packed.

    While a day takes pings, each courier inserts at the end of its own key range, so
    every leaf page that splits is left half full for good (PostgreSQL keeps split pages
    full only for narrow keys): the key costs about twice its size. Once the day is over,
    its pings barely change (a late ping now and then), so a rebuild at fillfactor 100
    halves it. REINDEX CONCURRENTLY blocks neither reads nor late inserts; it must run
    outside a transaction.

    Steps: drop what an earlier run killed half-way left (invalid `_ccnew` indexes); then
    for each closed day not marked packed: fillfactor 100, rebuild, mark."""
    today = today or dt.datetime.now(dt.UTC).date()
    packed = []
    with connection.cursor() as cursor:
        cursor.execute(LEFTOVER_REBUILDS_SQL)
        for (leftover,) in cursor.fetchall():
            logger.warning("dropping %s, left invalid by an interrupted rebuild", leftover)
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{leftover}"')
        cursor.execute(UNPACKED_KEYS_SQL, [ping_partition_name(day=today), PACKED])
        for partition, key in cursor.fetchall():
            if not DAILY_PARTITION.match(partition):
                continue  # the default partition stays empty
            cursor.execute(f'ALTER INDEX "{key}" SET (fillfactor = 100)')
            cursor.execute(f'REINDEX INDEX CONCURRENTLY "{key}"')
            cursor.execute(f"COMMENT ON INDEX \"{key}\" IS '{PACKED}'")
            packed.append(partition)
    if packed:
        logger.info("packed the keys of ping partitions %s", ", ".join(packed))
    return packed
