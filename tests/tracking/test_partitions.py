from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import OperationalError, connection
from django.db import connections as db_connections
from django.utils import timezone

from tests.support.builders import CourierFactory, ping, pings_record
from tests.support.database import database_connect
from tests.support.waiting import wait_for
from tracking.services.partitions import ping_partitions_drop_expired, ping_partitions_ensure


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'tracking_ping'::regclass")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_partitions_are_created_ahead_and_the_call_is_idempotent():
    far = timezone.now().date() + dt.timedelta(days=30)

    created = ping_partitions_ensure(today=far)

    assert f"tracking_ping_p{far + dt.timedelta(days=7):%Y%m%d}" in created
    assert ping_partitions_ensure(today=far) == []
    assert f"tracking_ping_p{far:%Y%m%d}" in partitions()


@pytest.mark.django_db
def test_pings_land_in_their_day_partition_not_the_default_one(courier):
    pings_record(courier, [ping(seconds_ago=2 * 86400)])

    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text, recorded_at FROM tracking_ping")
        table, recorded_at = cursor.fetchone()
    assert table == f"tracking_ping_p{recorded_at.astimezone(dt.UTC):%Y%m%d}"


@pytest.mark.django_db
def test_partitions_past_the_retention_are_dropped_and_recent_ones_kept(settings):
    settings.TRACKING = {**settings.TRACKING, "RETENTION_DAYS": 3, "MAX_AGE_S": 86400}
    today = timezone.now().date()

    dropped = ping_partitions_drop_expired(today=today)

    names = partitions()
    assert f"tracking_ping_p{today - dt.timedelta(days=4):%Y%m%d}" in dropped
    assert f"tracking_ping_p{today - dt.timedelta(days=3):%Y%m%d}" in names
    assert f"tracking_ping_p{today:%Y%m%d}" in names and "tracking_ping_default" in names
    assert not any(
        name < f"tracking_ping_p{today - dt.timedelta(days=3):%Y%m%d}" for name in names - {"tracking_ping_default"}
    )


@pytest.mark.django_db
def test_days_the_ingest_still_accepts_are_never_dropped(settings):
    settings.TRACKING = {**settings.TRACKING, "RETENTION_DAYS": 1, "MAX_AGE_S": 7 * 86400}
    today = timezone.now().date()

    ping_partitions_drop_expired(today=today)

    assert f"tracking_ping_p{today - dt.timedelta(days=7):%Y%m%d}" in partitions()


# The lifecycle across a day boundary, with the clock given to the services (`today`).


def ping_table(event_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM tracking_ping WHERE event_id = %s", [event_id])
        return cursor.fetchone()[0]


def at_utc(day: dt.date, time: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(time), tzinfo=dt.UTC)


@pytest.mark.django_db
def test_tomorrows_partition_exists_before_midnight_and_pings_either_side_land_in_their_day(courier):
    day = timezone.now().date() + dt.timedelta(days=60)
    ping_partitions_ensure(today=day)  # beat's run during `day`
    before, after = ping(), ping()
    before["recorded_at"] = at_utc(day, "23:59:59.999999").isoformat()
    after["recorded_at"] = at_utc(day + dt.timedelta(days=1), "00:00:00").isoformat()

    pings_record(courier, [before, after])

    assert ping_table(before["event_id"]) == f"tracking_ping_p{day:%Y%m%d}"
    assert ping_table(after["event_id"]) == f"tracking_ping_p{day + dt.timedelta(days=1):%Y%m%d}"


@pytest.mark.django_db
def test_a_ping_for_a_day_without_partition_is_kept_and_moves_into_the_day_when_it_is_created(courier):
    # A day no partition covers yet: the ping waits in the default partition, then creating its
    # day (beat, once the day is within reach) moves it there instead of failing.
    day = timezone.now().date() + dt.timedelta(days=100)
    early = ping()
    early["recorded_at"] = at_utc(day, "08:00:00").isoformat()

    assert pings_record(courier, [early]) == 1
    assert ping_table(early["event_id"]) == "tracking_ping_default"

    assert f"tracking_ping_p{day:%Y%m%d}" in ping_partitions_ensure(today=day - dt.timedelta(days=1))

    assert ping_table(early["event_id"]) == f"tracking_ping_p{day:%Y%m%d}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_ping_default")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_dropping_expired_partitions_behind_a_long_reader_does_not_hold_up_ingest(settings):
    """A report reading the ping table holds a lock that DETACH must wait for; while DETACH
    waits, every insert queues behind it. The drop must give way instead."""
    settings.TRACKING = {**settings.TRACKING, "PARTITION_LOCK_TIMEOUT_MS": 500, "PARTITION_DDL_ATTEMPTS": 3}
    expired_day = timezone.now().date() - dt.timedelta(days=settings.TRACKING["RETENTION_DAYS"] + 30)
    ping_partitions_ensure(today=expired_day)
    courier = CourierFactory()
    reader = database_connect()
    reader.execute("SELECT count(*) FROM tracking_ping")  # the transaction stays open

    def drop() -> None:
        try:
            ping_partitions_drop_expired()
        except OperationalError:
            pass  # gave way; beat tries again later
        finally:
            db_connections.close_all()

    def ingest() -> None:
        try:
            pings_record(courier, [ping()])
        finally:
            db_connections.close_all()

    dropping = threading.Thread(target=drop)
    ingesting = threading.Thread(target=ingest)
    try:
        dropping.start()
        wait_for(detach_waiting, timeout=10, message="the detach to wait for the reader's lock")
        ingesting.start()
        ingesting.join(timeout=10)
        assert not ingesting.is_alive(), "ingest waited behind the partition drop"
    finally:
        reader.close()
        dropping.join(timeout=30)
        ingesting.join(timeout=30)

    # Once the reader is gone, the drop goes through (on a retry or on the next run).
    ping_partitions_drop_expired()
    assert f"tracking_ping_p{expired_day:%Y%m%d}" not in partitions()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_ping")
        assert cursor.fetchone()[0] == 1


