"""Migration tracking 0008 gives each event one identity: it fills the event table from the
pings still inside the acceptance window, and merges the dead letters of one event that
were kept apart because their device time (or event id) was written differently."""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.support.builders import CourierFactory
from tracking.models import Ping, PingDeadLetter

migration = importlib.import_module("tracking.migrations.0008_ping_event_identity")

PING_COLUMNS = "event_id, recorded_at, received_at, courier_id, lat, lon"


def stored_without_identity(*, courier_id: uuid.UUID, event_id: uuid.UUID, recorded_at: dt.datetime) -> None:
    """A ping as the writer stored it before events had their own table."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO tracking_ping ({PING_COLUMNS}) VALUES (%s, %s, %s, %s, -23.56, -46.65)",
            [event_id, recorded_at, recorded_at, courier_id],
        )


def events() -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT courier_id, event_id, recorded_at FROM tracking_pingevent")
        return set(cursor.fetchall())


@pytest.mark.django_db
def test_the_events_of_the_pings_inside_the_window_are_filled_in_once_each():
    keep = dt.timedelta(seconds=settings.TRACKING["EVENT_IDENTITY_KEEP_S"])
    now = timezone.now()
    courier_id, recent, twice, old = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    stored_without_identity(courier_id=courier_id, event_id=recent, recorded_at=now - dt.timedelta(minutes=1))
    # Stored twice before, at two device times: the earliest is the event's.
    stored_without_identity(courier_id=courier_id, event_id=twice, recorded_at=now - dt.timedelta(days=1))
    stored_without_identity(courier_id=courier_id, event_id=twice, recorded_at=now - dt.timedelta(hours=23))
    stored_without_identity(courier_id=courier_id, event_id=old, recorded_at=now - keep - dt.timedelta(hours=1))

    migration.ping_events_fill(None, SimpleNamespace(connection=connection))
    migration.ping_events_fill(None, SimpleNamespace(connection=connection))  # a second run changes nothing

    assert events() == {
        (courier_id, recent, now - dt.timedelta(minutes=1)),
        (courier_id, twice, now - dt.timedelta(days=1)),
    }
    assert Ping.objects.count() == 4  # nothing stored is deleted


@pytest.mark.django_db
def test_dead_letters_of_one_event_are_merged_into_its_first_row():
    courier = CourierFactory()
    event_id = uuid.uuid4()
    t0 = timezone.now() - dt.timedelta(hours=3)
    t2 = t0 + dt.timedelta(hours=2)
    with connection.cursor() as cursor:
        # The old key let these coexist: the same event, its time and id written otherwise.
        # (The test's transaction rolls the constraint back.)
        cursor.execute("ALTER TABLE tracking_pingdeadletter DROP CONSTRAINT ping_dead_letter_unique")
    rows = [
        (str(event_id), "2026-01-10T12:00:00.123000+00:00", 2, t0, t0 + dt.timedelta(hours=1), "A", None),
        (str(event_id).upper(), "2026-01-10T09:00:00.123-03:00", 1, t2, t2, "B", None),
        (str(event_id), "2026-01-10T12:00:01+00:00", 3, t0 - dt.timedelta(hours=1), t0, "C", t0),
    ]  # fmt: skip
    letters = [
        PingDeadLetter.objects.create(
            courier=courier, event_id=e, recorded_at=r, received_at=first, ping="{}", error_class=error,
            error_message=error, failures=failures, first_failed_at=first, last_failed_at=last, replayed_at=replayed,
        )
        for e, r, failures, first, last, error, replayed in rows
    ]  # fmt: skip
    other = PingDeadLetter.objects.create(
        courier=courier, event_id="not an id", recorded_at="x", received_at=t0, ping="{}", error_class="D",
        error_message="D", first_failed_at=t0, last_failed_at=t0,
    )  # fmt: skip

    migration.dead_letters_merge(django_apps, SimpleNamespace(connection=connection))

    merged = PingDeadLetter.objects.exclude(id=other.id).get()
    assert merged.id == letters[0].id  # the oldest row not replayed yet keeps the event
    assert (merged.event_id, merged.failures, merged.error_class, merged.replayed_at) == (str(event_id), 6, "B", None)
    assert (merged.first_failed_at, merged.last_failed_at) == (t0 - dt.timedelta(hours=1), t2)
    assert PingDeadLetter.objects.filter(id=other.id).exists()
