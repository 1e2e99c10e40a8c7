"""Settings that depend on the process: database connections under ASGI and in a worker."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from ze_tracking.celery import database_connections_persist


@pytest.mark.skipif("DB_CONN_MAX_AGE" in os.environ, reason="the environment sets it")
def test_the_web_closes_its_database_connection_after_each_request():
    # Django advises against persistent connections under ASGI.
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


def test_a_worker_keeps_its_connections_between_tasks_without_a_check_per_task():
    # A broken connection fails its task with a database error, which is retried, and
    # ze_tracking.celery.database_connections_tidy drops it before the next task.
    database = settings.DATABASES["default"]
    before = database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]
    try:
        database_connections_persist()
        assert database["CONN_MAX_AGE"] == settings.DB_WORKER_CONN_MAX_AGE > 0
        assert database["CONN_HEALTH_CHECKS"] is False
    finally:
        database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"] = before
