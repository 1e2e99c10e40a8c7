"""What becomes of a task message that failed: retried with backoff while its failure is
transient and the work young, else dead-lettered by the task, never acknowledged as done
(docs/internals/task-settling.md)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from celery import Task
from celery.exceptions import Reject, Retry
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.utils import timezone
from django_redis import get_redis_connection

from infra.db.failures import Failure, connections_close_after, failure_classify

logger = logging.getLogger(__name__)


class DeadLetter(Exception):
    """A message dead-lettered without running: what it was refused for."""


def _deliveries_key(task: Task) -> str:
    return f"task-deliveries:{task.request.id}:{task.request.retries or 0}"


# Long enough for TASK_MAX_DELIVERIES deliveries a visibility timeout (300 s) apart; short
# enough that the keys of a day's batches do not pile up in Redis.
DELIVERIES_KEEP_S = 3600


def deliveries_count(*, task: Task) -> int:
    """How many times this message (task id and retry) was delivered without finishing, this
    one included: each start counts one (one round trip); a run that ends while its worker
    lives clears the count when it is above one. So what it counts are deliveries that
    ended with their worker (killed, out of memory, past the hard time limit). A Redis that
    does not answer counts nothing: the message then runs as if delivered once."""
    try:
        with get_redis_connection("default").pipeline() as pipe:
            count, _ = pipe.incr(_deliveries_key(task)).expire(_deliveries_key(task), DELIVERIES_KEEP_S).execute()
    except Exception as exc:
        logger.warning("could not count the deliveries of %s[%s]: %r", task.name, task.request.id, exc)
        return 1
    return int(count)


def _deliveries_clear(*, task: Task) -> None:
    try:
        get_redis_connection("default").delete(_deliveries_key(task))
    except Exception as exc:
        logger.warning("could not clear the deliveries of %s[%s]: %r", task.name, task.request.id, exc)


def task_settle(
    *, task: Task, run: Callable[[], object], dead_letter: Callable[[BaseException], None], since: dt.datetime
) -> None:
    """Run one task message to its own fate. Steps:

    1. Count the delivery: a message whose worker died with it TASK_MAX_DELIVERIES times
       (it kills its process, or outlives the hard time limit) is dead-lettered unrun.
    2. Run it.
    3. On failure: close the database connections a failover left useless; a transient
       failure of work younger than TASK_RETRY_MAX_AGE_S is retried with exponential backoff
       and full jitter (a new message; on SQS the queue holds it for its countdown); anything
       else is written by `dead_letter` in its own transaction, then acknowledged.
    4. When neither a retry nor a dead letter can be written (broker and database both
       away), the message is requeued: never acknowledged as done.
    """
    deliveries = deliveries_count(task=task)
    try:
        _settle(task=task, run=run, dead_letter=dead_letter, since=since, deliveries=deliveries)
    except Reject:
        _deliveries_clear(task=task)  # requeued by a worker that lives on: no death to count
        raise
    if deliveries > 1:
        _deliveries_clear(task=task)


def _settle(
    *,
    task: Task,
    run: Callable[[], object],
    dead_letter: Callable[[BaseException], None],
    since: dt.datetime,
    deliveries: int,
) -> None:
    if deliveries > settings.TASK_MAX_DELIVERIES:
        exc: BaseException = DeadLetter(
            f"delivered {deliveries - 1} times without finishing: its worker died or passed the hard time "
            "limit each time"
        )
        logger.error("dead-lettering %s[%s]: %s", task.name, task.request.id, exc)
        _dead_letter_or_requeue(task=task, dead_letter=dead_letter, exc=exc, since=since)
        return
    try:
        run()
    except Exception as exc:
        connections_close_after(exc=exc)
        _failure_settle(task=task, dead_letter=dead_letter, exc=exc, since=since)


def _failure_settle(
    *, task: Task, dead_letter: Callable[[BaseException], None], exc: BaseException, since: dt.datetime
) -> None:
    kind = failure_classify(exc=exc)
    age_s = (timezone.now() - since).total_seconds()
    if kind is Failure.TRANSIENT and age_s < settings.TASK_RETRY_MAX_AGE_S:
        task_retry(task=task, exc=exc)
    logger.error(
        "dead-lettering %s[%s] after %d retries (%s failure, %.0f s old): %r",
        task.name, task.request.id, task.request.retries or 0, kind.value, age_s, exc,
    )  # fmt: skip
    _dead_letter_or_requeue(task=task, dead_letter=dead_letter, exc=exc, since=since)


def _dead_letter_or_requeue(
    *, task: Task, dead_letter: Callable[[BaseException], None], exc: BaseException, since: dt.datetime
) -> None:
    try:
        dead_letter(exc)
    except Exception as failed:
        connections_close_after(exc=failed)
        logger.exception("could not dead-letter %s[%s]; retrying it", task.name, task.request.id)
        task_retry(task=task, exc=failed)


def task_retry(*, task: Task, exc: BaseException) -> None:
    """Publish the message again with exponential backoff and full jitter (the same task id,
    one retry more) and raise Celery's Retry, which acknowledges this delivery. On SQS the
    queue holds the new message for its countdown (DelaySeconds), so no worker holds it
    unacknowledged meanwhile; on Redis the worker holds it (CELERY_WORKER_ETA_TASK_LIMIT
    bounds how many). The task must set `max_retries=None`. When the broker does not take it,
    the message is requeued (Celery's own retry would reject it, which on Redis deletes it)."""
    countdown = get_exponential_backoff_interval(
        factor=settings.TASK_RETRY_BACKOFF_S, retries=task.request.retries or 0,
        maximum=settings.TASK_RETRY_BACKOFF_MAX_S, full_jitter=True,
    )  # fmt: skip
    # countdown=0: no ETA at all (None would mean Celery's default_retry_delay, 3 minutes).
    on_sqs = settings.CELERY_BROKER_URL.startswith("sqs://")
    timing = {"countdown": 0, "DelaySeconds": int(countdown)} if on_sqs else {"countdown": countdown}
    try:
        raise task.retry(exc=exc, throw=True, **timing)
    except Retry:
        raise
    except Exception as failed:
        logger.error("could not publish the retry of %s[%s] (%r); requeueing it", task.name, task.request.id, failed)
        raise Reject(failed, requeue=True) from failed
