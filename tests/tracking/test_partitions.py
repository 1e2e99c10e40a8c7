from __future__ import annotations

import datetime as dt
import time

import psycopg
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from tests.conftest import ping
from tracking.models import Ping
from tracking.services.ingest import ping_batch_record
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
    ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=2 * 86400)])

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


def partition_of(event_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM tracking_ping WHERE event_id = %s", [event_id])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_ping_of_a_day_without_partition_is_moved_into_it_when_the_day_is_created(courier):
    far = timezone.now() + dt.timedelta(days=40)
    early = ping(seconds_ago=-40 * 86400)
    ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=[early])
    assert partition_of(early["event_id"]) == "tracking_ping_default"

    created = ping_partitions_ensure(today=far.date())

    day = f"tracking_ping_p{dt.datetime.fromisoformat(early['recorded_at']).astimezone(dt.UTC):%Y%m%d}"
    assert day in created
    assert partition_of(early["event_id"]) == day
    assert Ping.objects.filter(event_id=early["event_id"]).count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_ping_default")
        assert cursor.fetchone()[0] == 0


@pytest.fixture
def long_reader():
    """Another connection in the middle of a transaction that read the ping table: it holds
    a lock that partition DDL needs until it ends."""
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=db["USER"]) as reader:
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
