"""A ping the database refuses never takes its batch with it: the good pings are stored with
their last-location update and notifications, the bad one is kept as a dead letter, and a
replay once it is fixed stores it once. The service is called directly with pings the web
validation may or may not catch: this layer must hold on its own."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Notification
from tests.support.builders import SAO_PAULO, ping, pings_record
from tracking.models import OrderLastLocation, Ping, PingDeadLetter
from tracking.services.dead_letters import ping_dead_letters_replay

POISONS = {
    "float4 overflow": {"accuracy_m": 1e39},
    "float4 underflow": {"speed_mps": 1e-50},
    "lone surrogate in jsonb": {"attributes": {"note": "\ud800"}},
}


@pytest.mark.django_db
@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
def test_a_refused_ping_is_dead_lettered_and_its_neighbours_are_stored(courier, in_transit_order, poison):
    batch = [ping(seconds_ago=10 - i, lat=-23.5700 + i * 0.0001) for i in range(7)]
    batch[3].update(poison)

    assert pings_record(courier, batch) == 6

    stored = set(Ping.objects.values_list("event_id", flat=True))
    assert {str(e) for e in stored} == {p["event_id"] for i, p in enumerate(batch) if i != 3}
    letter = PingDeadLetter.objects.get()
    assert (letter.courier_id, letter.event_id, letter.failures) == (courier.id, batch[3]["event_id"], 1)
    assert letter.error_class.startswith("django.db") and letter.error_message
    assert json.loads(letter.ping) == batch[3]  # kept as sent, even what jsonb refuses
    # The newest good ping moved the order.
    assert OrderLastLocation.objects.get(order=in_transit_order).location.y == pytest.approx(batch[-1]["lat"])


# Values the database refuses, though JSON carries them: outside float4, or text jsonb rejects.
REFUSED = st.one_of(
    st.floats(min_value=3.5e38, max_value=1e308).map(lambda x: {"accuracy_m": x}),
    st.floats(min_value=-1e308, max_value=-3.5e38).map(lambda x: {"heading_deg": x}),
    st.floats(min_value=1e-300, max_value=1e-46).map(lambda x: {"speed_mps": x}),
    st.sampled_from(["\ud800", "a\udfff", "\x00", "nul\x00end"]).map(lambda t: {"attributes": {"note": t}}),
    st.sampled_from(["\ud800", "\x00"]).map(lambda t: {"attributes": {t: 1}}),
)


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 24), data=st.data())
def test_any_refused_pings_anywhere_in_a_batch_are_exactly_the_ones_dead_lettered(courier, size, data):
    batch = [ping(seconds_ago=size - i, lat=-23.57 + i * 0.0001) for i in range(size)]
    bad = data.draw(st.sets(st.integers(0, size - 1)))
    for i in bad:
        batch[i].update(data.draw(REFUSED))

    assert pings_record(courier, batch) == size - len(bad)

    sent = [p["event_id"] for p in batch]  # the examples share the test's transaction
    stored = {str(e) for e in Ping.objects.filter(event_id__in=sent).values_list("event_id", flat=True)}
    letters = set(PingDeadLetter.objects.filter(event_id__in=sent).values_list("event_id", flat=True))
    assert stored == {p["event_id"] for i, p in enumerate(batch) if i not in bad}
    assert letters == {batch[i]["event_id"] for i in bad}


@pytest.mark.django_db
def test_two_refused_pings_in_one_batch_are_both_kept_and_the_arriving_notice_still_goes(courier, in_transit_order):
    batch = [ping(seconds_ago=5 - i, lat=SAO_PAULO[0], lon=SAO_PAULO[1]) for i in range(5)]
    batch[0].update(POISONS["float4 overflow"])
    batch[4].update(POISONS["lone surrogate in jsonb"])

    assert pings_record(courier, batch) == 3

    refused = {batch[0]["event_id"], batch[4]["event_id"]}
    assert set(PingDeadLetter.objects.values_list("event_id", flat=True)) == refused
    assert list(Notification.objects.filter(order=in_transit_order).values_list("kind", flat=True)) == ["arriving"]


@pytest.mark.django_db
def test_a_redelivered_batch_stores_nothing_twice_and_counts_the_failure_on_the_same_row(courier):
    batch = [ping(seconds_ago=2), ping(seconds_ago=1, **POISONS["float4 overflow"])]

    assert pings_record(courier, batch) == 1
    assert pings_record(courier, batch) == 0

    assert Ping.objects.count() == 1
    assert PingDeadLetter.objects.get().failures == 2


@pytest.mark.django_db
def test_dead_letters_of_one_instant_written_differently_are_one_row(courier):
    sent = ping(recorded_at="2026-01-10T12:00:00.123000+00:00", **POISONS["float4 overflow"])
    written_otherwise = {**sent, "event_id": sent["event_id"].upper(), "recorded_at": "2026-01-10T09:00:00.123-03:00"}

    pings_record(courier, [sent])
    pings_record(courier, [written_otherwise])

    letter = PingDeadLetter.objects.get()
    assert (letter.event_id, letter.failures) == (sent["event_id"], 2)
    assert json.loads(letter.ping) == sent  # the copy first refused


@pytest.mark.django_db
def test_dead_letters_of_one_event_at_two_device_times_are_one_row(courier):
    sent = ping(seconds_ago=60, **POISONS["lone surrogate in jsonb"])
    resent = {**sent, "recorded_at": ping(seconds_ago=5)["recorded_at"]}

    pings_record(courier, [sent])
    pings_record(courier, [resent])

    assert PingDeadLetter.objects.get().failures == 2


@pytest.mark.django_db
def test_replaying_a_dead_letter_whose_event_was_stored_since_stores_nothing_twice(courier):
    sent = ping(seconds_ago=60, accuracy_m=1e39)
    pings_record(courier, [sent])
    # The app resent the event later, fixed and with a corrected clock: it is stored.
    assert pings_record(courier, [{**sent, "accuracy_m": 4.0, "recorded_at": ping(seconds_ago=5)["recorded_at"]}]) == 1
    PingDeadLetter.objects.update(ping=json.dumps({**sent, "accuracy_m": 3.0}))

    assert ping_dead_letters_replay() == {"replayed": 1, "failed": 0}

    assert Ping.objects.get().accuracy_m == 4.0


@pytest.mark.django_db
def test_replay_stores_a_fixed_ping_once_and_leaves_one_still_refused(courier):
    fixed_later, still_bad = ping(seconds_ago=2, accuracy_m=1e39), ping(seconds_ago=1, speed_mps=1e-50)
    pings_record(courier, [fixed_later, still_bad])
    assert Ping.objects.count() == 0

    # Replayed before any fix: refused again, counted, not marked.
    assert ping_dead_letters_replay() == {"replayed": 0, "failed": 2}
    letter = PingDeadLetter.objects.get(event_id=fixed_later["event_id"])
    assert letter.failures == 2 and letter.replayed_at is None

    letter.ping = json.dumps({**fixed_later, "accuracy_m": 12.5})
    letter.save()
    assert ping_dead_letters_replay(ids=[letter.id]) == {"replayed": 1, "failed": 0}
    assert ping_dead_letters_replay(ids=[letter.id]) == {"replayed": 0, "failed": 0}

    stored = Ping.objects.get()
    assert (str(stored.event_id), stored.accuracy_m) == (fixed_later["event_id"], 12.5)
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert PingDeadLetter.objects.get(event_id=still_bad["event_id"]).replayed_at is None


@pytest.mark.django_db
def test_the_replay_command_replays_every_pending_row_and_says_so(courier):
    bad = ping(seconds_ago=1, accuracy_m=1e39)
    pings_record(courier, [bad])
    PingDeadLetter.objects.update(ping=json.dumps({**bad, "accuracy_m": 3.0}))
    out = StringIO()

    call_command("replay_dead_letters", "--all", stdout=out)

    assert Ping.objects.filter(event_id=bad["event_id"]).count() == 1
    assert "1 replayed, 0 failed" in out.getvalue()


def test_the_replay_command_needs_ids_or_all():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("replay_dead_letters")


@pytest.mark.django_db
def test_support_lists_searches_and_replays_dead_letters_in_the_admin(client, staff, courier):
    bad = ping(seconds_ago=1, accuracy_m=1e39)
    pings_record(courier, [bad])
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)

    listed = client.get("/admin/tracking/pingdeadletter/", {"q": bad["event_id"]})
    assert listed.status_code == 200 and bad["event_id"] in listed.content.decode()
    letter = PingDeadLetter.objects.get()
    assert client.get(f"/admin/tracking/pingdeadletter/{letter.id}/change/").status_code == 200

    PingDeadLetter.objects.update(ping=json.dumps({**bad, "accuracy_m": 4.0}))
    client.post("/admin/tracking/pingdeadletter/", {"action": "replay", "_selected_action": [letter.id]})
    assert Ping.objects.filter(event_id=bad["event_id"]).exists()


@pytest.mark.django_db
def test_staff_without_the_change_right_cannot_replay(client, courier):
    from django.contrib.auth.models import Permission

    from tests.support.builders import UserFactory

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_pingdeadletter"))
    pings_record(courier, [ping(seconds_ago=1, accuracy_m=1e39)])
    client.force_login(viewer)

    page = client.get("/admin/tracking/pingdeadletter/")
    assert page.status_code == 200 and "Replay the selected pings" not in page.content.decode()


@pytest.mark.django_db
def test_a_batch_dead_lettered_whole_is_stored_once_by_the_replay_once_its_cause_is_fixed(courier):
    from django.db import connection

    from tracking.models import PingBatchDeadLetter
    from tracking.tasks import ping_batch_record as task

    batch = [ping(seconds_ago=2), ping(seconds_ago=1)]
    with connection.cursor() as cursor:  # a deploy gone wrong: the schema the code needs is not there
        cursor.execute("ALTER TABLE tracking_courierlastlocation RENAME TO tracking_courierlastlocation_moved")
    task.apply(kwargs={"courier_id": str(courier.id), "received_at": timezone.now().isoformat(), "pings": batch})
    assert not Ping.objects.exists() and PingBatchDeadLetter.objects.count() == 1
    with connection.cursor() as cursor:  # fixed
        cursor.execute("ALTER TABLE tracking_courierlastlocation_moved RENAME TO tracking_courierlastlocation")
    out = StringIO()

    call_command("replay_dead_letters", "--all", stdout=out)
    call_command("replay_dead_letters", "--all", stdout=out)  # twice: nothing more

    assert sorted(str(e) for e in Ping.objects.values_list("event_id", flat=True)) == sorted(
        p["event_id"] for p in batch
    )
    assert PingBatchDeadLetter.objects.get().replayed_at is not None
    assert "batches: 1 replayed, 0 failed, 0 unreadable" in out.getvalue()


@pytest.mark.django_db
def test_a_batch_body_that_could_never_be_read_stays_for_an_operator(courier):
    from tracking.models import PingBatchDeadLetter
    from tracking.services.dead_letters import ping_batch_dead_letter_record, ping_batch_dead_letters_replay

    ping_batch_dead_letter_record(
        task_id="cut", task_name="tracking.tasks.ping_batch_record", exc=ValueError("cut off"),
        body=b'{"courier_id": "cut off', content_type="application/json", content_encoding="utf-8",
    )  # fmt: skip

    assert ping_batch_dead_letters_replay() == {"replayed": 0, "failed": 0, "unreadable": 1}
    letter = PingBatchDeadLetter.objects.get()
    assert letter.body == '{"courier_id": "cut off' and letter.replayed_at is None
