from __future__ import annotations

import datetime as dt
import logging
import time

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from infra.observability.logging import log_context_bind
from infra.observability.metrics import metric_record
from infra.queue.settle import task_settle
from tracking.services.dead_letters import ping_batch_dead_letter_record
from tracking.services.ingest import ping_batch_record as ping_batch_record_service
from tracking.services.partitions import ping_partitions_drop_expired as ping_partitions_drop_expired_service
from tracking.services.partitions import ping_partitions_ensure as ping_partitions_ensure_service
from tracking.services.storage import ping_events_prune as ping_events_prune_service
from tracking.services.storage import ping_partitions_pack as ping_partitions_pack_service

logger = logging.getLogger(__name__)


class PingBatchTask(Task):
    """One batch per message, on Celery's own lifecycle: acknowledged after its commit, and
    whatever fails settled for this message alone (infra/queue/settle.py). A message that
    fails before the task body runs is dead-lettered by its request class."""

    Request = "infra.queue.celery_private:DeadLetterRequest"

    def dead_letter_message(self, *, task_id: str, body, content_type: str, content_encoding: str, exc) -> None:
        ping_batch_dead_letter_record(
            task_id=task_id, task_name=self.name, body=body, content_type=content_type,
            content_encoding=content_encoding, exc=exc,
        )  # fmt: skip


# Idempotent (ON CONFLICT DO NOTHING + recorded_at guard), so acks_late and redelivery are
# safe. Takes **kwargs so that a message of any shape reaches the body, which settles it.
@shared_task(
    base=PingBatchTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # retried while young enough (TASK_RETRY_MAX_AGE_S), not a count
    soft_time_limit=settings.PING_TASK_SOFT_TIME_LIMIT_S,
    time_limit=settings.PING_TASK_TIME_LIMIT_S,
)
def ping_batch_record(self, **kwargs) -> None:
    """One batch: courier_id, received_at (ISO 8601), pings."""
    task_settle(
        task=self,
        run=lambda: ping_batch_run(**kwargs),
        dead_letter=lambda exc: ping_batch_dead_letter_record(
            task_id=self.request.id, task_name=self.name, kwargs=kwargs, exc=exc
        ),
        since=_since(kwargs),
    )


def ping_batch_run(*, courier_id, received_at, pings) -> None:
    log_context_bind(courier_id=courier_id)
    # Queue lag: how long the batch waited between the API accepting it and a worker.
    metric_record(name="QueueLag", value=time.time() - dt.datetime.fromisoformat(received_at).timestamp())
    started = time.monotonic()
    stored = ping_batch_record_service(courier_id=courier_id, received_at=received_at, pings=pings)
    metric_record(name="BatchLatency", value=time.monotonic() - started)
    logger.info("batch recorded", extra={"pings": len(pings), "stored": stored})


def _since(kwargs: dict) -> dt.datetime:
    """When the batch was first accepted, which bounds its retries; now if it cannot be read
    (the run then fails on it, and the message is dead-lettered)."""
    try:
        return dt.datetime.fromisoformat(kwargs["received_at"])
    except (KeyError, TypeError, ValueError):
        return timezone.now()


# Maintenance is idempotent and beat runs it again on schedule, so its messages are
# acknowledged on receipt (acks_late=False): a run may last longer than the broker's
# visibility timeout without being delivered to a second worker meanwhile, and a run that
# dies is simply done by the next one.


# Sized for a few DDL statements, each giving up its lock after PARTITION_LOCK_TIMEOUT_MS and
# tried PARTITION_DDL_ATTEMPTS times.
@shared_task(acks_late=False, soft_time_limit=120, time_limit=150)
def ping_partitions_ensure() -> list[str]:
    return ping_partitions_ensure_service()


@shared_task(acks_late=False, soft_time_limit=120, time_limit=150)
def ping_partitions_drop_expired() -> list[str]:
    return ping_partitions_drop_expired_service()


# An hour of events (4M at 100M pings a day) goes in chunks of 10,000 rows, each committed.
@shared_task(acks_late=False, soft_time_limit=1500, time_limit=1800)
def ping_events_prune() -> int:
    return ping_events_prune_service()


# REINDEX CONCURRENTLY of a day's key takes seconds to a few minutes at 100M pings a day.
@shared_task(acks_late=False, soft_time_limit=1500, time_limit=1800)
def ping_partitions_pack() -> list[str]:
    return ping_partitions_pack_service()
