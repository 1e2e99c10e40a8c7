"""A worker killed in the middle of a batch: the message is delivered again (acks_late,
visibility timeout) and the batch is stored exactly once."""

from __future__ import annotations

import json
import signal

import pytest

from tests.support.builders import ping, pings_record
from tests.support.database import database_connect, lock_waiters_wait
from tests.support.processes import private_broker_env, python_run, unacked_overdue_wait
from tests.support.waiting import wait_for
from tracking.models import CourierLastLocation, Ping

PUBLISH = """
import django, json, sys, uuid
django.setup()
from tracking.services.ingest import pings_ingest
print(pings_ingest(courier_id=uuid.UUID(sys.argv[1]), pings=json.loads(sys.argv[2])).accepted)
"""


@pytest.fixture
def crash_env():
    """The worker-failure environment (tests.support.processes.private_broker_env), on Redis db 10."""
    return private_broker_env(redis_db=10)


def test_batch_of_a_worker_killed_mid_transaction_is_stored_once_by_the_next_worker(
    crash_env, spawn_celery_worker, transactional_db, courier
):

    pings_record(courier, [ping(seconds_ago=60)])
    batch = [ping(seconds_ago=3 - i, lat=-23.5700 + i * 0.0001) for i in range(3)]
    first = spawn_celery_worker(env=crash_env, name="doomed", queues="pings", pool="solo", concurrency=1)
    with database_connect() as blocker:
        # Hold the courier's last-location row: the worker inserts the pings, then waits
        # on this lock inside its transaction, where we kill it.
        blocker.execute("SELECT 1 FROM tracking_courierlastlocation FOR UPDATE")
        published = python_run(PUBLISH, str(courier.id), json.dumps(batch), env=crash_env)
        assert published.stdout.strip() == "3", published.stderr

        lock_waiters_wait(blocker, message="the worker to block mid-batch")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        blocker.rollback()

    assert Ping.objects.count() == 1  # the killed transaction left nothing behind
    # The broker holds the unacked message until its visibility timeout passes; a worker
    # that starts after that takes it back.
    unacked_overdue_wait(crash_env)
    spawn_celery_worker(env=crash_env, name="heir", queues="pings", pool="solo", concurrency=1)
    wait_for(lambda: Ping.objects.count() == 4, timeout=60, message="the redelivered batch")
    assert Ping.objects.filter(event_id__in=[p["event_id"] for p in batch]).count() == 3
    assert CourierLastLocation.objects.get(courier=courier).location.y == pytest.approx(batch[-1]["lat"])
