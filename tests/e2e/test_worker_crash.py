"""A worker killed in the middle of a batch: the message is delivered again (acks_late,
visibility timeout) and the batch is stored exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from tests.conftest import ROOT, lock_waiter_wait, ping, private_broker_env, unacked_overdue_wait, wait_for
from tracking.models import CourierLastLocation, Ping
from tracking.services.ingest import ping_batch_record

PUBLISH = """
import django, json, sys, uuid
django.setup()
from tracking.services.ingest import pings_ingest
print(pings_ingest(courier_id=uuid.UUID(sys.argv[1]), pings=json.loads(sys.argv[2])).accepted)
"""


@pytest.fixture
def crash_env():
    """The worker-failure environment (tests.conftest.private_broker_env), on Redis db 10."""
    return private_broker_env(redis_db=10)


def test_batch_of_a_worker_killed_mid_transaction_is_stored_once_by_the_next_worker(
    crash_env, spawn_celery_worker, transactional_db, courier
):
    from django.utils import timezone

    ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=60)])
    batch = [ping(seconds_ago=3 - i, lat=-23.5700 + i * 0.0001) for i in range(3)]
    db = connection.settings_dict
    first = spawn_celery_worker(env=crash_env, name="doomed", queues="pings", pool="solo", concurrency=1)
    with psycopg.connect(host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=db["USER"]) as blocker:
        # Hold the courier's last-location row: the worker inserts the pings, then waits
        # on this lock inside its transaction, where we kill it.
        blocker.execute("SELECT 1 FROM tracking_courierlastlocation FOR UPDATE")
        published = subprocess.run(
            [sys.executable, "-c", PUBLISH, str(courier.id), json.dumps(batch)],
            cwd=ROOT, env=crash_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert published.stdout.strip() == "3", published.stderr

        lock_waiter_wait(blocker=blocker, message="the worker to block mid-batch")
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
