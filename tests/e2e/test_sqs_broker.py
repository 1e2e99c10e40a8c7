"""The production broker path: Celery over SQS (kombu's SQS transport with predefined queues,
as deploy/ configures it), against moto's SQS emulator. The web side publishes from a
process started with the production broker settings; a worker process consumes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid

import pytest
from django.utils import timezone

from tests.conftest import ROOT, ping, wait_for
from tracking.models import OrderLastLocation, Ping

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
    published = subprocess.run(
        [sys.executable, "-c", PUBLISH, str(courier.id), json.dumps(batch)],
        cwd=ROOT, env=sqs_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
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


def test_a_batch_the_worker_cannot_handle_is_rejected_to_the_dead_letter_queue_not_acknowledged(
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
    published = subprocess.run(
        [sys.executable, "-c", PUBLISH_TASK, json.dumps(kwargs)],
        cwd=ROOT, env=sqs_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr

    def in_dead_letter_queue():
        messages = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            return None
        raw = messages[0]["Body"]
        envelope = json.loads(raw if raw.startswith("{") else base64.b64decode(raw))
        return json.loads(base64.b64decode(envelope["body"]))  # Celery's [args, kwargs, embed]

    body = wait_for(in_dead_letter_queue, timeout=60, message="the rejected message in the dead-letter queue")
    assert body[1]["courier_id"] == "not-a-courier"
