"""Whether a failure is worth retrying, and what becomes of a task message that failed.

Decided by PostgreSQL's SQLSTATE (https://www.postgresql.org/docs/15/errcodes-appendix.html)
rather than by exception class: psycopg files a failover's "read-only transaction" (25006)
under InternalError and an oversized index row (54000) under OperationalError, so the class
alone retries the wrong ones and drops the right ones.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import Task
from celery.exceptions import Ignore, InvalidTaskError, Reject, Retry, SoftTimeLimitExceeded, Terminated
from celery.utils.time import get_exponential_backoff_interval
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.request import Request
from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError, connections
from django.utils import timezone
from django_redis import get_redis_connection

logger = logging.getLogger(__name__)

#: The Celery version `DeadLetterRequest` and `Consumer` below were written and tested against:
#: they take over what Celery does with a message that fails before its task body runs.
CELERY_VERSION = "5.7.0"


class Failure(enum.Enum):
    # The same input will succeed later: the connection, the server or a lock was the problem.
    TRANSIENT = "transient"
    # The input itself is refused and always will be: retrying it never helps.
    DATA = "data"
    # Anything else (a bug, a missing table): neither retried nor blamed on one input.
    OTHER = "other"


# Connection exceptions (08), transaction rollbacks: serialization failure, deadlock (40),
# insufficient resources such as too many connections (53), operator intervention: admin or
# crash shutdown, cannot connect now, statement cancelled (57), system errors (58).
TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
TRANSIENT_STATES = {
    "25006",  # read_only_sql_transaction: a connection left on a writer that failed over
    "55P03",  # lock_not_available: lock_timeout expired
    "55006",  # object_in_use
}
# Data exceptions (22: out of range, invalid text such as a jsonb refusal), integrity
# violations (23: the ON CONFLICT guards never raise, so any other is the row's fault), and
# program limits hit by one row (54: index row or jsonb too large).
DATA_CLASSES = ("22", "23", "54")


def failure_classify(*, exc: BaseException) -> Failure:
    if isinstance(exc, SoftTimeLimitExceeded):
        # A database slow enough to reach the time limit: the input is fine.
        return Failure.TRANSIENT
    if isinstance(exc, DatabaseError):
        sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
        if sqlstate in TRANSIENT_STATES or sqlstate.startswith(TRANSIENT_CLASSES):
            return Failure.TRANSIENT
        if sqlstate.startswith(DATA_CLASSES):
            return Failure.DATA
        if not sqlstate and isinstance(exc, OperationalError | InterfaceError):
            return Failure.TRANSIENT  # no answer from the server at all: connection lost
        if not sqlstate and isinstance(exc, DataError | IntegrityError):
            return Failure.DATA
        return Failure.OTHER
    if isinstance(exc, ValueError | TypeError | KeyError):
        # Raised while converting one ping's values (a lone surrogate psycopg cannot encode,
        # a malformed date): deterministic for that input.
        return Failure.DATA
    return Failure.OTHER


# What a connection left on a failed-over or restarting server answers: every later query on
# it would fail the same way, so it is closed at once rather than when it ages out.
FAILOVER_STATES = {"25006", "57P01", "57P02", "57P03"}


def connections_close_after(*, exc: BaseException) -> None:
    """Close the database connections after a failure that leaves them useless: a writer
    demoted by a failover (25006), a server shutting down (57P01-03), a broken connection
    (08). Django's own check (`close_old_connections`) keeps a connection that still
    answers, and a demoted writer answers."""
    sqlstate = getattr(getattr(exc, "__cause__", None), "sqlstate", None) or ""
    if sqlstate in FAILOVER_STATES or sqlstate.startswith("08") or isinstance(exc, InterfaceError):
        for connection in connections.all(initialized_only=True):
            connection.close()


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


def _settle(*, task: Task, run: Callable, dead_letter: Callable, since: dt.datetime, deliveries: int) -> None:
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


def _failure_settle(*, task: Task, dead_letter: Callable, exc: BaseException, since: dt.datetime) -> None:
    kind = failure_classify(exc=exc)
    age_s = (timezone.now() - since).total_seconds()
    if kind is Failure.TRANSIENT and age_s < settings.TASK_RETRY_MAX_AGE_S:
        task_retry(task=task, exc=exc)
    logger.error(
        "dead-lettering %s[%s] after %d retries (%s failure, %.0f s old): %r",
        task.name, task.request.id, task.request.retries or 0, kind.value, age_s, exc,
    )  # fmt: skip
    _dead_letter_or_requeue(task=task, dead_letter=dead_letter, exc=exc, since=since)


def _dead_letter_or_requeue(*, task: Task, dead_letter: Callable, exc: BaseException, since: dt.datetime) -> None:
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


class DeadLetterRequest(Request):
    """A task message that failed before its body could settle it (a body that cannot be
    decoded, arguments the task cannot take) is written by the task's `dead_letter_message`
    in the worker's main process and acknowledged; Celery's own lifecycle would reject it,
    which on Redis deletes it. Requeued if that write fails. A lost worker, a time limit, a
    retry or a deliberate reject keep Celery's handling.

    A body that decodes but is no `[args, kwargs, embed]` fails inside Celery's own request
    constructor with a ValueError or TypeError, which nothing catches: the worker stops
    ("Unrecoverable error"), and a restarted one meets the same message. One whose keyword
    arguments are no mapping fails in the pool outside the task's body, which Celery reports
    as a warning and acknowledges as a success. Both are raised here as InvalidTaskError,
    which reaches the consumer's `on_invalid_task` (dead-lettered below)."""

    def __init__(self, message, *args, **kwargs):
        try:
            super().__init__(message, *args, **kwargs)
        except (TypeError, ValueError, KeyError) as exc:
            raise InvalidTaskError(f"not a task message body: {exc!r}") from exc
        if not isinstance(self.args, list | tuple) or not isinstance(self.kwargs, dict):
            raise InvalidTaskError(
                f"not a task message body: arguments {type(self.args).__name__}, keyword arguments "
                f"{type(self.kwargs).__name__}"
            )

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        passed_on = (WorkerLostError, TimeLimitExceeded, Reject, Ignore, Retry, Terminated, MemoryError)
        if isinstance(exc, passed_on) or self.acknowledged:
            return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        logger.error("dead-lettering %s[%s], which failed before it could run: %r", self.task.name, self.id, exc)
        try:
            self.task.dead_letter_message(
                task_id=self.id, body=self.body, content_type=self.content_type or "",
                content_encoding=self.content_encoding or "", exc=exc,
            )  # fmt: skip
        except Exception:
            logger.exception("could not dead-letter %s[%s]; requeueing it", self.task.name, self.id)
            self.reject(requeue=True)
            return
        self.acknowledge()


