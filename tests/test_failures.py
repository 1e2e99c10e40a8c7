"""Which failures are retried: decided by PostgreSQL's SQLSTATE, raised here by the real
server through Django's cursor (so the exception classes are the ones the worker sees)."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError, connection, transaction

from infra.db.failures import Failure, failure_classify

CASES = {
    "08006": Failure.TRANSIENT,  # connection failure
    "40001": Failure.TRANSIENT,  # serialization failure
    "40P01": Failure.TRANSIENT,  # deadlock
    "25006": Failure.TRANSIENT,  # read-only transaction: a writer that failed over
    "55P03": Failure.TRANSIENT,  # lock timeout
    "57P01": Failure.TRANSIENT,  # admin shutdown
    "57014": Failure.TRANSIENT,  # statement timeout
    "53300": Failure.TRANSIENT,  # too many connections
    "22003": Failure.DATA,  # numeric value out of range
    "22P02": Failure.DATA,  # invalid text (jsonb refusing a lone surrogate)
    "22P05": Failure.DATA,  # untranslatable character (NUL in jsonb)
    "23502": Failure.DATA,  # not-null violation
    "54000": Failure.DATA,  # program limit (index row too large): psycopg calls it OperationalError
    "42P01": Failure.OTHER,  # undefined table: a schema the code does not match
    "42703": Failure.OTHER,  # undefined column
    "XX000": Failure.OTHER,  # internal error
}


def raised(sqlstate: str) -> Exception:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '{sqlstate}'; END $$")
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


@pytest.mark.django_db
@pytest.mark.parametrize("sqlstate, kind", CASES.items())
def test_failures_are_classified_by_sqlstate(sqlstate, kind):
    assert failure_classify(exc=raised(sqlstate)) is kind


def test_a_connection_lost_before_any_answer_is_transient_and_a_time_limit_too():
    assert failure_classify(exc=OperationalError("server closed the connection unexpectedly")) is Failure.TRANSIENT
    assert failure_classify(exc=SoftTimeLimitExceeded()) is Failure.TRANSIENT


def test_a_value_python_cannot_convert_is_data_and_anything_unknown_is_other():
    assert failure_classify(exc=UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")) is Failure.DATA
    assert failure_classify(exc=RuntimeError("a bug")) is Failure.OTHER
