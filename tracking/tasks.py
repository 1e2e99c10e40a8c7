from __future__ import annotations

import datetime as dt
import logging
import time

from celery import shared_task
from django.conf import settings

from tracking.services.ingest import ping_batch_record as ping_batch_record_service
from tracking.services.ingest import ping_batches_record as ping_batches_record_service
from tracking.services.partitions import ping_partitions_drop_expired as ping_partitions_drop_expired_service
from tracking.services.partitions import ping_partitions_ensure as ping_partitions_ensure_service
from tracking.services.storage import ping_events_prune as ping_events_prune_service
from tracking.services.storage import ping_partitions_pack as ping_partitions_pack_service
from ze_tracking.failures import Failure, failure_classify, request_retry_or_reject
from ze_tracking.logging import log_context_bind
from ze_tracking.metrics import metric_record
from ze_tracking.task_groups import ACK, GroupedRequest, GroupedTask

logger = logging.getLogger(__name__)


# Idempotent (ON CONFLICT DO NOTHING + recorded_at guard), so acks_late and retries are safe.
# The worker hands it its queued messages in groups (ze_tracking/task_groups.py): one message
# each while the queue is short, up to PING_TASK_GROUP_MAX while it is deep.
@shared_task(
    base=GroupedTask,
    bind=True,
    acks_late=True,
    group_max=settings.PING_TASK_GROUP_MAX,
    soft_time_limit=settings.PING_TASK_SOFT_TIME_LIMIT_S,
    time_limit=settings.PING_TASK_TIME_LIMIT_S,
)
def ping_batch_record(self, requests: list[GroupedRequest]) -> list[str]:
    """Each request carries one batch: courier_id, received_at (ISO 8601), pings. Returns one
    outcome per request, for the worker to acknowledge or reject after the commit."""
    for request in requests:
        # Queue lag: how long the batch waited between the API accepting it and a worker.
        received_at = dt.datetime.fromisoformat(request.kwargs["received_at"]).timestamp()
        metric_record(name="QueueLag", value=time.time() - received_at)
    started = time.monotonic()
    outcomes = ping_batches_settle(task=self, requests=requests)
    metric_record(name="BatchLatency", value=time.monotonic() - started)
    return outcomes


def ping_batches_settle(*, task: GroupedTask, requests: list[GroupedRequest]) -> list[str]:
    """Steps: record all the batches in one transaction; if that fails transiently, retry
    each of them; if it fails otherwise (a refused ping, a bug one batch triggers), record
    each batch on its own, as a single message would be: a refused ping dead-lettered by the
    service, what still fails retried while transient, else rejected. A soft time limit
    reached meanwhile retries what is not done yet."""
    outcomes: list[str | None] = [None] * len(requests)
    try:
        if len(requests) > 1:
            try:
                stored = ping_batches_record_service(batches=[r.kwargs for r in requests])
            except Exception as exc:
                if failure_classify(exc=exc) is Failure.TRANSIENT:
                    raise
                logger.warning("a group of %d batches failed (%r); recording each on its own", len(requests), exc)
            else:
                logger.info("batches recorded", extra={"batches": len(requests), "stored": stored})
                return [ACK] * len(requests)
        for index, request in enumerate(requests):
            log_context_bind(courier_id=request.kwargs.get("courier_id"))
            try:
                stored = ping_batch_record_service(**request.kwargs)
            except Exception as exc:
                outcomes[index] = request_retry_or_reject(task=task, request=request, exc=exc, since=_since(request))
            else:
                outcomes[index] = ACK
                logger.info("batch recorded", extra={"pings": len(request.kwargs["pings"]), "stored": stored})
    except Exception as exc:
        # Transient for the whole group, or the soft time limit: whatever is not done is retried.
        for index, request in enumerate(requests):
            if outcomes[index] is None:
                outcomes[index] = request_retry_or_reject(task=task, request=request, exc=exc, since=_since(request))
    return outcomes


def _since(request: GroupedRequest) -> dt.datetime:
    return dt.datetime.fromisoformat(request.kwargs["received_at"])


# Sized for a few DDL statements, each giving up its lock after PARTITION_LOCK_TIMEOUT_MS and
# tried PARTITION_DDL_ATTEMPTS times; beat runs them again on schedule.
@shared_task(soft_time_limit=120, time_limit=150)
def ping_partitions_ensure() -> list[str]:
    return ping_partitions_ensure_service()


@shared_task(soft_time_limit=120, time_limit=150)
def ping_partitions_drop_expired() -> list[str]:
    return ping_partitions_drop_expired_service()


# An hour of events (4M at 100M pings a day) goes in chunks of 10,000 rows, each committed.
@shared_task(soft_time_limit=1500, time_limit=1800)
def ping_events_prune() -> int:
    return ping_events_prune_service()


# REINDEX CONCURRENTLY of a day's key takes seconds to a few minutes at 100M pings a day.
@shared_task(soft_time_limit=1500, time_limit=1800)
def ping_partitions_pack() -> list[str]:
    return ping_partitions_pack_service()
