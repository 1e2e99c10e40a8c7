from __future__ import annotations

import datetime as dt
import logging
import time

from celery import shared_task
from django.conf import settings

from tracking.services.ingest import ping_batch_record as ping_batch_record_service
from tracking.services.partitions import ping_partitions_drop_expired as ping_partitions_drop_expired_service
from tracking.services.partitions import ping_partitions_ensure as ping_partitions_ensure_service
from tracking.services.storage import ping_partitions_pack as ping_partitions_pack_service
from ze_tracking.failures import task_retry_or_reject
from ze_tracking.metrics import metric_record

logger = logging.getLogger(__name__)


# Idempotent (ON CONFLICT DO NOTHING + recorded_at guard), so acks_late and retries are safe.
# A ping the database refuses is dead-lettered by the service; what still fails here is
# retried while transient, else rejected (see task_retry_or_reject).
@shared_task(
    bind=True,
    acks_late=True,
    # No count of its own: ze_tracking.failures retries a transient failure until the batch
    # is TASK_RETRY_MAX_AGE_S old (Celery's default would give up after three).
    max_retries=None,
    soft_time_limit=settings.PING_TASK_SOFT_TIME_LIMIT_S,
    time_limit=settings.PING_TASK_TIME_LIMIT_S,
)
def ping_batch_record(self, *, courier_id: str, received_at: str, pings: list[dict]) -> int:
    # Queue lag: how long the batch waited between the API accepting it and a worker.
    metric_record(name="QueueLag", value=time.time() - dt.datetime.fromisoformat(received_at).timestamp())
    started = time.monotonic()
    try:
        stored = ping_batch_record_service(courier_id=courier_id, received_at=received_at, pings=pings)
    except Exception as exc:
        raise task_retry_or_reject(task=self, exc=exc, since=dt.datetime.fromisoformat(received_at)) from exc
    metric_record(name="BatchLatency", value=time.monotonic() - started)
    logger.info("batch recorded", extra={"pings": len(pings), "stored": stored})
    return stored


# Sized for a few DDL statements, each giving up its lock after PARTITION_LOCK_TIMEOUT_MS and
# tried PARTITION_DDL_ATTEMPTS times; beat runs them again on schedule.
@shared_task(soft_time_limit=120, time_limit=150)
def ping_partitions_ensure() -> list[str]:
    return ping_partitions_ensure_service()


@shared_task(soft_time_limit=120, time_limit=150)
def ping_partitions_drop_expired() -> list[str]:
    return ping_partitions_drop_expired_service()


# REINDEX CONCURRENTLY of a day's key takes seconds to a few minutes at 100M pings a day.
@shared_task(soft_time_limit=1500, time_limit=1800)
def ping_partitions_pack() -> list[str]:
    return ping_partitions_pack_service()
