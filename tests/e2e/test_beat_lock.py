"""Exactly one beat: two real `celery beat` processes against the real Redis. The second
one waits on celery-redbeat's lock and schedules only once the first has stopped, as
during an immutable deploy or a managed platform update of the scheduler environment."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from tests.support.processes import celery_beat_start
from tests.support.waiting import wait_for

pytestmark = pytest.mark.processes  # two `celery beat` processes


def test_a_second_beat_cannot_take_the_lock_until_the_first_stops():
    prefix = f"redbeat-test-{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(settings.REDIS_URL)
    lock_key = f"{prefix}:lock"
    first, first_log = celery_beat_start(name="first", prefix=prefix)
    second = None
    try:
        wait_for(lambda: "beat: Acquired lock" in first_log(), timeout=60, message="the first beat to take the lock")
        holder = r.get(lock_key)
        assert holder

        second, second_log = celery_beat_start(name="second", prefix=prefix)
        wait_for(lambda: "beat: Acquiring lock" in second_log(), timeout=60, message="the second beat to try the lock")
        # The first beat keeps the lock (it renews it on every tick) and the second waits.
        wait_for(lambda: "beat: Extending lock" in first_log(), timeout=30, message="the first beat to renew")
        assert r.get(lock_key) == holder
        assert "beat: Acquired lock" not in second_log()
        assert "Sending due task" not in second_log()

        first.terminate()
        first.wait(timeout=30)
        wait_for(lambda: "beat: Acquired lock" in second_log(), timeout=60, message="the second beat to take over")
        assert r.get(lock_key) not in (None, holder)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        for key in r.scan_iter(f"{prefix}*"):
            r.delete(key)
