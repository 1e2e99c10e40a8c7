from __future__ import annotations

import pytest
import redis
from django.conf import settings

from tests.support.builders import ping
from ze_tracking.celery import app as celery_app


@pytest.fixture
def broker_down(monkeypatch):
    """Point the Celery app at a port where nothing listens, as when the broker is down.
    (Celery reads CELERY_BROKER_URL from the environment before its settings.)"""
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:9/0")
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    yield
    monkeypatch.undo()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_healthz_answers_without_dependencies(client):
    assert client.get("/healthz").status_code == 200


def test_healthz_answers_while_the_cache_and_the_broker_are_down(client, settings, broker_down):
    """The load balancer's check, on which Auto Scaling replaces web instances: liveness only.
    A database (no access allowed here), Redis or broker outage must not fail it, or one
    outage would replace every instance."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}}

    assert client.get("/healthz", HTTP_HOST="localhost", HTTP_X_FORWARDED_PROTO="https").status_code == 200


@pytest.mark.django_db
def test_readyz_is_200_when_database_redis_and_broker_answer(client):
    response = client.get("/readyz")

    assert response.status_code == 200, response.json()


@pytest.mark.django_db
def test_readyz_tells_anonymous_callers_only_not_ready_and_staff_what_failed(client, staff, broker_down, caplog):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "not ready"}
    assert "broker" in caplog.text  # the operator finds the reason in the logs

    client.force_login(staff)
    detail = client.get("/readyz").json()
    assert detail["status"] == "not ready" and list(detail["failed"]) == ["broker"]


@pytest.mark.django_db
def test_readyz_answers_anonymous_callers_only_ready(client):
    assert client.get("/readyz").json() == {"status": "ready"}


@pytest.mark.django_db
def test_readyz_reuses_its_connections(client):
    """A probe every few seconds must not open a Redis (cache, broker) connection per call."""
    server = redis.Redis.from_url(settings.REDIS_URL)
    client.get("/readyz")
    opened = server.info("stats")["total_connections_received"]

    for _ in range(5):
        assert client.get("/readyz").status_code == 200

    assert server.info("stats")["total_connections_received"] - opened <= 1  # this count's own


@pytest.mark.real_broker
def test_ingest_answers_503_with_retry_after_when_the_broker_is_down(courier_api, broker_down):
    response = courier_api.post("/api/v1/locations", {"pings": [ping()]}, format="json")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")

    assert schema.status_code == 200 and b"/api/v1/locations" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_the_committed_openapi_schema_matches_the_code(tmp_path):
    from django.core.management import call_command

    from tests.support import ROOT

    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")

    assert generated.read_text() == (ROOT / "docs" / "openapi.yaml").read_text(), "run `make schema`"


def test_every_operation_documents_the_503_a_dependency_outage_gives():
    """The database, or the Redis behind throttles and the queue, out: every API operation can
    answer 503 with Retry-After, so a client generated from the schema expects it."""
    import yaml

    from tests.support import ROOT

    schema = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]

    assert operations
    for path, method, operation in operations:
        answer = operation["responses"].get("503")
        assert answer is not None, (method, path)
        assert "Retry-After" in answer["headers"] and "application/json" in answer["content"], (method, path)


def test_every_throttled_operation_documents_429_with_retry_after():
    """An operation whose view has throttles can answer 429 with Retry-After
    (tests/test_throttles.py), so the schema says so; and no other operation claims it."""
    import re
    import uuid

    import yaml
    from django.urls import resolve

    from tests.support import ROOT

    schema = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    throttled = set()
    for path, operations in schema["paths"].items():
        view_class = resolve(re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path)).func.cls
        for method, operation in operations.items():
            view = view_class()
            view.request = None
            answer = operation["responses"].get("429")
            if view.get_throttles():
                throttled.add((method, path))
                assert answer is not None, (method, path)
                assert "Retry-After" in answer.get("headers", {}), (method, path)
                assert "application/json" in answer["content"], (method, path)
            else:
                assert answer is None, (method, path)
    assert throttled >= {
        ("post", "/api/v1/auth/token"),
        ("post", "/api/v1/locations"),
        ("get", "/api/v1/track/{tracking_code}"),
    }


def test_every_operation_documents_the_401_403_and_404_its_view_can_give():
    """A view that authenticates and has a permission that can refuse answers 401 without
    credentials and 403 with another role's; a path that names an object answers 404."""
    import re
    import uuid
    from types import SimpleNamespace

    import yaml
    from django.urls import resolve
    from rest_framework.permissions import AllowAny

    from tests.support import ROOT

    schema = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    for path, operations in schema["paths"].items():
        view_class = resolve(re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path)).func.cls
        for method, operation in operations.items():
            view = view_class()
            view.request = SimpleNamespace(method=method.upper())  # permissions may depend on it
            responses = operation["responses"]
            guarded = view.get_authenticators() and any(not isinstance(p, AllowAny) for p in view.get_permissions())
            if guarded:
                assert {"401", "403"} <= responses.keys(), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for status in ("401", "403", "404"):
                if status in responses:
                    assert "application/json" in responses[status]["content"], (method, path, status)
