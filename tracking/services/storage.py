"""Raw ping storage: one statement per batch into the day-partitioned `tracking_ping` and
its event identities (`tracking_pingevent`), the pruning of those identities once no copy
can arrive, and the packing of a day's key once the day is over."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from infra.db.queries import binary_execute
from tracking.columns import PING_COLUMN_NAMES, ping_insert_sql
from tracking.rules import tracking_rules
from tracking.services.enrichment import EnrichedPing
from tracking.services.partitions import DAILY_PARTITION, ping_partition_name

logger = logging.getLogger(__name__)

# Replaces `Ping.objects.bulk_create(ignore_conflicts=True)`: one statement claims each
# event's identity in `tracking_pingevent` and inserts the pings that won their claim, which
# the ORM cannot say. It is generated from the ping's columns (`tracking.columns`): one
# array per column, as binary parameters (%b): psycopg builds text arrays in a slow Python
# loop.
#
# - The claim, keyed (courier_id, event_id), is what makes a copy of an event with another
#   device time (milliseconds instead of microseconds, a corrected clock, another day's
#   partition) a no-op: tracking_ping's own key must hold recorded_at, the partition key.
#   Two workers racing on one event: the second's claim waits on the first's uncommitted
#   row and, once it commits, does nothing (once it rolls back, claims it), so the event is
#   stored once. Another courier's event that reuses the id has its own claim.
# - Claims go in key order, so two batches sharing events wait on each other in the same
#   order and cannot deadlock; the earliest device time of copies in one batch wins.
# - The join on recorded_at lets only the claimed copy through.
# - ON CONFLICT DO NOTHING on the ping itself: a copy with the same device time whose claim
#   was pruned (or a ping stored before claims existed) is still stored once.
# The statement returns the pings stored, for the last locations and notifications.
INSERT_SQL = ping_insert_sql()


def pings_store(*, pings: list[EnrichedPing]) -> list[EnrichedPing]:
    """Insert the batch; return the pings stored (in the batch's order): not those already
    stored, nor copies of an event already stored with another device time."""
    if not pings:
        return []
    columns = [[getattr(p, name) for p in pings] for name in PING_COLUMN_NAMES]
    # jsonb goes wrapped; NULL rather than {} when the app sent none (a NULL costs no bytes).
    attributes = PING_COLUMN_NAMES.index("attributes")
    columns[attributes] = [Jsonb(value) if value else None for value in columns[attributes]]
    stored = set(binary_execute(INSERT_SQL, columns).fetchall())
    kept = []
    for p in pings:
        key = (p.courier_id, p.event_id, p.recorded_at)
        if key in stored:  # once: a ping sent twice in the batch is stored once
            stored.discard(key)
            kept.append(p)
    return kept


# A chunk per transaction: one DELETE of a day's events would hold their locks and bloat
# the table in one go.
PRUNE_SQL = """
DELETE FROM tracking_pingevent WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM tracking_pingevent WHERE recorded_at < %s LIMIT %s))
"""


def ping_events_prune(*, now: dt.datetime | None = None, chunk: int = 10_000) -> int:
    """Forget the identity of the events older than EVENT_IDENTITY_KEEP_S (by their stored
    device time), `chunk` rows per statement, each committed on its own; return how many.

    Past that age the API refuses a copy with the same device time, and a queued copy has
    stopped being retried: only a copy with another device time could still arrive."""
    now = now or timezone.now()
    before = now - dt.timedelta(seconds=tracking_rules().event_identity_keep_s)
    pruned: int = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(PRUNE_SQL, [before, chunk])
            pruned += cursor.rowcount
        if cursor.rowcount < chunk:
            break
    if pruned:
        logger.info("forgot the identity of %d events stored before %s", pruned, before.isoformat())
    return pruned


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
