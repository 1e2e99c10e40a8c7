"""One event, one ping: a ping's identity is (courier, event id), whatever its device time.

Steps: create `tracking_pingevent` (tracking.models.PingEvent) and fill it from the pings
still inside the acceptance window (EVENT_IDENTITY_KEEP_S), the earliest device time of an
event stored twice being its identity (the pings themselves are kept); key the dead letters
on (courier, event id), the event id in its canonical form, merging the rows of one event
the old key (the device time as text) kept apart.

The fill and the merge can run again without harm (ON CONFLICT DO NOTHING; nothing left to
merge), e.g. after a deploy where writers without the event table ran past the migration.
"""

import datetime as dt
import uuid

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import migrations, models

FILL_SQL = """
INSERT INTO tracking_pingevent (courier_id, event_id, recorded_at)
SELECT DISTINCT ON (courier_id, event_id) courier_id, event_id, recorded_at
FROM tracking_ping
WHERE recorded_at >= now() - make_interval(secs => %s)
ORDER BY courier_id, event_id, recorded_at
ON CONFLICT DO NOTHING
"""


def ping_events_fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FILL_SQL, [settings.TRACKING["EVENT_IDENTITY_KEEP_S"]])


def _canonical(event_id: str) -> str:
    try:
        return str(uuid.UUID(event_id))
    except ValueError:
        return event_id


def dead_letters_merge(apps, schema_editor):
    """Per (courier, canonical event id): keep the oldest row not replayed yet (else the
    oldest row), with the failures summed, the first and last failure times of all, and
    the newest error; delete the others. Dead letters are few: plain Python reads best."""
    PingDeadLetter = apps.get_model("tracking", "PingDeadLetter")
    letters = PingDeadLetter.objects.using(schema_editor.connection.alias)
    groups: dict[tuple, list] = {}
    for letter in letters.order_by("id"):
        groups.setdefault((letter.courier_id, _canonical(letter.event_id)), []).append(letter)
    for (_, event_id), rows in groups.items():
        kept = next((row for row in rows if row.replayed_at is None), rows[0])
        newest = max(rows, key=lambda row: (row.last_failed_at, row.id))
        merged = {
            "event_id": event_id,
            "failures": sum(row.failures for row in rows),
            "first_failed_at": min(row.first_failed_at for row in rows),
            "last_failed_at": newest.last_failed_at,
            "error_class": newest.error_class,
            "error_message": newest.error_message,
        }
        if len(rows) == 1 and kept.event_id == event_id:
            continue
        letters.filter(id__in=[row.id for row in rows if row.id != kept.id]).delete()
        letters.filter(id=kept.id).update(**merged)


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0007_last_location_event_id"),
    ]

    operations = [
        migrations.CreateModel(
            name="PingEvent",
            fields=[
                ("pk", models.CompositePrimaryKey("courier_id", "event_id", blank=True, editable=False, primary_key=True, serialize=False)),
                ("courier_id", models.UUIDField()),
                ("event_id", models.UUIDField()),
                ("recorded_at", models.DateTimeField()),
            ],
            options={
                "indexes": [BrinIndex(fields=["recorded_at"], name="ping_event_recorded_at")],
            },
        ),
        migrations.RunPython(ping_events_fill, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="pingdeadletter", name="ping_dead_letter_unique"),
        migrations.RunPython(dead_letters_merge, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="pingdeadletter",
            constraint=models.UniqueConstraint(fields=("courier", "event_id"), name="ping_dead_letter_unique"),
        ),
    ]
