"""Whether a failure is worth retrying.

Decided by PostgreSQL's SQLSTATE (https://www.postgresql.org/docs/15/errcodes-appendix.html)
rather than by exception class: psycopg files a failover's "read-only transaction" (25006)
under InternalError and an oversized index row (54000) under OperationalError, so the class
alone retries the wrong ones and drops the right ones.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.utils import timezone

from ze_tracking.task_groups import REJECT, GroupedRequest, request_retry

logger = logging.getLogger(__name__)


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


def request_retry_or_reject(*, task: Task, request: GroupedRequest, exc: BaseException, since: dt.datetime) -> str:
    """What a grouped task (ze_tracking/task_groups.py) does with one message that failed: a
    transient failure is retried with exponential backoff and full jitter, capped at
    TASK_RETRY_BACKOFF_MAX_S, for as long as the work is younger than TASK_RETRY_MAX_AGE_S
    (counted from `since`, when it was first accepted); anything else, or work that old, is
    rejected without requeue: never acknowledged as done. On SQS the queue's redrive policy
    then moves the message to its dead-letter queue; on Redis (local runs) the message is
    dropped, with this log line as its only trace. See docs/RELIABILITY.md. Returns the
    message's outcome."""
    kind = failure_classify(exc=exc)
    age_s = (timezone.now() - since).total_seconds()
    if kind is Failure.TRANSIENT and age_s < settings.TASK_RETRY_MAX_AGE_S:
        # A new message with this countdown, the current one acknowledged; the worker holds
        # the new one unacknowledged until it runs, so the countdown must stay well under the
        # broker's visibility timeout (checked in settings).
        return request_retry(
            task=task, request=request, exc=exc, factor=settings.TASK_RETRY_BACKOFF_S,
            maximum=settings.TASK_RETRY_BACKOFF_MAX_S,
        )  # fmt: skip
    logger.error(
        "rejecting %s[%s] after %d retries (%s failure, %.0f s old): %r",
        task.name, request.id, request.retries, kind.value, age_s, exc,
    )  # fmt: skip
    return REJECT
