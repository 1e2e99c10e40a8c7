"""Every message's fate is its own, through a real prefork worker and a real broker: a message
the task cannot read, cannot decode, or that kills its worker every time is written to the
batch dead-letter table and acknowledged, while every good batch queued around it is stored;
a worker whose broker connection drops keeps consuming."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import redis
from django.utils import timezone
from kombu import Connection

from tests.support.builders import CourierFactory, ping, pings_record
from tests.support.database import database_connect, lock_waiters, lock_waiters_wait
from tests.support.processes import private_broker_env, python_run, unacked_overdue_wait
from tests.support.waiting import wait_for
from tracking.models import Ping

# Publishes each message given as JSON (a list of task keyword arguments) through the app's
# own task, as a web of this or another version would.
PUBLISH = """
import django, json, sys
django.setup()
from tracking.tasks import ping_batch_record
for kwargs in json.loads(sys.argv[1]):
    ping_batch_record.apply_async(kwargs=kwargs, task_id=kwargs.pop("task_id", None))
"""


@pytest.fixture(params=["redis", "sqs"])
def broker_env(request, sns_emulator):
    """The worker-failure environment on each transport: a Redis db of its own, or fresh
    queues on the local SQS server (production's broker)."""
    if request.param == "redis":
        return private_broker_env(redis_db=12)
    return request.getfixturevalue("sqs_env")


def publish(env: dict, messages: list[dict]) -> None:
    done = python_run(PUBLISH, json.dumps(messages), env=env)
    assert done.returncode == 0, done.stderr


def queue_empty(env: dict, sns_emulator) -> bool:
    """Nothing queued, nothing delivered and unacknowledged."""
    if env["CELERY_BROKER_URL"].startswith("sqs://"):
        attributes = sns_emulator.client("sqs").get_queue_attributes(
            QueueUrl=env["SQS_PINGS_QUEUE_URL"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(value == "0" for value in attributes.values())
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    return broker.llen("pings") == 0 and broker.hlen("unacked") == 0


def batch(courier, *, seconds_ago: float) -> dict:
    return {
        "courier_id": str(courier.id),
        "received_at": timezone.now().isoformat(),
        "pings": [ping(seconds_ago=seconds_ago, lat=-23.57 + seconds_ago * 1e-5)],
    }


def stored_event_ids() -> set[str]:
    return set(map(str, Ping.objects.values_list("event_id", flat=True)))


def test_a_batch_its_task_cannot_read_is_dead_lettered_alone_and_its_neighbours_stored(
    broker_env, sns_emulator, spawn_celery_worker, transactional_db
):
    couriers = [CourierFactory() for _ in range(4)]
    good = [batch(couriers[i % 4], seconds_ago=60 - i) for i in range(24)]
    # What a web of another version could publish: no received_at.
    bad = [{"courier_id": str(couriers[0].id), "pings": [ping(seconds_ago=90 + i)], "task_id": f"bad-{i}"}
           for i in range(2)]  # fmt: skip
    bad_event_ids = {b["pings"][0]["event_id"] for b in bad}
    # A deep queue before the worker starts: a worker that takes messages in groups would
    # put each bad one in a group of good ones.
    publish(broker_env, [*good[:10], bad[0], *good[10:], bad[1]])
    spawn_celery_worker(env=broker_env, name="fates-unreadable", queues="pings", pool="prefork", concurrency=1)

    wanted = {b["pings"][0]["event_id"] for b in good}
    wait_for(lambda: wanted <= stored_event_ids(), timeout=60, message="every good batch stored")
    from tracking.models import PingBatchDeadLetter

    wait_for(lambda: PingBatchDeadLetter.objects.count() == 2, timeout=30, message="both bad batches dead-lettered")
    letters = PingBatchDeadLetter.objects.order_by("task_id")
    assert [letter.task_id for letter in letters] == ["bad-0", "bad-1"]
    assert {json.loads(letter.kwargs)["pings"][0]["event_id"] for letter in letters} == bad_event_ids
    assert all(letter.courier_id == couriers[0].id and "received_at" in letter.error_message for letter in letters)
    assert not stored_event_ids() & bad_event_ids
    wait_for(lambda: queue_empty(broker_env, sns_emulator), timeout=30, message="every message acknowledged")


@pytest.mark.parametrize(
    "body",
    [
        b'{"courier_id": "cut off',  # no JSON: refused while the worker's main process decodes it
        b'{"courier_id": "no task body"}',  # JSON, but no [args, kwargs, embed]
        b'[[], "not keyword arguments", {}]',  # a task body the task cannot be called with: fails in the pool
    ],
    ids=["not-json", "not-a-task-body", "not-keyword-arguments"],
)
def test_an_undecodable_message_is_dead_lettered_with_its_body_and_the_queue_goes_on(
    broker_env, sns_emulator, spawn_celery_worker, transactional_db, body
):
    courier = CourierFactory()
    spawn_celery_worker(env=broker_env, name="fates-undecodable", queues="pings", pool="prefork", concurrency=1)
    transport_options = {}
    if broker_env["CELERY_BROKER_URL"].startswith("sqs://"):
        transport_options = {
            "region": "us-east-1", "is_secure": False,
            "predefined_queues": {"pings": {"url": broker_env["SQS_PINGS_QUEUE_URL"]}},
        }  # fmt: skip
    with Connection(broker_env["CELERY_BROKER_URL"], transport_options=transport_options) as broker:
        broker.Producer().publish(
            body,
            routing_key="pings",
            content_type="application/json",
            content_encoding="utf-8",
            headers={"task": "tracking.tasks.ping_batch_record", "id": "undecodable-1", "lang": "py", "retries": 0},
        )
    good = batch(courier, seconds_ago=5)
    publish(broker_env, [good])

    wait_for(lambda: good["pings"][0]["event_id"] in stored_event_ids(), timeout=60, message="the good batch")
    from tracking.models import PingBatchDeadLetter

    letter = wait_for(lambda: PingBatchDeadLetter.objects.filter(task_id="undecodable-1").first(), timeout=30,
                      message="the undecodable message dead-lettered")  # fmt: skip
    assert letter.body == body.decode()
    assert letter.kwargs == ""
    wait_for(lambda: queue_empty(broker_env, sns_emulator), timeout=30, message="every message acknowledged")


def test_a_batch_whose_worker_dies_with_it_every_time_is_dead_lettered_after_a_few_deliveries(
    spawn_celery_worker, transactional_db
):
    env = {**private_broker_env(redis_db=13), "TASK_MAX_DELIVERIES": "3"}
    stuck, other = CourierFactory(), CourierFactory()

    pings_record(stuck, [ping(seconds_ago=120)])
    from tracking.models import PingBatchDeadLetter

    with database_connect() as blocker:
        # The stuck courier's last location is locked: each delivery of its batch waits
        # there, and the kernel kills its process (SIGKILL), as a batch that crashes or
        # exhausts its worker would have it.
        blocker.execute("SELECT 1 FROM tracking_courierlastlocation WHERE courier_id = %s FOR UPDATE", [stuck.id])
        doomed = batch(stuck, seconds_ago=10)
        publish(env, [{**doomed, "task_id": "doomed-1"}])
        worker = spawn_celery_worker(env=env, name="fates-doomed", queues="pings", pool="prefork", concurrency=1)
        kills, dead = 0, lambda: PingBatchDeadLetter.objects.filter(task_id="doomed-1").exists()
        while not dead():
            assert kills < 6, "the doomed batch was delivered again and again"
            waiting = lock_waiters_wait(blocker, message="the doomed batch to block")
            for pid in process_children(worker.pid):
                os.kill(pid, signal.SIGKILL)
            # The server notices a dead client only when it next reads from it: end its session.
            blocker.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [waiting])
            kills += 1
            wait_for(lambda waiting=waiting: set(lock_waiters(blocker)) - set(waiting) or dead(), timeout=30,
                     message="the next delivery, or the dead letter")  # fmt: skip
        letter = PingBatchDeadLetter.objects.get(task_id="doomed-1")
        assert kills == 3
        assert "3 times" in letter.error_message
        # The worker goes on with the others.
        good = batch(other, seconds_ago=5)
        publish(env, [good])
        wait_for(lambda: good["pings"][0]["event_id"] in stored_event_ids(), timeout=30, message="the next batch")
    assert json.loads(letter.kwargs)["pings"] == doomed["pings"]
    assert not Ping.objects.filter(event_id=doomed["pings"][0]["event_id"]).exists()


def process_children(pid: int) -> list[int]:
    """The pool processes of a worker (Linux: /proc lists a thread's children)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


def test_the_worker_keeps_consuming_after_its_broker_connection_drops_while_batches_wait(
    spawn_celery_worker, transactional_db
):
    env = private_broker_env(redis_db=14)
    busy, others = CourierFactory(), [CourierFactory() for _ in range(3)]

    pings_record(busy, [ping(seconds_ago=300)])
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    spawn_celery_worker(env=env, name="fates-reconnect", queues="pings", pool="prefork", concurrency=2)
    sent: set[str] = set()
    for round_ in range(3):
        with database_connect() as blocker:
            # Both children busy on the blocked courier, more batches waiting behind them.
            blocker.execute("SELECT 1 FROM tracking_courierlastlocation WHERE courier_id = %s FOR UPDATE", [busy.id])
            messages = [batch(busy, seconds_ago=200 - round_ * 20 - i) for i in range(2)]
            messages += [batch(others[i % 3], seconds_ago=200 - round_ * 20 - i) for i in range(6)]
            publish(env, messages)
            sent |= {m["pings"][0]["event_id"] for m in messages}
            lock_waiters_wait(blocker, message="the children to block")
            # The broker drops every connection of the worker (a failover, a restart).
            broker.client_kill_filter(_type="normal", skipme=True)
            blocker.rollback()
        wait_for(lambda sent=sent: sent <= stored_event_ids(), timeout=60, message=f"every batch of round {round_}")
    wait_for(lambda: broker.llen("pings") == 0 and broker.hlen("unacked") == 0, timeout=30,
             message="every message acknowledged")  # fmt: skip


def test_batches_of_a_worker_killed_mid_transaction_come_back_and_are_stored_once(
    spawn_celery_worker, transactional_db, courier
):
    env = private_broker_env(redis_db=15)

    others = [CourierFactory() for _ in range(3)]
    pings_record(courier, [ping(seconds_ago=120)])
    messages = [batch(c, seconds_ago=20 - i) for i in range(3) for c in (*others, courier)]
    with database_connect() as blocker:
        # Hold the courier's last-location row: the worker's transaction of its batch waits
        # on it, and is killed there with its worker, holding the messages behind it.
        blocker.execute("SELECT 1 FROM tracking_courierlastlocation WHERE courier_id = %s FOR UPDATE", [courier.id])
        publish(env, messages)
        doomed = spawn_celery_worker(env=env, name="fates-killed", queues="pings", pool="prefork", concurrency=1)
        lock_waiters_wait(blocker, message="the worker to block mid-batch")
        for pid in [*process_children(doomed.pid), doomed.pid]:
            os.kill(pid, signal.SIGKILL)
        doomed.wait(timeout=10)
        blocker.rollback()

    assert Ping.objects.filter(courier=courier).count() == 1  # the killed transaction left nothing
    unacked_overdue_wait(env)
    spawn_celery_worker(env=env, name="fates-heir", queues="pings", pool="prefork", concurrency=1)
    sent = [m["pings"][0]["event_id"] for m in messages]
    wait_for(lambda: Ping.objects.filter(event_id__in=sent).count() == len(sent), timeout=60,
             message="every redelivered batch")  # fmt: skip
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    wait_for(lambda: broker.llen("pings") == 0 and broker.hlen("unacked") == 0, timeout=10,
             message="every message acknowledged")  # fmt: skip


# Publishes one batch to run `countdown` seconds from now, as a retry on Redis does.
PUBLISH_LATER = """
import django, json, sys
django.setup()
from tracking.tasks import ping_batch_record
ping_batch_record.apply_async(kwargs=json.loads(sys.argv[1]), countdown=2)
"""


def test_a_retried_batch_runs_at_its_countdown_and_the_worker_lives_on(spawn_celery_worker, transactional_db, courier):
    env = private_broker_env(redis_db=15)
    worker = spawn_celery_worker(env=env, name="fates-retrying", queues="pings", pool="prefork", concurrency=1)
    later = batch(courier, seconds_ago=30)
    done = python_run(PUBLISH_LATER, json.dumps(later), env=env)
    assert done.returncode == 0, done.stderr

    wait_for(lambda: Ping.objects.filter(courier=courier).count() == 1, timeout=60, message="the retried batch")
    publish(env, [batch(courier, seconds_ago=10)])
    wait_for(lambda: Ping.objects.filter(courier=courier).count() == 2, timeout=60, message="the next batch")
    assert worker.poll() is None
