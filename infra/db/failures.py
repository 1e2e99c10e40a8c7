"""Whether a database failure is worth retrying, and closing the connections a failover left
useless.

Decided by PostgreSQL's SQLSTATE (https://www.postgresql.org/docs/15/errcodes-appendix.html)
rather than by exception class: psycopg files a failover's "read-only transaction" (25006)
under InternalError and an oversized index row (54000) under OperationalError, so the class
alone retries the wrong ones and drops the right ones.
"""

from __future__ import annotations

import enum

from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError, connections


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
