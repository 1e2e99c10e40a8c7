"""The production broker path: Celery over SQS (kombu's SQS transport with predefined queues,
as deploy/ configures it), against moto's SQS emulator. The web side publishes from a
process started with the production broker settings; a worker process consumes."""

from __future__ import annotations

import json
import subprocess
import sys

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
