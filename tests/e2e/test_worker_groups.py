"""A deep queue through a real prefork worker and broker: the worker takes the queued batches
in groups, one transaction each, and acknowledges each message only after the commit that
stored it; a killed worker's group comes back whole and is stored once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis
from django.db import connection
from django.utils import timezone

from tests.conftest import OUTPUT, ROOT, lock_waiter_wait, ping, private_broker_env, unacked_overdue_wait, wait_for
from tests.factories import CourierFactory
from tracking.models import CourierLastLocation, Ping, PingDeadLetter

# Publishes each batch given as JSON ([courier_id, pings] pairs) as its own message, in order.
PUBLISH = """
import django, json, sys
django.setup()
from django.utils import timezone
from tracking.services.ingest import ping_batch_enqueue
for courier_id, pings in json.loads(sys.argv[1]):
    ping_batch_enqueue(courier_id=courier_id, received_at=timezone.now(), pings=pings)
"""


@pytest.fixture
def groups_env():
    """The worker-failure environment (tests.conftest.private_broker_env), on Redis db 11."""
    return private_broker_env(redis_db=11)


def publish(env: dict, batches: list[tuple]) -> None:
    payload = json.dumps([[str(courier.id), pings] for courier, pings in batches])
    done = subprocess.run([sys.executable, "-c", PUBLISH, payload], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr


def broker_empty(env: dict) -> bool:
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    return broker.llen("pings") == 0 and broker.hlen("unacked") == 0


def group_sizes(name: str) -> list[int]:
    """The group sizes the worker logged ("batches recorded", one line per group of two or more)."""
    sizes = []
    for line in Path(OUTPUT / f"celery-{name}.log").read_text().splitlines():
        if '"batches recorded"' in line:
            sizes.append(json.loads(line)["batches"])
    return sizes


def test_a_deep_queue_is_stored_in_groups_and_every_message_acknowledged(
    groups_env, spawn_celery_worker, transactional_db
):
    couriers = [CourierFactory() for _ in range(5)]
    batches = [(couriers[i % 5], [ping(seconds_ago=60 - i, lat=-23.57 + i * 0.0001)]) for i in range(40)]
    batches[7][1][0]["accuracy_m"] = 1e39  # past real: the database refuses it, dead-lettered alone
    publish(groups_env, batches)

    # Groups of at most 10: the refused ping's group falls back to one batch at a time, the
    # others are stored as groups.
    env = {**groups_env, "PING_TASK_GROUP_MAX": "10"}
    spawn_celery_worker(env=env, name="grouping", queues="pings", pool="prefork", concurrency=1)

    wait_for(lambda: Ping.objects.count() == 39, timeout=60, message="every batch but the refused ping")
    wait_for(lambda: broker_empty(groups_env), timeout=10, message="every message acknowledged")
    assert PingDeadLetter.objects.get().event_id == batches[7][1][0]["event_id"]
    assert max(group_sizes("grouping"), default=1) > 1
    for courier in couriers:
        newest = max((p for c, pings in batches if c == courier for p in pings), key=lambda p: p["recorded_at"])
        assert CourierLastLocation.objects.get(courier=courier).location.y == pytest.approx(newest["lat"])


def test_the_group_of_a_worker_killed_mid_transaction_comes_back_whole_and_is_stored_once(
    groups_env, spawn_celery_worker, transactional_db, courier
):
    from tracking.services.ingest import ping_batch_record

    others = [CourierFactory() for _ in range(3)]
    ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=120)])
    # The first message runs alone on the idle worker; the others queue behind it and are
    # taken in groups once it is done, the first group holding the courier's batch blocks.
    batches = [(c, [ping(seconds_ago=20 - i)]) for i in range(3) for c in (*others, courier)]
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=db["USER"]) as blocker:
        # Hold the courier's last-location row: every transaction of the worker that holds a
        # batch of this courier waits on it, and is killed there.
        blocker.execute("SELECT 1 FROM tracking_courierlastlocation WHERE courier_id = %s FOR UPDATE", [courier.id])
        publish(groups_env, batches)
        doomed = spawn_celery_worker(env=groups_env, name="doomed-group", queues="pings", pool="prefork",
                                     concurrency=1)  # fmt: skip

        lock_waiter_wait(blocker=blocker, message="the worker to block mid-batch")
        for pid in [*process_children(doomed.pid), doomed.pid]:
            os.kill(pid, signal.SIGKILL)
        doomed.wait(timeout=10)
        blocker.rollback()

    # The killed transaction left nothing of its group behind.
    assert Ping.objects.filter(courier=courier).count() == 1
    unacked_overdue_wait(groups_env)
    spawn_celery_worker(env=groups_env, name="heir-group", queues="pings", pool="prefork", concurrency=1)
    wait_for(lambda: Ping.objects.count() == 1 + len(batches), timeout=60, message="every redelivered batch")
    wait_for(lambda: broker_empty(groups_env), timeout=10, message="every message acknowledged")
    sent = [p["event_id"] for _, pings in batches for p in pings]
    assert Ping.objects.filter(event_id__in=sent).count() == len(sent)  # each once


def process_children(pid: int) -> list[int]:
    """The pool processes of a worker (Linux: /proc lists a thread's children)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


# Publishes one batch ([courier_id, pings]) to run `countdown` seconds from now, as a retry does.
PUBLISH_LATER = """
import django, json, sys
django.setup()
import orjson
from django.utils import timezone
from tracking.tasks import ping_batch_record
courier_id, pings = json.loads(sys.argv[1])
kwargs = orjson.loads(orjson.dumps({"courier_id": courier_id, "received_at": timezone.now(), "pings": pings}))
ping_batch_record.apply_async(kwargs=kwargs, countdown=2)
"""


def test_a_retried_batch_runs_at_its_countdown_and_the_worker_lives_on(
    groups_env, spawn_celery_worker, transactional_db, courier
):
    # A transient failure (the database restarting) retries a batch with a countdown: the
    # worker holds that message until then. It must neither crash on it nor lose it.
    worker = spawn_celery_worker(env=groups_env, name="retrying", queues="pings", pool="prefork", concurrency=1)
    pings = [ping(seconds_ago=30)]
    payload = json.dumps([str(courier.id), pings])
    done = subprocess.run([sys.executable, "-c", PUBLISH_LATER, payload], cwd=ROOT, env=groups_env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr

    wait_for(lambda: Ping.objects.filter(courier=courier).count() == 1, timeout=60, message="the retried batch")
    wait_for(lambda: broker_empty(groups_env), timeout=10, message="its message acknowledged")
    publish(groups_env, [(courier, [ping(seconds_ago=10)])])
    wait_for(lambda: Ping.objects.filter(courier=courier).count() == 2, timeout=60, message="the next batch")
    assert worker.poll() is None
