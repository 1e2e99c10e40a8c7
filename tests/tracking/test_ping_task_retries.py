"""A batch that meets a transient failure is retried for as long as it is young enough,
not a fixed number of times (Celery's default is three)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from tests.conftest import ping
from tracking.models import Ping
from tracking.tasks import ping_batch_record


@pytest.mark.django_db
def test_a_batch_is_retried_past_celerys_default_of_three_until_the_database_answers(courier, settings):
    settings.TASK_RETRY_BACKOFF_MAX_S = 0  # eager retries do not wait anyway
    failures = {"left": 5}  # the database is away for five tries

    def flaky(execute, sql, params, many, context):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    batch = ping()
    with connection.execute_wrapper(flaky):
        ping_batch_record.apply(
            kwargs={"courier_id": str(courier.id), "received_at": timezone.now().isoformat(), "pings": [batch]}
        )

    assert failures["left"] == 0
    assert Ping.objects.filter(event_id=batch["event_id"]).count() == 1
