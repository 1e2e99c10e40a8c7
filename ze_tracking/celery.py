from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ze_tracking.settings")

app = Celery("ze_tracking")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def database_connections_persist(**kwargs) -> None:
    """A worker keeps its database connections between tasks (the web, under ASGI, does not:
    see DATABASES in settings) for DB_WORKER_CONN_MAX_AGE, and without the health check
    Django runs before a connection's first query after a request: one more round trip per
    batch. A connection that broke fails its task with a database error, which is retried,
    and `database_connections_tidy` drops it before the next task. Runs before the pool
    starts, so every process and thread of the worker inherits it."""
    from django.conf import settings

    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = settings.DB_WORKER_CONN_MAX_AGE
        database["CONN_HEALTH_CHECKS"] = False


@signals.task_prerun.connect
@signals.task_postrun.connect
def database_connections_tidy(*, sender, **kwargs) -> None:
    """What Django does around each request: close a connection that saw an error and no
    longer answers, or that is older than CONN_MAX_AGE; keep the others. Not for a task run
    eagerly, inside its caller's transaction."""
    from django.db import close_old_connections

    if not getattr(sender.request, "is_eager", False):
        close_old_connections()


@app.task(name="ze_tracking.celery.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Beat schedules this every minute; the metric it records is beat's proof of life."""
    from infra.observability.metrics import metric_record  # Django settings are loaded by now

    metric_record(name="BeatHeartbeat")