def message_dead_letter(*, app, message, exc: BaseException) -> bool:
    """Hand a message the worker's main process could not read to its task's
    `dead_letter_message`, then acknowledge it; requeue it when that write fails. False when
    its task has no such hook (Celery's own handling then applies)."""
    headers = message.headers if isinstance(message.headers, dict) else {}
    task = app.tasks.get(headers.get("task"))
    if not hasattr(task, "dead_letter_message"):
        return False
    task_id = str(headers.get("id") or message.delivery_tag)
    logger.error("dead-lettering %s[%s], which cannot be read: %r", task.name, task_id, exc)
    try:
        task.dead_letter_message(
            task_id=task_id, body=message.body, content_type=message.content_type or "",
            content_encoding=message.content_encoding or "", exc=exc,
        )  # fmt: skip
    except Exception:
        logger.exception("could not dead-letter %s[%s]; requeueing it", task.name, task_id)
        message.reject(requeue=True)
        return True
    message.ack()
    return True


class Consumer(CeleryConsumer):
    """Celery's worker consumer (CELERY_WORKER_CONSUMER), except that a message whose body
    cannot be decoded, or that is no valid task message, is dead-lettered by its task
    instead of being acknowledged (Celery's `on_decode_error`) or rejected (its
    `on_invalid_task`, which on Redis deletes it) with a log line as its only trace."""

    def on_decode_error(self, message, exc):
        if not message_dead_letter(app=self.app, message=message, exc=exc):
            super().on_decode_error(message, exc)

    def on_invalid_task(self, body, message, exc):
        if not message_dead_letter(app=self.app, message=message, exc=exc):
            super().on_invalid_task(body, message, exc)
