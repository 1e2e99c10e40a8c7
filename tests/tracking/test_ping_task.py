"""What the ping task does with a failure the service raises: a transient one is retried
until it succeeds, anything else is written to the batch dead-letter table before the message
is acknowledged (never dropped). Run in process with `apply`, which runs each retry at once;
tests/e2e covers the real worker and broker."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid

import pytest
from celery.signals import task_retry
from django.db import OperationalError, connection
from django.utils import timezone

from tests.support import ROOT
from tests.support.builders import ping
from tests.support.database import database_connect
from tracking.models import Ping, PingBatchDeadLetter
from tracking.tasks import ping_batch_record


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

    assert result.successful()
    assert attempts == ["retry"]
    assert Ping.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_connection_a_failover_left_read_only_is_closed_before_the_retry(courier, on_retry):
    # Django keeps a connection that still answers, and a demoted writer answers: without
    # closing it, every batch would fail on it until it aged out (DB_WORKER_CONN_MAX_AGE).
    closed = []
    on_retry(lambda: closed.append(connection.connection is None))
    with connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")  # this session only

    run_task(courier, [ping(seconds_ago=1)])

    assert closed == [True]
    assert Ping.objects.count() == 1  # the retry ran on a new connection


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_past_the_lock_timeout_is_retried_until_it_is_released(courier, on_retry):
    from tracking.services.ingest import ping_batch_record as record

    record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=60)])
    with database_connect() as blocker:
        blocker.execute("SELECT 1 FROM tracking_courierlastlocation FOR UPDATE")
        on_retry(blocker.rollback)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            result = run_task(courier, [ping(seconds_ago=1)])
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")

    assert result.successful()
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
def test_a_transient_failure_of_a_batch_older_than_the_queue_keeps_messages_is_dead_lettered(courier, settings):
    with connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")
    try:
        old = timezone.now() - dt.timedelta(seconds=settings.TASK_RETRY_MAX_AGE_S + 60)
        result = run_task(courier, [ping(seconds_ago=1)], received_at=old)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")

    assert result.successful()
    letter = PingBatchDeadLetter.objects.get()
    assert letter.courier_id == courier.id and "read-only" in letter.error_message


@pytest.mark.django_db
def test_a_failure_that_is_neither_transient_nor_one_pings_data_is_dead_lettered_not_dropped(courier):
    # A schema the code does not match (a deploy gone wrong): 42P01, undefined table.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tracking_courierlastlocation RENAME TO tracking_courierlastlocation_moved")
    batch = [ping(seconds_ago=1)]

    result = run_task(courier, batch)

    assert result.successful()
    letter = PingBatchDeadLetter.objects.get()
    assert letter.task_name == "tracking.tasks.ping_batch_record"
    assert json.loads(letter.kwargs)["pings"] == batch
    assert "tracking_courierlastlocation" in letter.error_message


@pytest.mark.django_db
def test_a_batch_its_task_cannot_read_is_dead_lettered_with_what_it_said(courier):
    kwargs = {"courier_id": str(courier.id), "pings": [ping()]}  # no received_at

    result = ping_batch_record.apply(kwargs=kwargs, task_id="no-received-at")

    assert result.successful()
    letter = PingBatchDeadLetter.objects.get(task_id="no-received-at")
    assert json.loads(letter.kwargs) == kwargs
    assert "received_at" in letter.error_message and letter.courier_id == courier.id
    assert not Ping.objects.exists()


@pytest.mark.django_db
def test_a_message_dead_lettered_again_is_one_row_with_its_failures_counted(courier):
    kwargs = {"courier_id": "not-a-courier", "received_at": timezone.now().isoformat(), "pings": [ping()]}

    ping_batch_record.apply(kwargs=kwargs, task_id="twice")
    ping_batch_record.apply(kwargs=kwargs, task_id="twice")  # its acknowledgement was lost

    assert PingBatchDeadLetter.objects.get(task_id="twice").failures == 2


@pytest.mark.django_db
def test_a_retry_on_sqs_is_held_by_the_queue_and_on_redis_by_the_worker(settings):
    from celery.exceptions import Retry

    from infra.queue.settle import task_retry as retry

    ping_batch_record.push_request(id="retried", retries=2, kwargs={}, is_eager=True, called_directly=False)
    try:
        for broker, held_by, not_by in (
            ("sqs://", "DelaySeconds", "countdown"),
            ("redis://", "countdown", "DelaySeconds"),
        ):
            settings.CELERY_BROKER_URL = broker
            with pytest.raises(Retry) as raised:
                retry(task=ping_batch_record, exc=OperationalError("gone"))
            options = raised.value.sig.options
            assert not options.get(not_by)
            assert 0 <= options[held_by] <= settings.TASK_RETRY_BACKOFF_MAX_S
    finally:
        ping_batch_record.pop_request()


@pytest.mark.processes
def test_the_system_check_refuses_time_limits_the_visibility_timeout_could_not_hold():
    """A received message is held unacknowledged while it runs: if that could pass the
    visibility timeout, the broker would deliver it to a second worker. `manage.py check`
    (which migrate, run before every release, runs too) says so and fails."""
    env = {
        **os.environ,
        "CELERY_BROKER_URL": "sqs://",
        **{f"SQS_{name}_QUEUE_URL": "https://sqs.example/q" for name in ("PINGS", "NOTIFICATIONS", "MAINTENANCE")},
        "CELERY_VISIBILITY_TIMEOUT": "100",
    }
    check = [sys.executable, "manage.py", "check"]
    started = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True)

    assert started.returncode != 0
    assert "(infra.E001) PING_TASK_TIME_LIMIT_S must stay under half" in started.stderr
    env["CELERY_VISIBILITY_TIMEOUT"] = "300"  # the queues' (deploy/ze_infra/messaging.py)
    assert subprocess.run(check, cwd=ROOT, env=env, capture_output=True).returncode == 0
    assert ping_batch_record.soft_time_limit < ping_batch_record.time_limit


def test_no_task_acknowledged_after_it_ran_can_outlive_half_the_visibility_timeout():
    """A message acknowledged only once its task ran is delivered to a second worker if the
    run passes the visibility timeout (300 s in production): every such task's hard limit
    leaves half of it for waiting behind prefetched messages; longer maintenance is
    acknowledged on receipt."""
    from ze_tracking.celery import app

    visibility_s = 300  # deploy/ze_infra/messaging.py
    app.loader.import_default_modules()
    late = {name: task for name, task in app.tasks.items() if not name.startswith("celery.") and task.acks_late}
    assert "tracking.tasks.ping_batch_record" in late
    too_long = {name: task.time_limit or app.conf.task_time_limit for name, task in late.items()}
    assert {name: limit for name, limit in too_long.items() if not limit or limit > visibility_s / 2} == {}


def test_a_message_requeued_by_a_worker_that_lives_on_is_not_counted_as_a_death(monkeypatch, settings):
    """The database and the broker both away: each delivery is requeued (never dropped), and
    however often that happens the batch is not dead-lettered for "killing its worker"."""
    from celery.canvas import Signature
    from celery.exceptions import Reject
    from kombu.exceptions import OperationalError as BrokerDown

    from infra.queue.settle import task_settle

    def broker_down(*args, **kwargs):
        raise BrokerDown("the broker is away")

    def database_down():
        raise OperationalError("the database is away")

    monkeypatch.setattr(Signature, "apply_async", broker_down)
    dead_lettered = []
    ping_batch_record.push_request(id=f"requeued-{uuid.uuid4()}", retries=0, is_eager=False, called_directly=False)
    try:
        for _ in range(settings.TASK_MAX_DELIVERIES + 2):
            with pytest.raises(Reject) as raised:
                task_settle(task=ping_batch_record, run=database_down, dead_letter=dead_lettered.append,
                            since=timezone.now())  # fmt: skip
            assert raised.value.requeue
    finally:
        ping_batch_record.pop_request()
    assert dead_lettered == []
