"""The production broker path: Celery over SQS (kombu's SQS transport with predefined queues,
as deploy/ configures it), against moto's SQS emulator. The web side publishes from a
process started with the production broker settings; a worker process consumes."""

from __future__ import annotations

import json
import uuid

import pytest
from django.utils import timezone

from tests.support.builders import ping
from tests.support.processes import python_run
from tests.support.waiting import wait_for
from tracking.models import OrderLastLocation, Ping, PingBatchDeadLetter

PUBLISH = """
import django, json, sys, uuid
django.setup()
from tracking.services.ingest import pings_ingest
result = pings_ingest(courier_id=uuid.UUID(sys.argv[1]), pings=json.loads(sys.argv[2]))
print(result.accepted, result.rejected)
"""


def test_a_batch_published_to_sqs_is_stored_by_a_worker_reading_sqs(
    sqs_env, spawn_celery_worker, transactional_db, courier, in_transit_order
):
    spawn_celery_worker(env=sqs_env, name="sqs", concurrency=2)
    batch = [ping(seconds_ago=2, lat=-23.5701), ping(seconds_ago=1, lat=-23.5700)]
    published = python_run(PUBLISH, str(courier.id), json.dumps(batch), env=sqs_env)
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith("2 []")

    wait_for(lambda: Ping.objects.count() == 2, timeout=30, message="the batch to arrive through SQS")
    last = OrderLastLocation.objects.get(order=in_transit_order)
    assert last.location.y == pytest.approx(-23.5700)
    assert last.recorded_at <= timezone.now()


PUBLISH_TASK = """
import django, json, sys
django.setup()
from tracking.tasks import ping_batch_record
ping_batch_record.apply_async(kwargs=json.loads(sys.argv[1]))
"""


def test_a_batch_the_worker_cannot_handle_is_dead_lettered_in_the_database_and_acknowledged(
    sqs_env, sns_emulator, spawn_celery_worker, transactional_db
):
    sqs = sns_emulator.client("sqs")
    suffix = uuid.uuid4().hex[:6]
    dlq_url = sqs.create_queue(QueueName=f"ze-tracking-test-pings-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # deploy/ gives each queue this redrive policy (5 receives there; 1 here to be quick).
    sqs_env["SQS_PINGS_QUEUE_URL"] = sqs.create_queue(
        QueueName=f"ze-tracking-test-pings-redrive-{suffix}",
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
        },
    )["QueueUrl"]
    spawn_celery_worker(env=sqs_env, name="sqs-reject", queues="pings", concurrency=1)
    # A message no code could ever apply: its courier id is not an id.
    kwargs = {"courier_id": "not-a-courier", "received_at": timezone.now().isoformat(), "pings": [ping()]}
    published = python_run(PUBLISH_TASK, json.dumps(kwargs), env=sqs_env)
    assert published.returncode == 0, published.stderr

    letter = wait_for(lambda: PingBatchDeadLetter.objects.first(), timeout=60, message="the batch's dead letter")
    assert json.loads(letter.kwargs) == kwargs

    def queue_drained():
        attributes = sqs.get_queue_attributes(
            QueueUrl=sqs_env["SQS_PINGS_QUEUE_URL"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(value == "0" for value in attributes.values())

    wait_for(queue_drained, timeout=30, message="the message acknowledged")
    assert not sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages")


PUBLISH_RETRY = """
import django, json, random, sys
django.setup()
random.seed(7)  # the jitter: a countdown that is not 0
from django.db import OperationalError
from tracking.tasks import ping_batch_record
from infra.queue.settle import task_retry
from celery.exceptions import Retry
ping_batch_record.push_request(id="retried", retries=5, kwargs=json.loads(sys.argv[1]), called_directly=False)
try:
    task_retry(task=ping_batch_record, exc=OperationalError("the database restarts"))
except Retry as retry:
    print(retry.sig.options["DelaySeconds"], retry.sig.options["countdown"])
"""


def test_a_retry_waits_in_the_sqs_queue_not_in_a_worker(sqs_env, sns_emulator, transactional_db, courier):
    sqs = sns_emulator.client("sqs")
    kwargs = {"courier_id": str(courier.id), "received_at": timezone.now().isoformat(), "pings": [ping()]}
    env = {**sqs_env, "TASK_RETRY_BACKOFF_S": "30", "TASK_RETRY_BACKOFF_MAX_S": "30"}
    published = python_run(PUBLISH_RETRY, json.dumps(kwargs), env=env)
    assert published.returncode == 0, published.stderr
    delay, countdown = published.stdout.split()
    assert 0 < int(delay) <= 30 and countdown == "0"  # no ETA for a worker to hold

    attributes = sqs.get_queue_attributes(
        QueueUrl=sqs_env["SQS_PINGS_QUEUE_URL"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesDelayed": "1"}


# Publishes one batch whose keyword arguments take `size` bytes of JSON, through the ingest's
# own enqueue, on the production broker settings; prints what happened.
PUBLISH_SIZED = """
import django, json, sys, uuid
django.setup()
from django.utils import timezone
from tracking.services.ingest import BatchTooLarge, ping_batch_enqueue
from infra.http.breakers import BROKER

size = int(sys.argv[1])
courier_id, received_at = uuid.UUID(sys.argv[2]), timezone.now()
ping = {"event_id": str(uuid.uuid4()), "recorded_at": received_at.isoformat(), "lat": -23.55, "lon": -46.63}
empty = len(json.dumps({"courier_id": str(courier_id), "received_at": received_at.isoformat(),
                        "pings": [{**ping, "attributes": {"pad": ""}}]}, separators=(",", ":")))
ping["attributes"] = {"pad": "x" * (size - empty)}
try:
    ping_batch_enqueue(courier_id=courier_id, received_at=received_at, pings=[ping])
except BatchTooLarge as exc:
    print("413", BROKER.allows())
else:
    print("queued", BROKER.allows())
"""


@pytest.fixture
def sqs_queue_256k(sqs_env, sns_emulator):
    """The pings queue as deploy/ makes it: messages of at most 256 KiB."""
    sqs = sns_emulator.client("sqs")
    sqs_env["SQS_PINGS_QUEUE_URL"] = sqs.create_queue(
        QueueName=f"ze-tracking-test-pings-256k-{uuid.uuid4().hex[:6]}", Attributes={"MaximumMessageSize": "262144"}
    )["QueueUrl"]
    return sqs_env


def publish_sized(env: dict, size: int) -> list[str]:
    done = python_run(PUBLISH_SIZED, str(size), str(uuid.uuid4()), env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_largest_batch_the_api_accepts_fits_in_an_sqs_message(sqs_queue_256k, sns_emulator, settings):
    largest = settings.TRACKING["MAX_TASK_PAYLOAD_BYTES"]

    assert publish_sized(sqs_queue_256k, largest) == ["queued", "True"]

    message = sns_emulator.client("sqs").receive_message(QueueUrl=sqs_queue_256k["SQS_PINGS_QUEUE_URL"])["Messages"][0]
    assert len(message["Body"].encode()) <= 262_144
    assert publish_sized(sqs_queue_256k, largest + 1) == ["413", "True"]  # the API's own guard


def test_a_batch_sqs_refuses_as_too_large_is_refused_alone_and_the_broker_stays_in_use(sqs_queue_256k):
    # A guard set too high (or a queue made smaller): SQS answers InvalidParameterValue.
    env = {**sqs_queue_256k, "TRACKING_MAX_TASK_PAYLOAD_BYTES": str(400 * 1024)}

    assert publish_sized(env, 300 * 1024) == ["413", "True"]
