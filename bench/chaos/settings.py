"""Settings of the chaos run's web and worker: the bench's (the product's own plus bench
URLs), with kombu's sweep for unacknowledged Redis messages run every 5 s instead of every
100 s (10 s interval x 10 throttle). A dead worker's batches then come back one visibility
timeout after it died, as SQS (production's broker) gives them back, and not up to 100 s
later, which only a Redis broker adds."""

from __future__ import annotations

from bench.settings import *  # noqa: F403
from bench.settings import CELERY_BROKER_TRANSPORT_OPTIONS

# https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.redis.html
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
}
