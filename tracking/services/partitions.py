"""Daily partitions of `tracking_ping`, created ahead of time.

Pings are accepted up to `MAX_AGE_S` (7 days) old and a few minutes in the future, so the
partitions from a week back to `PARTITION_DAYS_AHEAD` days ahead must exist; beat runs this
hourly. A row outside them lands in `tracking_ping_default`, which must stay empty: a day's
partition cannot be created while the default partition holds rows of that day.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


DAILY_PARTITION = re.compile(r"^tracking_ping_p[0-9]{8}$")


def ping_partition_name(*, day: dt.date) -> str:
    return f"tracking_ping_p{day:%Y%m%d}"


def ping_partitions_list(*, cursor) -> list[tuple[str, float]]:
    """Every partition of `tracking_ping` (the default one included), by name, with the
    planner's row estimate."""
    cursor.execute(
        "SELECT c.relname, c.reltuples FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'tracking_ping' ORDER BY c.relname"
    )
    return cursor.fetchall()


def ping_partitions_ensure(*, today: dt.date | None = None, using: str = "default") -> list[str]:
    """Create the missing daily partitions around today (UTC); return the ones created."""
    today = today or dt.datetime.now(dt.UTC).date()
    days_back = settings.TRACKING["MAX_AGE_S"] // 86400 + 1
    days_ahead = settings.TRACKING["PARTITION_DAYS_AHEAD"]
    created = []
    with connections[using].cursor() as cursor:
        existing = {name for name, _ in ping_partitions_list(cursor=cursor)}
        for offset in range(-days_back, days_ahead + 1):
            day = today + dt.timedelta(days=offset)
            name = ping_partition_name(day=day)
            if name in existing:
                continue
            # Bounds are UTC midnights; the names are literals built from dates only.
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF tracking_ping "
                f"FOR VALUES FROM ('{day.isoformat()} 00:00:00+00') "
                f"TO ('{(day + dt.timedelta(days=1)).isoformat()} 00:00:00+00')"
            )
            created.append(name)
    if created:
        logger.info("created ping partitions %s", ", ".join(created))
    return created


def ping_partitions_drop_expired(*, today: dt.date | None = None, using: str = "default") -> list[str]:
    """Drop the daily partitions older than RETENTION_DAYS; return the ones dropped.

    Whole partitions go: no DELETE, no vacuum. The analytics copy keeps them, because
    dropping a table is not a row change that logical replication (DMS CDC) carries.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    # Never drop a day the ingest still accepts pings for (they would land in the default
    # partition) or that ping_partitions_ensure would create again.
    keep_days = max(settings.TRACKING["RETENTION_DAYS"], settings.TRACKING["MAX_AGE_S"] // 86400 + 1)
    oldest_kept = ping_partition_name(day=today - dt.timedelta(days=keep_days))
    dropped = []
    with connections[using].cursor() as cursor:
        expired = [
            name
            for name, _ in ping_partitions_list(cursor=cursor)
            if DAILY_PARTITION.match(name) and name < oldest_kept
        ]
        for name in expired:
            # Detach first: the parent's lock is held only for the detach, not the drop.
            cursor.execute(f"ALTER TABLE tracking_ping DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
            dropped.append(name)
    if dropped:
        logger.info("dropped expired ping partitions %s", ", ".join(dropped))
    return dropped
