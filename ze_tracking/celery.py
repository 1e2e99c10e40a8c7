from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ze_tracking.settings")

app = Celery("ze_tracking")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="ze_tracking.celery.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Beat schedules this every minute; the metric it records is beat's proof of life."""
    from ze_tracking.metrics import metric_record  # Django settings are loaded by now

    metric_record(name="BeatHeartbeat")


@worker_init.connect
def _database_connections_persist(**kwargs) -> None:
    """A worker keeps its database connections between tasks (the web, under ASGI, does not:
    see DATABASES in settings). Celery's Django fix-up closes a connection after a task only
    when it is older than CONN_MAX_AGE or unusable, and Django's health check replaces one
    that died while idle. Runs before the pool starts, so prefork children inherit it."""
    from django.conf import settings

    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = settings.DB_WORKER_CONN_MAX_AGE
