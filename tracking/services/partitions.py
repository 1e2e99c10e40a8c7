"""Daily partitions of `tracking_ping`, created ahead of time.

Pings are accepted up to `MAX_AGE_S` (7 days) old and a few minutes in the future, so the
partitions from a week back to `PARTITION_DAYS_AHEAD` days ahead must exist; beat runs this
hourly. A row outside them lands in `tracking_ping_default`; creating its day's partition
later moves it there. Every DDL statement gives up its lock wait quickly and is tried again,
so maintenance never stalls ingest.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time

from django.db import DatabaseError, connections, transaction
from django.db.backends.utils import CursorWrapper

from tracking.rules import tracking_rules

logger = logging.getLogger(__name__)


DAILY_PARTITION = re.compile(r"^tracking_ping_p[0-9]{8}$")
# Worth another try: lock_timeout expired; or a ping of the day being created landed in the
# default partition between the move and the ATTACH, which then refuses (check_violation).
RETRIED_SQLSTATES = {"55P03", "23514"}


def ping_partition_name(*, day: dt.date) -> str:
    return f"tracking_ping_p{day:%Y%m%d}"


def ping_partitions_list(*, cursor: CursorWrapper) -> list[tuple[str, float]]:
    """Every partition of `tracking_ping` (the default one included), by name, with the
    planner's row estimate."""
    cursor.execute(
        "SELECT c.relname, c.reltuples FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'tracking_ping' ORDER BY c.relname"
    )
    partitions: list[tuple[str, float]] = cursor.fetchall()
    return partitions


def ping_partitions_ensure(*, today: dt.date | None = None, using: str = "default") -> list[str]:
    """Create the missing daily partitions around today (UTC); return the ones created."""
    today = today or dt.datetime.now(dt.UTC).date()
    rules = tracking_rules()
    days_back = rules.max_age_s // 86400 + 1
    days_ahead = rules.partition_days_ahead
    with connections[using].cursor() as cursor:
        existing = {name for name, _ in ping_partitions_list(cursor=cursor)}
    created = []
    for offset in range(-days_back, days_ahead + 1):
        day = today + dt.timedelta(days=offset)
        name = ping_partition_name(day=day)
        if name not in existing:
            ping_partition_create(day=day, using=using)
            created.append(name)
    if created:
        logger.info("created ping partitions %s", ", ".join(created))
    return created


def ping_partition_create(*, day: dt.date, using: str = "default") -> None:
    """Steps, in one transaction: create the day's table on its own, with the parent's
    primary key and indexes, move the day's rows out of the default partition into it,
    attach it (which adopts those indexes instead of building new ones).
    `CREATE TABLE ... PARTITION OF` would fail while the default partition holds rows of
    that day (a ping that arrived before its partition existed), and would lock the whole
    table while it checks; ATTACH locks the parent only in SHARE UPDATE EXCLUSIVE mode, so
    inserts go on meanwhile. The key comes with the CREATE because DMS reads a new table's
    key when it sees that statement (its DDL capture), not at the ATTACH."""
    name = ping_partition_name(day=day)
    # Bounds are UTC midnights; the names are literals built from dates only.
    low, high = f"'{day.isoformat()} 00:00:00+00'", f"'{(day + dt.timedelta(days=1)).isoformat()} 00:00:00+00'"
    ddl_run(
        using=using,
        statements=[
            f"CREATE TABLE {name} (LIKE tracking_ping INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)",
            f"WITH moved AS (DELETE FROM tracking_ping_default WHERE recorded_at >= {low} AND recorded_at < {high} "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            f"ALTER TABLE tracking_ping ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})",
        ],
    )


def ping_partitions_drop_expired(*, today: dt.date | None = None, using: str = "default") -> list[str]:
    """Drop the daily partitions older than RETENTION_DAYS; return the ones dropped.

    Whole partitions go: no DELETE, no vacuum. The analytics copy keeps them, because
    dropping a table is not a row change that logical replication (DMS CDC) carries.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    # Never drop a day the ingest still accepts pings for (they would land in the default
    # partition) or that ping_partitions_ensure would create again.
    rules = tracking_rules()
    keep_days = max(rules.retention_days, rules.max_age_s // 86400 + 1)
    oldest_kept = ping_partition_name(day=today - dt.timedelta(days=keep_days))
    with connections[using].cursor() as cursor:
        expired = [
            name
            for name, _ in ping_partitions_list(cursor=cursor)
            if DAILY_PARTITION.match(name) and name < oldest_kept
        ]
    dropped = []
    for name in expired:
        # Detach first, in its own transaction: the parent's exclusive lock is held only for
        # the detach, not the drop. (DETACH ... CONCURRENTLY is refused while a default
        # partition exists.)
        ddl_run(using=using, statements=[f"ALTER TABLE tracking_ping DETACH PARTITION {name}"])
        ddl_run(using=using, statements=[f"DROP TABLE {name}"])
        dropped.append(name)
    if dropped:
        logger.info("dropped expired ping partitions %s", ", ".join(dropped))
    return dropped


def ddl_run(*, statements: list[str], using: str = "default") -> None:
    """Run `statements` in one transaction that waits at most PARTITION_LOCK_TIMEOUT_MS for
    each lock, tried PARTITION_DDL_ATTEMPTS times with a growing pause between tries (with the
    defaults: 5 tries, 2 s each, pauses of 2, 4, 6 and 8 s, so at most 30 s).

    Why: DDL on the ping table needs a lock that conflicts with ingest. While it waits behind
    a long reader, every insert queues behind it; giving up quickly lets ingest go on, and the
    next try (or beat's next run, hours before the partition is needed) gets the lock."""
    rules = tracking_rules()
    attempts, timeout_ms = rules.partition_ddl_attempts, rules.partition_lock_timeout_ms
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic(using=using), connections[using].cursor() as cursor:
                # SET LOCAL: the timeout ends with this transaction.
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{timeout_ms}ms"])
                for statement in statements:
                    cursor.execute(statement)
            return
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in RETRIED_SQLSTATES or attempt == attempts:
                raise
            logger.warning("ping partition DDL failed (try %d of %d), trying again: %s", attempt, attempts, exc)
            time.sleep(attempt * timeout_ms / 1000)