def detach_waiting() -> bool:
    with database_connect(autocommit=True) as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock' "
                "AND relation = 'tracking_ping'::regclass"
            ).fetchone()
        )


@pytest.fixture
def long_reader():
    """Another connection in the middle of a transaction that read the ping table: it holds
    a lock that partition DDL needs until it ends."""
    with database_connect() as reader:
        reader.execute("SELECT count(*) FROM tracking_ping")
        yield reader


@pytest.mark.django_db
def test_dropping_a_partition_gives_way_to_a_long_reader_and_succeeds_once_it_ends(settings, long_reader):
    settings.TRACKING = {
        **settings.TRACKING, "RETENTION_DAYS": 3, "MAX_AGE_S": 86400,
        "PARTITION_LOCK_TIMEOUT_MS": 50, "PARTITION_DDL_ATTEMPTS": 3,
    }  # fmt: skip
    today = timezone.now().date()
    expired = f"tracking_ping_p{today - dt.timedelta(days=4):%Y%m%d}"
    started = time.monotonic()

    with pytest.raises(OperationalError, match="lock timeout"):
        ping_partitions_drop_expired(today=today)

    assert time.monotonic() - started < 5  # three waits of 50 ms and two pauses, not forever
    assert expired in partitions()
    long_reader.rollback()
    assert expired in ping_partitions_drop_expired(today=today)
    assert expired not in partitions()


@pytest.mark.django_db
def test_a_new_partition_has_its_primary_key_from_the_statement_that_creates_it():
    """DMS learns of a new partition from its captured CREATE TABLE and reads the table's key
    then: a partition that gets its key only at ATTACH replicates without one (DMS cannot
    apply its updates and deletes by key). What the DDL capture's event trigger sees is
    recorded here by a trigger of the same kind."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE created_seen (name text, has_key boolean)")
        cursor.execute(
            "CREATE FUNCTION pg_temp.created_record() RETURNS event_trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO created_seen SELECT c.object_identity, EXISTS ("
            "  SELECT 1 FROM pg_index i WHERE i.indrelid = c.objid AND i.indisprimary) "
            "FROM pg_event_trigger_ddl_commands() c WHERE c.command_tag = 'CREATE TABLE' AND c.object_type = 'table'; "
            "END $$"
        )
        cursor.execute(
            "CREATE EVENT TRIGGER created_seen ON ddl_command_end WHEN TAG IN ('CREATE TABLE') "
            "EXECUTE FUNCTION pg_temp.created_record()"
        )
    day = timezone.now().date() + dt.timedelta(days=200)

    created = ping_partitions_ensure(today=day)

    with connection.cursor() as cursor:
        cursor.execute("DROP EVENT TRIGGER created_seen")
        cursor.execute("SELECT name, has_key FROM created_seen")
        seen = dict(cursor.fetchall())
    assert created and {f"public.{name}" for name in created} == set(seen)
    assert all(seen.values()), seen
    # ATTACH adopted the copied indexes: each of the parent's once, none twice.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM pg_index WHERE indrelid = 'tracking_ping'::regclass), "
            "(SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass), "
            "(SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid "
            " WHERE x.indrelid = %s::regclass)",
            [created[0], created[0]],
        )
        parent, partition, attached = cursor.fetchone()
    assert parent == partition == attached
