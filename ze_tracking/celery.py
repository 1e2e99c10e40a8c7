from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ze_tracking.settings")

app = Celery("ze_tracking")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="ze_tracking.celery.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Beat schedules this every minute; the metric it records is beat's proof of life."""
    from ze_tracking.metrics import metric_record  # Django settings are loaded by now

    metric_record(name="BeatHeartbeat")
