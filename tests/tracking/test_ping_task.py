"""What the ping task does with a failure the service raises: a transient one is retried
until it succeeds, anything else is rejected (never acknowledged as done). The task answers
one outcome per message, which the worker applies after the commit (ze_tracking/task_groups.py).
Run in process with `apply`, which runs each retry at once; tests/e2e covers the real worker
and broker."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from celery.signals import task_retry
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import ROOT, ping
from tests.factories import CourierFactory
from tracking.models import CourierLastLocation, OrderLastLocation, Ping, PingDeadLetter
from tracking.tasks import ping_batch_record
from ze_tracking.task_groups import ACK, REJECT, GroupedRequest


def run_task(courier, pings, *, received_at=None):
    received_at = received_at or timezone.now()
    return ping_batch_record.apply(
        kwargs={"courier_id": str(courier.id), "received_at": received_at.isoformat(), "pings": pings}
    )


@pytest.fixture
def on_retry():
    """Call the given function when the task schedules a retry (between two attempts)."""
    receivers = []

    def connect(fn):
        def receiver(**kwargs):
            fn()

        receivers.append(receiver)
        task_retry.connect(receiver, sender=ping_batch_record, weak=False)

    yield connect
    for receiver in receivers:
        task_retry.disconnect(receiver, sender=ping_batch_record)


@pytest.mark.django_db(transaction=True)
def test_a_writer_turned_read_only_by_a_failover_is_retried_until_it_takes_the_batch(courier, on_retry):
    attempts = []

    def failover_ends():
        attempts.append("retry")
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")

    on_retry(failover_ends)
    with connection.cursor() as cursor:
        # What a connection left on a demoted writer answers: 25006, read-only transaction.
        cursor.execute("SET default_transaction_read_only = on")
    try:
        result = run_task(courier, [ping(seconds_ago=1)])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")

    assert result.get() == [ACK]
    assert attempts == ["retry"]
    assert Ping.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_past_the_lock_timeout_is_retried_until_it_is_released(courier, on_retry):
    from tracking.services.ingest import ping_batch_record as record

    record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=60)])
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=db["USER"]) as blocker:
        blocker.execute("SELECT 1 FROM tracking_courierlastlocation FOR UPDATE")
        on_retry(blocker.rollback)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            result = run_task(courier, [ping(seconds_ago=1)])
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")

    assert result.get() == [ACK]
    assert Ping.objects.count() == 2


@pytest.mark.django_db
def test_a_batch_is_retried_past_celerys_default_of_three_until_the_database_answers(courier):
    # The task sets no retry count of its own (Celery's default would give up after three):
    # it is retried for as long as the batch is young enough.
    failures = {"left": 5}  # the database is away for five tries

    def flaky(execute, sql, params, many, context):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    batch = ping()
    with connection.execute_wrapper(flaky):
        run_task(courier, [batch])

    assert failures["left"] == 0
    assert Ping.objects.filter(event_id=batch["event_id"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_transient_failure_of_a_batch_older_than_the_queue_keeps_messages_is_rejected(courier, settings):
    with connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")
    try:
        old = timezone.now() - dt.timedelta(seconds=settings.TASK_RETRY_MAX_AGE_S + 60)
        result = run_task(courier, [ping(seconds_ago=1)], received_at=old)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")

    assert result.get() == [REJECT]


@pytest.mark.django_db
def test_a_failure_that_is_neither_transient_nor_one_pings_data_is_rejected_not_acknowledged(courier):
    # A schema the code does not match (a deploy gone wrong): 42P01, undefined table.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tracking_courierlastlocation RENAME TO tracking_courierlastlocation_moved")

    result = run_task(courier, [ping(seconds_ago=1)])

    assert result.get() == [REJECT]


def test_settings_refuse_retry_delays_the_visibility_timeout_could_not_hold():
    """A retried message is held unacknowledged for its countdown, then runs: if that could
    pass the visibility timeout, the broker would deliver it to a second worker."""
    env = {
        **os.environ,
        "CELERY_BROKER_URL": "sqs://",
        **{f"SQS_{name}_QUEUE_URL": "https://sqs.example/q" for name in ("PINGS", "NOTIFICATIONS", "MAINTENANCE")},
        "CELERY_VISIBILITY_TIMEOUT": "120",
        "TASK_RETRY_BACKOFF_MAX_S": "60",
    }
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert started.returncode != 0
    assert "TASK_RETRY_BACKOFF_MAX_S + PING_TASK_TIME_LIMIT_S must stay under half" in started.stderr
    env["CELERY_VISIBILITY_TIMEOUT"] = "300"  # the queues' (deploy/ze_infra/messaging.py)
    assert subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env).returncode == 0
    assert ping_batch_record.soft_time_limit < ping_batch_record.time_limit


def grouped(*batches):
    """Requests as the worker hands a group of queued messages to the task."""
    return [GroupedRequest(id=str(uuid.uuid4()), body=((), kwargs, {})) for kwargs in batches]


def batch_of(courier, pings, *, received_at=None):
    received_at = received_at or timezone.now()
    return {"courier_id": str(courier.id), "received_at": received_at.isoformat(), "pings": pings}


@pytest.mark.django_db(transaction=True)
def test_a_group_of_batches_takes_the_statements_of_one_batch(courier, other_courier, in_transit_order):
    third = CourierFactory()
    couriers = (courier, other_courier, third)
    batches = [batch_of(c, [ping(seconds_ago=3 - i, lat=-23.57 + i * 0.0001) for i in range(3)]) for c in couriers]
    with CaptureQueriesContext(connection) as one:
        assert ping_batch_record(grouped(batch_of(courier, [ping(seconds_ago=9, lat=-23.57)]))) == [ACK]

    with CaptureQueriesContext(connection) as group:
        assert ping_batch_record(grouped(*batches)) == [ACK] * 3

    assert len(group) == len(one)
    assert Ping.objects.count() == 10
    for c, batch in zip(couriers, batches, strict=True):
        assert CourierLastLocation.objects.get(courier=c).location.y == pytest.approx(batch["pings"][-1]["lat"])
    assert OrderLastLocation.objects.get(order=in_transit_order).location.y == pytest.approx(-23.5698)


@pytest.mark.django_db(transaction=True)
def test_a_refused_ping_in_a_group_is_dead_lettered_and_every_other_ping_of_the_group_stored(courier, other_courier):
    batches = [batch_of(c, [ping(seconds_ago=3 - i) for i in range(3)]) for c in (courier, other_courier, courier)]
    batches[1]["pings"][1]["attributes"] = {"note": "\ud800"}  # valid JSON; jsonb refuses it

    outcomes = ping_batch_record(grouped(*batches))

    assert outcomes == [ACK] * 3
    refused = batches[1]["pings"][1]["event_id"]
    stored = {str(e) for e in Ping.objects.values_list("event_id", flat=True)}
    assert stored == {p["event_id"] for b in batches for p in b["pings"]} - {refused}
    assert list(PingDeadLetter.objects.values_list("event_id", flat=True)) == [refused]


@pytest.mark.django_db(transaction=True)
def test_a_transient_failure_of_a_group_retries_every_batch_of_it(courier, other_courier, on_retry):
    retried = []

    def failover_ends():
        retried.append("retry")
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")

    on_retry(failover_ends)
    batches = [batch_of(c, [ping(seconds_ago=2), ping(seconds_ago=1)]) for c in (courier, other_courier, courier)]
    with connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")
    try:
        outcomes = ping_batch_record(grouped(*batches))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")

    assert outcomes == [ACK] * 3  # each one retried: a new message published, this one done
    assert retried == ["retry"] * 3
    assert Ping.objects.count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_fails_otherwise_is_rejected_alone_and_the_rest_of_its_group_stored(courier, other_courier):
    good = [batch_of(c, [ping(seconds_ago=1)]) for c in (courier, other_courier)]
    broken = {**batch_of(courier, [ping(seconds_ago=1)]), "courier_id": "not-a-courier"}

    outcomes = ping_batch_record(grouped(good[0], broken, good[1]))

    assert outcomes == [ACK, REJECT, ACK]
    assert {str(e) for e in Ping.objects.values_list("event_id", flat=True)} == {
        b["pings"][0]["event_id"] for b in good
    }


@pytest.mark.django_db(transaction=True)
def test_a_batch_delivered_twice_into_one_group_is_stored_once(courier, in_transit_order):
    batch = batch_of(courier, [ping(seconds_ago=2 - i, lat=-23.57 + i * 0.0001) for i in range(2)])

    assert ping_batch_record(grouped(batch, batch)) == [ACK, ACK]

    assert Ping.objects.count() == 2
    assert OrderLastLocation.objects.get(order=in_transit_order).location.y == pytest.approx(-23.5699)
