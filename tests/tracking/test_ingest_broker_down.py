"""A broker that cannot take the batch (down, silent, refusing) is a quick 503 with
Retry-After and nothing stored, for Redis and for SQS. Each case runs the ingest API in a
process started with that broker's settings, as the web process would be."""

from __future__ import annotations

import json
import os

import pytest

from couriers.services import api_token_create
from tests.support.builders import ping
from tests.support.database import database_url
from tests.support.network import free_port
from tests.support.processes import python_run
from tracking.models import Ping

pytestmark = pytest.mark.processes  # each ingest runs in a fresh Python process

# The answer must come within the publish budget (about 2 s) plus this process's overhead.
ANSWER_WITHIN_S = 2.5

POST = """
import django, json, sys, time
django.setup()
from django.test import Client
client = Client(HTTP_AUTHORIZATION="Token " + sys.argv[1])
client.get("/healthz")  # load the URLs and apps before the clock starts
answers = []
for _ in range(int(sys.argv[3])):
    start = time.monotonic()
    response = client.post("/api/v1/locations", sys.argv[2], content_type="application/json")
    answers.append({"status": response.status_code, "retry_after": response.get("Retry-After"),
                    "elapsed_s": time.monotonic() - start})
print(json.dumps(answers))
"""


def ingest_in_process(*, env: dict, courier, requests: int = 1) -> dict | list[dict]:
    """The answer to one batch, or to `requests` batches posted one after the other."""
    _, token = api_token_create(user=courier.user)
    env = {**env, "DJANGO_ALLOWED_HOSTS": "testserver", "DB_CONN_MAX_AGE": "0", "DATABASE_URL": database_url()}
    done = python_run(POST, token, json.dumps({"pings": [ping(), ping()]}), str(requests), env=env)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    return answers[0] if requests == 1 else answers


def assert_quick_503(answer: dict) -> None:
    assert answer["status"] == 503, answer
    assert int(answer["retry_after"]) > 0
    assert answer["elapsed_s"] < ANSWER_WITHIN_S, answer
    assert not Ping.objects.exists()


@pytest.mark.parametrize("broker", ["closed", "silent"])
def test_redis_broker_down_or_silent_is_a_quick_503(transactional_db, courier, silent_port, broker):
    port = free_port() if broker == "closed" else silent_port
    env = {**os.environ, "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0"}

    assert_quick_503(ingest_in_process(env=env, courier=courier))


def test_after_the_broker_failed_the_next_batches_get_503_at_once(transactional_db, courier, silent_port):
    """A web process waits out the broker's timeouts once, then answers 503 without trying
    for BREAKER_OPEN_S: with a few sync workers, batches that each waited a second on a
    silent broker queued behind one another for many seconds."""
    env = {**os.environ, "CELERY_BROKER_URL": f"redis://127.0.0.1:{silent_port}/0"}

    first, *then = ingest_in_process(env=env, courier=courier, requests=4)

    assert_quick_503(first)
    assert first["elapsed_s"] > 0.5, "the first one tried the broker"
    for answer in then:
        assert_quick_503(answer)
        assert answer["elapsed_s"] < 0.2, then


@pytest.mark.parametrize("broker", ["closed", "silent"])
def test_sqs_down_or_silent_is_a_quick_503(transactional_db, courier, sqs_env, silent_port, broker):
    port = free_port() if broker == "closed" else silent_port
    env = {**sqs_env, "CELERY_BROKER_URL": f"sqs://testing:testing@127.0.0.1:{port}"}

    assert_quick_503(ingest_in_process(env=env, courier=courier))


def test_sqs_refusing_the_message_is_a_quick_503(transactional_db, courier, sqs_env):
    # The queue is gone: SQS answers with an error (as it does when throttling or when KMS
    # refuses the key), which botocore raises as ClientError.
    env = {**sqs_env, "SQS_PINGS_QUEUE_URL": sqs_env["SQS_PINGS_QUEUE_URL"] + "-deleted"}

    assert_quick_503(ingest_in_process(env=env, courier=courier))


def test_sqs_that_works_takes_the_batch(transactional_db, courier, sqs_env):
    """The same harness with a healthy broker: 202 (so the cases above fail for the right reason)."""
    answer = ingest_in_process(env=sqs_env, courier=courier)

    assert answer["status"] == 202, answer
