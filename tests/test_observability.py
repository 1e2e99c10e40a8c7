"""What the service says about itself: JSON logs that carry request, courier and task ids,
Prometheus metrics that move with the traffic, who may read them, and EMF lines."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from infra.observability.metrics import metric_record
from tests.support import OUTPUT
from tests.support.builders import ping
from tests.support.waiting import wait_for

LOCATIONS = "/api/v1/locations"


def sample(text: str, name: str) -> float:
    """The value of one sample (summed over its labels) in a Prometheus exposition."""
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples if s.name == name)


@pytest.fixture
def metrics_staff(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def log_lines():
    """Everything the root console handler (Django's LOGGING) writes, as text lines."""
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "name", "") == "console"]
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    yield lambda: buffer.getvalue().splitlines()
    handler.setStream(old)


def test_request_log_line_is_json_with_request_id_and_courier_id(courier_api, courier, log_lines):
    # A ping the API refuses: the request is logged in full and nothing waits in the broker.
    refused = {**ping(), "lat": 999}
    response = courier_api.post(LOCATIONS, {"pings": [refused]}, format="json", HTTP_X_REQUEST_ID="client-req-0001")

    assert response.status_code == 400  # every ping refused
    assert response["X-Request-ID"] == "client-req-0001"
    records = [json.loads(line) for line in log_lines()]  # every line is JSON, or this raises
    (access,) = [r for r in records if r["logger"] == "ze_tracking.request"]
    assert access["request_id"] == "client-req-0001"
    assert access["courier_id"] == str(courier.id)
    assert access["route"] == "api/v1/locations" and access["status"] == 400
    assert access["time"].endswith("+00:00")


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_request_line_also_carries_both_ids(worker, courier, log_lines):
    """Production serves through ASGI, where the sync view runs on another thread."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from couriers.services import api_token_create

    _, token = api_token_create(user=courier.user)
    response = async_to_sync(AsyncClient().post)(
        LOCATIONS, {"pings": [ping()]}, content_type="application/json",
        headers={"Authorization": f"Token {token}", "X-Request-ID": "asgi-request-0001"},
    )  # fmt: skip

    assert response.status_code == 202 and response["X-Request-ID"] == "asgi-request-0001"
    (access,) = [json.loads(line) for line in log_lines() if "ze_tracking.request" in line]
    assert access["request_id"] == "asgi-request-0001" and access["courier_id"] == str(courier.id)
    # The batch went to the real broker: let the worker store it before the database is
    # emptied for the next test, so the two never race.
    from tracking.models import Ping

    wait_for(lambda: Ping.objects.filter(courier_id=courier.id).exists(), timeout=30, message="the batch stored")


def test_a_forged_request_id_is_replaced(anonymous_api, log_lines):
    response = anonymous_api.get("/healthz", HTTP_X_REQUEST_ID="x\nlevel=ERROR fake")

    assert response["X-Request-ID"] != "x\nlevel=ERROR fake" and len(response["X-Request-ID"]) == 32
    (access,) = [json.loads(line) for line in log_lines() if "ze_tracking.request" in line]
    assert access["request_id"] == response["X-Request-ID"] and access["courier_id"] is None


def test_tracking_link_code_never_reaches_the_logs(anonymous_api, log_lines):
    anonymous_api.get("/api/v1/track/AbCdEfGh1234secret")

    assert "AbCdEfGh1234secret" not in "\n".join(log_lines())


def test_uvicorn_access_lines_with_raw_paths_are_not_written(log_lines):
    logging.getLogger("uvicorn.access").info('127.0.0.1:5000 - "GET /t/AbCdEfGh1234secret HTTP/1.1" 200')

    assert "AbCdEfGh1234secret" not in "\n".join(log_lines())


def test_worker_logs_json_with_task_id_and_courier_id(worker, courier_api, courier):
    response = courier_api.post(LOCATIONS, {"pings": [ping()]}, format="json")
    assert response.status_code == 202

    def batch_line():
        for line in (OUTPUT / "celery-worker.log").read_text().splitlines():
            if line.startswith("{") and '"batch recorded"' in line:
                record = json.loads(line)
                if record["courier_id"] == str(courier.id):
                    return record
        return None

    record = wait_for(batch_line, timeout=20, message="the worker's batch line")
    assert record["task_id"] and record["stored"] == 1 and record["logger"] == "tracking.tasks"


def test_metrics_move_after_an_ingest_including_the_workers(worker, courier_api, metrics_staff):
    before = metrics_staff.get("/metrics").content.decode()

    response = courier_api.post(
        LOCATIONS, {"pings": [ping(seconds_ago=3), ping(seconds_ago=2), {"lat": 1}]}, format="json"
    )
    assert response.status_code == 202

    after = metrics_staff.get("/metrics").content.decode()
    assert sample(after, "ze_pings_accepted_total") == sample(before, "ze_pings_accepted_total") + 2
    assert sample(after, "ze_pings_rejected_total") == sample(before, "ze_pings_rejected_total") + 1
    # Recorded by the worker process, read through the web's /metrics (multiprocess mode).
    for name in ("ze_ping_batch_latency_seconds_count", "ze_ping_batch_queue_lag_seconds_count"):
        wait_for(
            lambda name=name: sample(metrics_staff.get("/metrics").content.decode(), name) >= sample(before, name) + 1,
            timeout=20,
            message=f"{name} to move",
        )
    freshness = "ze_ping_freshness_seconds_count"
    wait_for(
        lambda: sample(metrics_staff.get("/metrics").content.decode(), freshness) >= sample(before, freshness) + 2,
        timeout=20,
        message="freshness of both pings",
    )


@pytest.mark.parametrize("who", ["anonymous", "courier"])
def test_metrics_are_refused_to_non_staff(who, courier):
    client = Client()
    if who == "courier":
        client.force_login(courier.user)

    assert client.get("/metrics").status_code == 403


def test_metrics_answer_staff_and_the_scrape_token_only(metrics_staff, settings, db):
    settings.METRICS_TOKEN = "scrape-token-0123456789"

    assert metrics_staff.get("/metrics").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-012345678").status_code == 403
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_emf_lines_are_cloudwatch_embedded_metric_documents(tmp_path, monkeypatch):
    path = tmp_path / "metrics.log"
    monkeypatch.setenv("METRICS_EMF_PATH", str(path))
    monkeypatch.setenv("METRICS_STAGE", "prod")

    metric_record(name="PingsAccepted", value=3)
    metric_record(name="Freshness", value=[0.5, 1.5])

    counted, observed = [json.loads(line) for line in path.read_text().splitlines()]
    directive = counted["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ZeTracking" and directive["Dimensions"] == [["Stage"]]
    assert directive["Metrics"] == [{"Name": "PingsAccepted", "Unit": "Count"}]
    assert counted["Stage"] == "prod" and counted["PingsAccepted"] == 3
    assert observed["Freshness"] == [0.5, 1.5]
    assert observed["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "Freshness", "Unit": "Seconds"}]


def test_no_emf_file_unless_configured(tmp_path, monkeypatch):
    monkeypatch.delenv("METRICS_EMF_PATH", raising=False)
    monkeypatch.chdir(tmp_path)

    metric_record(name="PingsAccepted", value=1)

    assert list(tmp_path.iterdir()) == []


def test_a_histogram_of_250_values_is_three_emf_documents_carrying_all_of_them(tmp_path, monkeypatch):
    # EMF takes at most 100 values per metric per document: more are split, never cut.
    path = tmp_path / "metrics.log"
    monkeypatch.setenv("METRICS_EMF_PATH", str(path))
    values = [i / 10 for i in range(250)]

    metric_record(name="BatchLatency", value=values)

    documents = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(documents) == 3
    assert all(len(d["BatchLatency"]) <= 100 for d in documents)
    assert sorted(v for d in documents for v in d["BatchLatency"]) == values


def test_with_log_json_path_each_log_line_is_one_json_object_in_that_file(tmp_path, settings):
    # On Elastic Beanstalk stdout reaches CloudWatch behind a syslog prefix: the CloudWatch
    # agent ships this file instead, and Logs Insights reads its fields.
    import logging.config

    from infra.observability.logging import logging_config

    path = tmp_path / "app.log"
    logging.config.dictConfig(logging_config(level="INFO", json_path=str(path)))
    try:
        logging.getLogger("tracking.services.ingest").warning("batch refused", extra={"reason": "too old"})
    finally:
        logging.config.dictConfig(settings.LOGGING)

    (line,) = path.read_text().splitlines()
    record = json.loads(line)
    assert record["message"] == "batch refused" and record["level"] == "WARNING" and record["reason"] == "too old"
    assert {"request_id", "courier_id", "task_id", "time"} <= set(record)


def test_a_sentry_event_names_no_tracking_code():
    from infra.observability.logging import sentry_event_scrub

    code = "Zk3_secret-code-0123456789abcdef"
    event = {
        "transaction": "/t/<str:code>",
        "request": {
            "url": f"https://track.example/t/{code}",
            "query_string": "from=sms",
            "headers": {"Referer": f"https://track.example/t/{code}", "User-Agent": "x"},
        },
    }

    scrubbed = sentry_event_scrub(event, {})

    assert code not in json.dumps(scrubbed)
    assert scrubbed["request"]["url"] == "https://track.example/t/:code"
    assert scrubbed["request"]["headers"]["User-Agent"] == "x"
