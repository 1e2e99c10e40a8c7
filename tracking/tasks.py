from __future__ import annotations

import datetime as dt
import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

from tracking.services.ingest import ping_batch_record as ping_batch_record_service
from tracking.services.partitions import ping_partitions_drop_expired as ping_partitions_drop_expired_service
from tracking.services.partitions import ping_partitions_ensure as ping_partitions_ensure_service
from ze_tracking.metrics import metric_record

logger = logging.getLogger(__name__)


# Idempotent (ON CONFLICT DO NOTHING + recorded_at guard), so acks_late and retries are safe.
@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=20,
)
def ping_batch_record(*, courier_id: str, received_at: str, pings: list[dict]) -> int:
    # Queue lag: how long the batch waited between the API accepting it and a worker.
    metric_record(name="QueueLag", value=time.time() - dt.datetime.fromisoformat(received_at).timestamp())
    started = time.monotonic()
    stored = ping_batch_record_service(courier_id=courier_id, received_at=received_at, pings=pings)
    metric_record(name="BatchLatency", value=time.monotonic() - started)
    logger.info("batch recorded", extra={"pings": len(pings), "stored": stored})
    return stored


@shared_task
def ping_partitions_ensure() -> list[str]:
    return ping_partitions_ensure_service()


@shared_task
def ping_partitions_drop_expired() -> list[str]:
    return ping_partitions_drop_expired_service()
