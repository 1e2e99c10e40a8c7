"""Observability: JSON logs, metrics and Sentry (infra/observability/)."""

from __future__ import annotations

from infra.observability.logging import logging_config, sentry_init
from ze_tracking.settings.core import env

LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"), json_path=env.str("LOG_JSON_PATH", default=""))
# Workers log through the same JSON handler instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Bearer token a Prometheus scraper may use for /metrics; staff users need none.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
sentry_init(
    dsn=env.str("SENTRY_DSN", default=""),
    environment=env.str("SENTRY_ENVIRONMENT", default=env.str("METRICS_STAGE", default="local")),
    traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
)
