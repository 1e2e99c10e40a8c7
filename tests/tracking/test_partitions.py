from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import ping
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
