"""System checks of the queue settings (`manage.py check`, and every command that runs the
checks first: migrate, collectstatic, runserver)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

# How long a worker holds a received message unacknowledged: until it ran, up to the hard
# time limit, and a notification's retry also for its countdown (a ping batch's retry waits
# in the SQS queue instead: DelaySeconds). If that took longer than the visibility timeout,
# the broker would hand the message to a second worker meanwhile and the task would run
# twice; half of it is left for the message to wait behind the worker's prefetched ones.
# Maintenance tasks are acknowledged on receipt (tracking/tasks.py).
HELD = ("PING_TASK_TIME_LIMIT_S", "NOTIFICATIONS_RETRY_BACKOFF_MAX_S + CELERY_TASK_TIME_LIMIT")


def visibility_timeout_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """On SQS, where deploy/ passes the queues' own visibility timeout: each held time stays
    under half of it. The Redis defaults agree too; tests shrink them on purpose."""
    if not settings.CELERY_BROKER_URL.startswith("sqs://"):
        return []
    visibility_s = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    return [
        checks.Error(
            f"{held} must stay under half of CELERY_VISIBILITY_TIMEOUT, or a retried task can run twice.",
            hint=f"{held} is {held_s} s; CELERY_VISIBILITY_TIMEOUT is {visibility_s} s.",
            id="infra.E001",
        )
        for held in HELD
        if (held_s := sum(getattr(settings, name) for name in held.split(" + "))) > visibility_s / 2
    ]
