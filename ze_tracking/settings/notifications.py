"""The orders app's consumer notifications (orders/notifications.py): backend and retries."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from ze_tracking.settings.core import env

# --- Consumer notifications (see orders/notifications.py) and the tracking link
AWS_REGION = env.str("AWS_REGION", default="us-east-1")
# Only set locally and in tests (moto's server); production talks to the real SNS.
AWS_ENDPOINT_URL_SNS = env.str("AWS_ENDPOINT_URL_SNS", default="") or None
NOTIFICATIONS_BACKEND = env.str("NOTIFICATIONS_BACKEND", default="log")
if NOTIFICATIONS_BACKEND not in ("log", "sns", "webhook"):
    raise ImproperlyConfigured(f"NOTIFICATIONS_BACKEND must be log, sns or webhook, not {NOTIFICATIONS_BACKEND!r}.")
NOTIFICATIONS_SNS_TOPIC_ARN = env.str("NOTIFICATIONS_SNS_TOPIC_ARN", default="")
NOTIFICATIONS_WEBHOOK_URL = env.str("NOTIFICATIONS_WEBHOOK_URL", default="")
NOTIFICATIONS_WEBHOOK_SECRET = env.str("NOTIFICATIONS_WEBHOOK_SECRET", default="")
if NOTIFICATIONS_BACKEND == "sns" and not NOTIFICATIONS_SNS_TOPIC_ARN:
    raise ImproperlyConfigured("NOTIFICATIONS_BACKEND=sns needs NOTIFICATIONS_SNS_TOPIC_ARN.")
if NOTIFICATIONS_BACKEND == "webhook" and not (NOTIFICATIONS_WEBHOOK_URL and NOTIFICATIONS_WEBHOOK_SECRET):
    raise ImproperlyConfigured("NOTIFICATIONS_BACKEND=webhook needs NOTIFICATIONS_WEBHOOK_URL and _SECRET.")
# Delivery retries: Celery's exponential backoff (base, 2x base, 4x base ... capped), then
# the row is marked failed. https://docs.celeryq.dev/en/stable/userguide/tasks.html#Task.retry_backoff
# 5, 10, 20, 40, then 60 s (the cap: see the visibility check below) 12 times: about 13 min.
NOTIFICATIONS_MAX_RETRIES = env.int("NOTIFICATIONS_MAX_RETRIES", default=16)
NOTIFICATIONS_RETRY_BACKOFF_S = env.int("NOTIFICATIONS_RETRY_BACKOFF_S", default=5)
NOTIFICATIONS_RETRY_BACKOFF_MAX_S = env.int("NOTIFICATIONS_RETRY_BACKOFF_MAX_S", default=60)
# A row left pending (or claimed by a worker that died) this long is enqueued again by beat.
NOTIFICATIONS_STALE_AFTER_S = env.int("NOTIFICATIONS_STALE_AFTER_S", default=600)
